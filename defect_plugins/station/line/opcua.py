"""The station's OPC UA server: a PLC triggers the inspection of a part and reads the verdict (asyncua).

The PLC calls ``Inspect`` (OPC 10000-4, 5.11.2 Call) on the line's object and gets the verdict back in
the same call, or watches the ``Last*`` variables (read or subscribe) to drive the reject gate. Address
space, namespace ``urn:defect-plugins:station`` (:data:`NAMESPACE_URI`), one object ``Line_<line>``
under Objects:

====================  ========  =====================================================================
``LastVerdict``       String    ``OK`` / ``NG`` / ``ERROR`` of the last inspection (ERROR: no verdict,
                                treat the part as not OK)
``LastGrade``         String    its grade (the rule file's), empty on ERROR
``LastPartId``        String    the part it was for
``LastLot``           String    its lot
``LastInspectionId``  Int64     its record in the station's database (0: none was stored)
``Inspected``         UInt64    every verdict given since start (OK + NG + ERROR)
``Rejected``          UInt64    NG verdicts
``Errors``            UInt64    ERROR verdicts
``ModelVersion``      String    the models that judge (the station sets it)
``Heartbeat``         DateTime  written every second by the server: a PLC watches the station is alive
``State``             String    ``ready`` / ``busy`` (an Inspect runs) / ``error`` (the station says so)
                                / ``stopping``
``DriftState``        String    the worst drift state of the watched models after the last part:
                                ``collecting`` / ``ok`` / ``warn`` / ``drift``; empty: none watched
``Inspect``           Method    ``(part_id, lot, image_path: String) -> (InspectionId: Int64,
                                Verdict, Grade, Error: String)``
====================  ========  =====================================================================

NodeIds are strings (``ns=<index of NAMESPACE_URI>;s=Line_line1.LastVerdict``), so they stay the same
across restarts and versions and a PLC program can name them; the namespace index is looked up from the
URI (OPC 10000-3, 8.2.2 NamespaceArray). The variables are read-only for clients. One batch writes all
of them (:meth:`OpcUaServer.publish` and every Inspect): a client's Read sees either the old or the new
set, never half of each, and subscribers get the changes in one publish.

Security (OPC 10000-7 security policy Basic256Sha256, OPC 10000-4 5.5 / 5.6 secure channel and session,
OPC 10000-6 6.2 application instance certificates):

* Only ``Basic256Sha256`` with ``SignAndEncrypt`` is offered, with user-name login checked by the
  ``authenticate(user, password)`` callback; anonymous sessions are refused. asyncua lets any client open
  an unsecured channel (needed for GetEndpoints) and would let it create a session on it: the user
  manager here refuses to activate a session on a channel that has no client certificate, whatever the
  credentials, unless ``insecure=True``.
* ``insecure=True`` (``--opcua-insecure``) adds the ``None`` endpoint and anonymous login, for
  commissioning only; :meth:`OpcUaServer.warnings` says so for the command line to print.
* The server's certificate and key are generated on the first start into ``cert_dir`` (RSA 2048, SHA-256,
  self-signed, the application URI and host names in subjectAltName, 5 years) and reused on every later
  start, so the PLC trusts the server once (compare :attr:`OpcUaServer.thumbprint`, the SHA-1 of the DER
  as OPC UA tools show it). The key file is written 0600 (and a folder it makes 0700); a key readable by
  others stops the start (as ssh does). A certificate that no longer fits (expired, other URI, other key)
  is replaced, and a warning names the new thumbprint.
* Client certificates: without ``trusted_clients_dir`` every client certificate that is within its
  validity period and names the client's ApplicationUri is accepted (asyncua's own default accepts any);
  the user-name login is what lets a client in, over a channel encrypted with the server's certificate
  that the PLC trusts. Trusting client applications one by one needs a certificate exchange at every
  commissioning, which is what ``trusted_clients_dir`` is for: then only the certificates in that folder
  (DER or PEM), or those issued by a CA certificate in it, are accepted (BadCertificateUntrusted
  otherwise), the folder is read again at each new session (no restart to add a PLC), and a refused
  certificate is saved to ``cert_dir/rejected/`` so that whoever commissions can move it into the trusted
  folder. The check is made at CreateSession and again, on the channel's own certificate, at
  ActivateSession (asyncua checks only the certificate the CreateSession request names).

The server runs in its own thread with its own asyncio event loop (the station is otherwise synchronous);
the blocking ``inspect_part`` callback runs in an executor (one thread per part the station takes at once,
``workers``), so the loop keeps serving reads and the heartbeat; with one thread, inspections keep the order
the PLC called them in. asyncua logs every call at
INFO: :meth:`OpcUaServer.start` sets the ``asyncua`` logger to WARNING unless a level was set for it
before (set one, e.g. DEBUG, to see the protocol).
Runtime-only: the standard library, asyncua and cryptography.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import hashlib
import importlib.metadata
import ipaddress
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType
from asyncua.common.utils import ServiceError
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "NAMESPACE_URI", "ENDPOINT_PATH", "VERDICTS", "InspectCallback", "AuthenticateCallback", "OpcUaError",
    "OpcUaServer", "OpcUaSettings", "ServerCertificate", "add_opcua_arguments", "ensure_server_certificate",
    "settings_from_args", "verdict_from_result",
]

_log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:defect-plugins:station"
ENDPOINT_PATH = "/defect-station/"
VERDICTS = ("OK", "NG", "ERROR")
CERT_FILE = "opcua_server_cert.der"
KEY_FILE = "opcua_server_key.pem"
REJECTED_DIR = "rejected"
CERT_DAYS = 5 * 365
MAX_REJECTED = 100          # certificates kept in rejected/: a scanner cannot fill the disk
MAX_ERROR_CHARS = 1000      # an exception's text in the Error output / variable
# part_id / lot / image_path: longer strings are refused (Bad_OutOfRange): asyncua takes messages up to 100 MB
MAX_ARGUMENT_CHARS = (256, 256, 4096)

InspectCallback = Callable[..., Mapping[str, Any]]
"""``inspect_part(part_id, lot, image_path, origin="opcua") -> {"inspection_id", "verdict", "grade", "error",
"part_id", "lot", ...}``: blocking; it must confine ``image_path`` to where the station reads images."""
AuthenticateCallback = Callable[[str, str], bool]
"""``authenticate(user, password) -> bool``: called in the server's loop at each session activation."""

# The variables, in the order they are created; their OPC UA types (OPC 10000-6, 5.1.2 built-in types).
_TYPES: dict[str, ua.VariantType] = {
    "LastVerdict": ua.VariantType.String, "LastGrade": ua.VariantType.String,
    "LastPartId": ua.VariantType.String, "LastLot": ua.VariantType.String,
    "LastInspectionId": ua.VariantType.Int64, "Inspected": ua.VariantType.UInt64,
    "Rejected": ua.VariantType.UInt64, "Errors": ua.VariantType.UInt64, "ModelVersion": ua.VariantType.String,
    "Heartbeat": ua.VariantType.DateTime, "State": ua.VariantType.String, "DriftState": ua.VariantType.String,
}
_DESCRIPTIONS = {
    "LastVerdict": "OK / NG / ERROR of the last inspection; ERROR: no verdict, treat the part as not OK",
    "LastGrade": "grade of the last inspection (the station's rule file); empty on ERROR",
    "LastPartId": "part id of the last inspection", "LastLot": "lot of the last inspection",
    "LastInspectionId": "record of the last inspection in the station's database; 0: none stored",
    "Inspected": "verdicts given since the station started (OK + NG + ERROR)",
    "Rejected": "NG verdicts since the station started", "Errors": "ERROR verdicts since the station started",
    "ModelVersion": "the models that judge", "Heartbeat": "written every second while the station runs",
    "State": "ready / busy / error / stopping",
    "DriftState": "worst drift state of the watched models: collecting / ok / warn / drift; empty: none watched",
}
_INPUTS = (("part_id", "the part's id (the PLC's)"), ("lot", "the part's lot"),
           ("image_path", "the image to inspect, as the station names it (its watched folder)"))
_OUTPUTS = (("InspectionId", ua.VariantType.Int64, "the inspection's record; 0: none stored"),
            ("Verdict", ua.VariantType.String, "OK / NG / ERROR"),
            ("Grade", ua.VariantType.String, "the grade; empty on ERROR"),
            ("Error", ua.VariantType.String, "why the verdict is ERROR; empty otherwise"))
_LINE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BASE_STATES = ("ready", "error")
_WILDCARDS = ("", "0.0.0.0", "::")


class OpcUaError(RuntimeError):
    """The OPC UA server cannot start: the message names the file, address or setting."""


# ---------------------------------------------------------------------------------------------- verdicts

def verdict_from_result(result: Any, *, part_id: str = "", lot: str = "") -> dict[str, Any]:
    """The callback's (or the station's) result as the server shows it: a verdict the PLC can act on.

    ``verdict`` is upper-cased; anything but OK / NG, a non-empty ``error`` or a result that is not a
    mapping gives ``ERROR`` with the reason in ``error`` (fail safe: a part never passes on a result the
    server does not understand). ``part_id`` / ``lot`` fall back to the call's; ``inspection_id`` to 0.
    """
    if not isinstance(result, Mapping):
        return _error_verdict(f"the station returned {type(result).__name__}, not a result", part_id, lot)
    error = str(result.get("error") or "")
    verdict = str(result.get("verdict") or "").strip().upper()
    if not error and verdict == "ERROR":
        error = "the station gave ERROR without a reason"
    elif not error and verdict not in ("OK", "NG"):
        error = f"the station gave no verdict OK / NG / ERROR (got {result.get('verdict')!r})"
    try:
        inspection_id = int(result.get("inspection_id") or 0)
    except (TypeError, ValueError):
        inspection_id = 0
    if not -(2 ** 63) <= inspection_id < 2 ** 63:  # Int64
        inspection_id = 0
    out = {"inspection_id": inspection_id, "verdict": "ERROR" if error else verdict,
           "grade": "" if error else str(result.get("grade") or ""), "error": error[:MAX_ERROR_CHARS],
           "part_id": str(result.get("part_id") or part_id), "lot": str(result.get("lot") or lot)}
    if result.get("model_version"):
        out["model_version"] = str(result["model_version"])
    if isinstance(result.get("drift"), str):
        out["drift"] = result["drift"]
    return out


def _error_verdict(error: str, part_id: str, lot: str, inspection_id: int = 0) -> dict[str, Any]:
    return {"inspection_id": inspection_id, "verdict": "ERROR", "grade": "", "error": error[:MAX_ERROR_CHARS],
            "part_id": part_id, "lot": lot}


# ---------------------------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class ServerCertificate:
    """The server's application instance certificate on disk (OPC 10000-6, 6.2.2)."""

    cert_path: Path
    key_path: Path
    thumbprint: str        # SHA-1 of the DER, upper-case hex: what OPC UA tools and PLCs show
    not_after: datetime
    generated: str         # why it was (re)generated now; empty when the files were reused
    hosts: tuple[str, ...]  # the DNS names and IP addresses in subjectAltName


def thumbprint(der: bytes) -> str:
    """OPC UA's certificate thumbprint: SHA-1 of the DER (OPC 10000-6, 6.7.2.3 asymmetric security header)."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()  # the protocol's definition


def _san_entries(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h for h in hosts if h not in _WILDCARDS):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _san_hosts(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName)) + tuple(
        str(ip) for ip in san.get_values_for_type(x509.IPAddress))


def _san_uris(cert: x509.Certificate) -> list[str]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        return []


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file created with ``mode`` and rename: never a half-written key, never a
    key that was readable by others for a moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _check_private(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise OpcUaError(f"{path}: the OPC UA private key is readable by others (mode "
                         f"{oct(path.stat().st_mode & 0o777)}); run chmod 600 on it")


def ensure_server_certificate(cert_dir: str | Path, application_uri: str, hosts: Sequence[str], *,
                              common_name: str = "defect-station", days: int = CERT_DAYS) -> ServerCertificate:
    """Reuse the server's key and certificate in ``cert_dir``, or make them (self-signed, asyncua's
    :mod:`asyncua.crypto.cert_gen` with serverAuth) when missing or no longer fitting.

    The certificate is kept while it loads, matches the key, names ``application_uri`` and is valid now:
    a new one changes the thumbprint every client trusts, so a changed host list alone does not replace it
    (:meth:`OpcUaServer.warnings` says when the bound address is missing). A key that cannot be read or is
    readable by others raises :class:`OpcUaError`: replacing it silently would change the station's identity.
    """
    folder = Path(cert_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    now = datetime.now(timezone.utc)
    reason = ""
    key: rsa.RSAPrivateKey
    if key_path.exists():
        _check_private(key_path)
        try:
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise OpcUaError(f"{key_path}: not a readable PEM private key ({error}); move it and {cert_path.name} "
                             f"away to make new ones (clients then trust the new certificate)") from error
        if not isinstance(loaded, rsa.RSAPrivateKey) or not 2048 <= loaded.key_size <= 4096:
            raise OpcUaError(f"{key_path}: Basic256Sha256 needs an RSA key of 2048 to 4096 bits")
        key = loaded
    else:
        key = cert_gen.generate_private_key()
        _write_file(key_path, cert_gen.dump_private_key_as_pem(key), 0o600)
        reason = "first start: no key"
    cert: x509.Certificate | None = None
    if not reason and cert_path.exists():
        try:
            cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        except ValueError:
            reason = f"{cert_path.name} is not a DER certificate"
        else:
            public = serialization.PublicFormat.SubjectPublicKeyInfo
            if cert.public_key().public_bytes(serialization.Encoding.DER, public) != key.public_key().public_bytes(
                    serialization.Encoding.DER, public):
                reason = "the certificate is not the key's"
            elif application_uri not in _san_uris(cert):
                reason = f"the certificate does not name the application URI {application_uri}"
            elif not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                reason = f"the certificate is valid {cert.not_valid_before_utc} to {cert.not_valid_after_utc} only"
    elif not reason:
        reason = f"no {cert_path.name}"
    if reason:
        uri = x509.UniformResourceIdentifier(application_uri)
        cert = cert_gen.generate_self_signed_app_certificate(
            key, common_name, {"organizationName": "defect-plugins"}, [uri, *_san_entries(hosts)],
            extended=[ExtendedKeyUsageOID.SERVER_AUTH], days=days)
        _write_file(cert_path, cert.public_bytes(serialization.Encoding.DER), 0o644)
    assert cert is not None
    return ServerCertificate(cert_path, key_path, thumbprint(cert.public_bytes(serialization.Encoding.DER)),
                             cert.not_valid_after_utc, reason, _san_hosts(cert))


class ClientTrust:
    """Which client application certificates may open a session (see the module's docstring)."""

    def __init__(self, trusted_dir: Path | None, rejected_dir: Path) -> None:
        self.trusted_dir = trusted_dir
        self.rejected_dir = rejected_dir

    def check(self, cert: x509.Certificate, application_uri: str | None = None) -> int | None:
        """``None`` when ``cert`` is accepted, else the status code that refuses it (OPC 10000-4, 6.1.3)."""
        now = datetime.now(timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return ua.StatusCodes.BadCertificateTimeInvalid
        if application_uri is not None and application_uri not in _san_uris(cert):
            return ua.StatusCodes.BadCertificateUriInvalid
        if self.trusted_dir is None or self._trusted(cert):
            return None
        self._keep_rejected(cert)
        return ua.StatusCodes.BadCertificateUntrusted

    def _trusted(self, cert: x509.Certificate) -> bool:
        der = cert.public_bytes(serialization.Encoding.DER)
        assert self.trusted_dir is not None
        for path in sorted(self.trusted_dir.glob("*")):
            if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer") or not path.is_file():
                continue
            try:
                data = path.read_bytes()
                anchor = (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
                          else x509.load_der_x509_certificate(data))
            except (OSError, ValueError) as error:
                _log.warning("OPC UA: skipping %s in the trusted clients folder: %s", path, error)
                continue
            if anchor.public_bytes(serialization.Encoding.DER) == der:
                return True
            if anchor.subject == cert.issuer and _is_ca(anchor) and _issued_by(cert, anchor):
                return True
        return False

    def _keep_rejected(self, cert: x509.Certificate) -> None:
        der = cert.public_bytes(serialization.Encoding.DER)
        try:
            self.rejected_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if len(list(self.rejected_dir.glob("*.der"))) < MAX_REJECTED:
                (self.rejected_dir / f"{thumbprint(der)}.der").write_bytes(der)
        except OSError as error:
            _log.warning("OPC UA: cannot keep the refused client certificate in %s: %s", self.rejected_dir, error)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    now = datetime.now(timezone.utc)
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):  # other issuer, bad signature, unsupported key type
        return False
    return True


def _describe(cert_der: bytes) -> str:
    """A client certificate in a log line: its subject (the peer's own text, so printable characters only)
    and thumbprint."""
    try:
        subject = x509.load_der_x509_certificate(cert_der).subject.rfc4514_string()
    except ValueError:
        return "an unreadable certificate"
    return f"{''.join(c if c.isprintable() else '?' for c in subject)[:200]} ({thumbprint(cert_der)[:16]})"


class _UserManager:
    """asyncua's user manager (:mod:`asyncua.server.user_managers`): called at ActivateSession (OPC 10000-4,
    5.6.3) with the channel's client certificate (empty on an unsecured channel) and the login."""

    def __init__(self, authenticate: AuthenticateCallback | None, trust: ClientTrust, insecure: bool) -> None:
        self.authenticate = authenticate
        self.trust = trust
        self.insecure = insecure

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: bytes | None = None) -> User | None:
        if not certificate:
            if not self.insecure:
                _log.warning("OPC UA: refused a session of user %r on an unsecured channel (only "
                             "Basic256Sha256 SignAndEncrypt is offered)", username)
                return None
        else:
            try:
                refused = self.trust.check(x509.load_der_x509_certificate(certificate))
            except ValueError:
                refused = ua.StatusCodes.BadCertificateInvalid
            if refused is not None:
                _log.warning("OPC UA: refused the client certificate %s: %s", _describe(certificate),
                             ua.StatusCode(refused).name)
                return None
        peer = _describe(certificate) if certificate else "an unsecured channel"
        if username is None:
            if self.insecure:
                return User(role=UserRole.User, name="anonymous")
            _log.warning("OPC UA: refused an anonymous session from %s", peer)
            return None
        if self.authenticate is None:
            return None
        try:
            ok = bool(self.authenticate(username, password or ""))
        except Exception:  # the station's account check failed: refuse, keep serving
            _log.exception("OPC UA: the authenticate callback failed for user %r", username)
            ok = False
        if not ok:
            _log.warning("OPC UA: wrong user name or password for %r from %s", username, peer)
            return None
        _log.info("OPC UA: session of user %r from %s", username, peer)
        return User(role=UserRole.User, name=username)


# ---------------------------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class OpcUaSettings:
    """What the command line says about the OPC UA server (:func:`add_opcua_arguments`)."""

    port: int
    cert_dir: Path
    line: str = "line1"
    insecure: bool = False
    trusted_clients_dir: Path | None = None


def add_opcua_arguments(parser: argparse.ArgumentParser) -> None:
    """``--opcua-port`` (the server runs only when given), ``--opcua-cert-dir``, ``--opcua-trusted-clients``,
    ``--opcua-insecure``; the line's name (the object ``Line_NAME``) is the station's ``--line``."""
    group = parser.add_argument_group("OPC UA server (a PLC triggers inspections and reads verdicts)")
    group.add_argument("--opcua-port", type=int, metavar="PORT",
                       help="serve OPC UA on --host:PORT (4840 is the usual port); off when not given")
    group.add_argument("--opcua-cert-dir", type=Path, metavar="DIR",
                       help="server certificate and key, made on the first start (default: opcua-pki next to --db)")
    group.add_argument("--opcua-trusted-clients", type=Path, metavar="DIR",
                       help="accept only the client certificates in DIR (or issued by a CA in it); refused ones go "
                            "to CERT_DIR/rejected/. Default: any valid client certificate, the login decides")
    group.add_argument("--opcua-insecure", action="store_true",
                       help="also offer an unencrypted endpoint without login (commissioning only)")


def settings_from_args(args: argparse.Namespace, *, db: str | Path, line: str = "line1") -> OpcUaSettings | None:
    """The settings, or None when ``--opcua-port`` is not given; ValueError names a bad option."""
    if args.opcua_port is None:
        return None
    _check_port(args.opcua_port, "--opcua-port")
    _check_line(line, "--line")
    trusted = args.opcua_trusted_clients
    if trusted is not None and not Path(trusted).is_dir():
        raise ValueError(f"--opcua-trusted-clients: {trusted} is not a folder")
    cert_dir = args.opcua_cert_dir if args.opcua_cert_dir is not None else Path(db).resolve().parent / "opcua-pki"
    return OpcUaSettings(args.opcua_port, Path(cert_dir), line, bool(args.opcua_insecure),
                         None if trusted is None else Path(trusted))


def _check_port(port: Any, name: str) -> None:
    # OPC UA endpoints name their port (the URL is in every EndpointDescription): 0 cannot be served
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"{name} must be 1 to 65535 (an OPC UA endpoint names its port), got {port!r}")


def _check_line(line: Any, name: str) -> None:
    if not isinstance(line, str) or not _LINE_NAME.fullmatch(line):
        raise ValueError(f"{name} must be 1 to 64 letters, digits, '_' or '-', got {line!r}")


def _probe_port(host: str, port: int) -> None:
    """Fail in milliseconds, not after the address space's seconds, when the port is taken (asyncio binds
    with SO_REUSEADDR too, so TIME_WAIT leftovers pass here as they do there)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as error:
        raise OpcUaError(f"OPC UA: cannot listen on {_url_host(host)}:{port}: {error}") from error


def _version() -> str:
    try:
        return importlib.metadata.version("defect-plugins")
    except importlib.metadata.PackageNotFoundError:  # a clone that was not installed
        return "unknown"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _quiet_asyncua() -> None:
    """asyncua logs each request at INFO; keep it at WARNING unless someone chose a level for it."""
    logger = logging.getLogger("asyncua")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------- server

class OpcUaServer:
    """The station's OPC UA server in its own thread and event loop; started and stopped from sync code.

    ``inspect_part(part_id, lot, image_path, origin="opcua")`` runs for each Inspect call (blocking, in an
    executor of ``workers`` threads: one thread serves calls in the order they came; several let parts of
    several callers overlap, as the station's models allow; one that takes longer than ``inspect_timeout_s``
    answers ERROR, the PLC is not left waiting). ``authenticate(user, password)`` checks each login (None:
    nobody logs in, which only ``insecure=True`` allows). See the module's docstring for the address space
    and the security defaults.

    The endpoint is ``opc.tcp://HOST:PORT/defect-station/`` on the station's ``--host`` (port 0 cannot be
    served: the URL is in every EndpointDescription). The application URI defaults to
    ``urn:defect-plugins:station:<this PC's name>:<line>`` and is in the certificate, which is made again if
    it changes. Call :meth:`warnings` after :meth:`start` to have the certificate's warnings too.
    """

    def __init__(self, inspect_part: InspectCallback, authenticate: AuthenticateCallback | None, *,
                 cert_dir: str | Path, host: str = "127.0.0.1", port: int = 4840, line: str = "line1",
                 insecure: bool = False, trusted_clients_dir: str | Path | None = None, model_version: str = "",
                 heartbeat_s: float = 1.0, inspect_timeout_s: float = 30.0, max_connections: int = 16,
                 application_uri: str | None = None, workers: int = 1) -> None:
        _check_port(port, "port")
        _check_line(line, "line")
        if authenticate is None and not insecure:
            raise ValueError("give authenticate (user-name login is the only way in unless insecure=True)")
        if not callable(inspect_part):
            raise TypeError(f"inspect_part must be callable, got {type(inspect_part).__name__}")
        if not heartbeat_s > 0 or not inspect_timeout_s > 0 or max_connections < 1 or workers < 1:
            raise ValueError("heartbeat_s and inspect_timeout_s must be positive, max_connections and workers at "
                             "least 1")
        trusted = None if trusted_clients_dir is None else Path(trusted_clients_dir)
        if trusted is not None and not trusted.is_dir():
            raise ValueError(f"trusted_clients_dir: {trusted} is not a folder")
        self.inspect_part = inspect_part
        self.host, self.port, self.line = host, port, line
        self.insecure = insecure
        self.cert_dir = Path(cert_dir)
        self.heartbeat_s, self.inspect_timeout_s = float(heartbeat_s), float(inspect_timeout_s)
        self.max_connections = int(max_connections)
        self.workers = int(workers)
        self.endpoint = f"opc.tcp://{_url_host(host)}:{port}{ENDPOINT_PATH}"
        self.application_uri = application_uri or f"urn:defect-plugins:station:{socket.gethostname()}:{line}"
        self.object_name = f"Line_{line}"
        self.certificate: ServerCertificate | None = None
        self._trust = ClientTrust(trusted, self.cert_dir / REJECTED_DIR)
        self._users = _UserManager(authenticate, self._trust, insecure)
        self._lock = threading.Lock()  # guards _values and _base_state (written from any thread)
        self._values: dict[str, Any] = {"LastVerdict": "", "LastGrade": "", "LastPartId": "", "LastLot": "",
                                        "LastInspectionId": 0, "Inspected": 0, "Rejected": 0, "Errors": 0,
                                        "ModelVersion": str(model_version), "State": "ready", "DriftState": ""}
        self._base_state = "ready"
        self._stopping = False  # State shows "stopping" while the loop shuts down
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._batch: asyncio.Lock | None = None
        self._inflight = 0  # Inspect calls running; touched in the loop only
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ public, any thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thumbprint(self) -> str | None:
        """The server certificate's SHA-1 thumbprint (after :meth:`start`): compare it on the PLC."""
        return None if self.certificate is None else self.certificate.thumbprint

    def warnings(self) -> list[str]:
        """What the command line should print: the insecure endpoint, a new or expiring certificate."""
        out = []
        if self.insecure:
            where = "every interface" if self.host in _WILDCARDS else self.host
            out.append(f"OPC UA: --opcua-insecure: {self.endpoint} also takes unencrypted connections without a "
                       f"login (security policy None, anonymous) on {where}: whoever reaches port {self.port} can "
                       f"trigger inspections and read verdicts. Use it for commissioning on an isolated network only.")
        cert = self.certificate
        if cert is not None:
            if cert.generated and cert.generated != "first start: no key":
                out.append(f"OPC UA: made a new server certificate ({cert.generated}): clients must trust the new "
                           f"one, thumbprint {cert.thumbprint} ({cert.cert_path})")
            if cert.not_after - datetime.now(timezone.utc) < timedelta(days=30):
                out.append(f"OPC UA: the server certificate expires {cert.not_after:%Y-%m-%d}; the start after "
                           f"that makes a new one that clients must trust again")
            if self.host not in _WILDCARDS and self.host not in cert.hosts:
                out.append(f"OPC UA: the server certificate does not name {self.host} (it names "
                           f"{', '.join(cert.hosts) or 'no host'}); clients that check host names refuse it. Move "
                           f"{cert.cert_path.name} away to make one that does (clients then trust it again)")
        return out

    def snapshot(self) -> dict[str, Any]:
        """The variables' values as clients see them (after the pending write), without Heartbeat."""
        with self._lock:
            return dict(self._values)

    def publish(self, verdict: Mapping[str, Any], *, timeout: float = 5.0) -> None:
        """Show an inspection made elsewhere (the page, the watched folder, MQTT) in the Last* variables and
        counters; thread-safe. Waits until clients see it (not when called in the server's own thread).

        A result whose ``origin`` is ``"opcua"`` is skipped: Inspect shows its own results already, so the
        station may hand every result to every line link. Before :meth:`start` the values are kept and
        served from the start on.
        """
        if verdict.get("origin") == "opcua":
            return
        self._record(verdict_from_result(verdict))
        self._push(timeout)

    def set_model_version(self, version: str, *, timeout: float = 5.0) -> None:
        with self._lock:
            self._values["ModelVersion"] = str(version)
        self._push(timeout)

    def set_state(self, state: str, *, timeout: float = 5.0) -> None:
        """``ready`` or ``error`` (the station cannot inspect); ``busy`` is shown by the server itself."""
        if state not in _BASE_STATES:
            raise ValueError(f"state must be one of {', '.join(_BASE_STATES)}, got {state!r}")
        with self._lock:
            self._base_state = state
        self._push(timeout)

    def start(self, timeout: float = 60.0) -> None:
        """Make or load the certificate, build the address space and listen; returns once the endpoint
        accepts connections. :class:`OpcUaError` names what failed (port taken, key file, ...)."""
        if self.running:
            raise OpcUaError(f"the OPC UA server at {self.endpoint} is already running")
        _probe_port(self.host, self.port)
        _quiet_asyncua()
        try:
            self.certificate = ensure_server_certificate(
                self.cert_dir, self.application_uri, [socket.gethostname(), "localhost", self.host],
                common_name=f"defect-station {self.line}@{socket.gethostname()}"[:64])
        except OSError as error:
            raise OpcUaError(f"OPC UA: cannot make or read the server certificate in {self.cert_dir}: {error}") \
                from error
        if self.certificate.generated:
            _log.info("OPC UA: made the server certificate %s (%s), thumbprint %s", self.certificate.cert_path,
                      self.certificate.generated, self.certificate.thumbprint)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers,
                                                               thread_name_prefix="opcua-inspect")
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"opcua-{self.line}", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout)
        except concurrent.futures.TimeoutError as error:
            self.stop()
            raise OpcUaError(f"the OPC UA server at {self.endpoint} did not start within {timeout:g} s") from error
        except OSError as error:
            self._join(10.0)
            raise OpcUaError(f"OPC UA: cannot listen on {_url_host(self.host)}:{self.port}: {error}") from error
        except Exception as error:
            self._join(10.0)
            raise OpcUaError(f"OPC UA: the server at {self.endpoint} did not start: {error}") from error

    def stop(self, timeout: float = 10.0) -> None:
        """Close every session and the listening socket; waits for the server's thread. Idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self.running:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed in between
                pass
        self._join(timeout)

    def __enter__(self) -> OpcUaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the thread

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _log.warning("OPC UA: the server thread did not end within %.0f s", timeout)
        if self._executor is not None:
            # a callback still running keeps its thread; its result is no longer shown
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as error:  # never leave start() waiting
            if not ready.done():
                ready.set_exception(error)
            else:
                _log.exception("OPC UA: the server loop failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        self._batch = asyncio.Lock()
        self._stopping = False
        with self._lock:  # a restart shows the station's state, not the last stop's
            self._values["State"] = self._base_state
        try:
            server = await self._build()
            await server.start()
        except BaseException as error:
            ready.set_exception(error)
            return
        self._server = server
        await self._write()  # what was published while the address space was being built
        heartbeat = asyncio.create_task(self._heartbeat())
        _log.info("OPC UA: serving %s (%s)", self.endpoint,
                  "Basic256Sha256 SignAndEncrypt + None" if self.insecure else "Basic256Sha256 SignAndEncrypt")
        ready.set_result(None)
        try:
            await self._stop.wait()
        finally:
            heartbeat.cancel()
            self._stopping = True
            try:
                await self._write(["State"])
            except Exception:  # stopping anyway
                _log.debug("OPC UA: cannot write State=stopping", exc_info=True)
            await server.stop()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._server = None

    async def _build(self) -> Server:
        """asyncua's :class:`~asyncua.server.server.Server` with the policies, the certificate, the user
        manager and the line's object (:mod:`asyncua.server.server`, :mod:`asyncua.server.user_managers`)."""
        assert self.certificate is not None
        server = Server(user_manager=self._users)  # type: ignore[arg-type]  # duck-typed by asyncua
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"defect-station {self.line}")
        server.product_uri = "urn:defect-plugins"
        server.manufacturer_name = "defect-plugins"
        server.application_type = ua.ApplicationType.Server
        await server.set_application_uri(self.application_uri)
        # ServerStatus.BuildInfo (OPC 10000-5, 12.4): what a PLC engineer sees of the server, not asyncua's
        await server.set_build_info("urn:defect-plugins", "defect-plugins", "defect-station", _version(), "0",
                                    datetime.fromtimestamp(Path(__file__).stat().st_mtime, timezone.utc))
        policies = [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self.insecure:
            policies.append(ua.SecurityPolicyType.NoSecurity)
            tokens.append(ua.AnonymousIdentityToken)
        server.set_security_policy(policies)
        server.set_identity_tokens(tokens)
        await server.load_certificate(str(self.certificate.cert_path))
        await server.load_private_key(str(self.certificate.key_path))
        server.set_certificate_validator(self._validate_client)
        server.iserver.max_connections = self.max_connections
        server.subscribe_server_callback(CallbackType.PreRead, self._before_read)
        await self._populate(server)
        return server

    async def _populate(self, server: Server) -> None:
        idx = await server.register_namespace(NAMESPACE_URI)
        name = self.object_name
        obj = await server.nodes.objects.add_object(ua.NodeId(name, idx), ua.QualifiedName(name, idx))
        await obj.write_attribute(ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(
            f"defect-station, line {self.line}: call Inspect, read the verdict"))))
        with self._lock:
            values = dict(self._values, Heartbeat=datetime.now(timezone.utc))
        for key, vtype in _TYPES.items():
            node = await obj.add_variable(ua.NodeId(f"{name}.{key}", idx), ua.QualifiedName(key, idx),
                                          ua.Variant(values[key], vtype))
            await node.write_attribute(ua.AttributeIds.Description,
                                       ua.DataValue(ua.Variant(ua.LocalizedText(_DESCRIPTIONS[key]))))
            self._nodes[key] = node.nodeid
        inputs = [ua.Argument(Name=n, DataType=ua.NodeId(ua.ObjectIds.String), ValueRank=-1, ArrayDimensions=[],
                              Description=ua.LocalizedText(d)) for n, d in _INPUTS]
        outputs = [ua.Argument(Name=n, DataType=ua.NodeId(t.value), ValueRank=-1, ArrayDimensions=[],
                               Description=ua.LocalizedText(d)) for n, t, d in _OUTPUTS]
        await obj.add_method(ua.NodeId(f"{name}.Inspect", idx), ua.QualifiedName("Inspect", idx), self._inspect,
                             inputs, outputs)

    async def _validate_client(self, cert: x509.Certificate, description: ua.ApplicationDescription) -> None:
        """asyncua's certificate validator (:mod:`asyncua.crypto.validator`), called at CreateSession."""
        refused = self._trust.check(cert, description.ApplicationUri)
        if refused is not None:
            der = cert.public_bytes(serialization.Encoding.DER)
            _log.warning("OPC UA: refused the client %r (%s): %s", description.ApplicationUri, _describe(der),
                         ua.StatusCode(refused).name)
            raise ServiceError(refused)

    async def _before_read(self, event: Any, dispatcher: Any) -> None:
        """A Read waits for a batch being written: it sees the whole old or the whole new set."""
        if self._batch is not None and self._batch.locked():
            async with self._batch:
                pass

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._write_value("Heartbeat", datetime.now(timezone.utc))
            except Exception:  # keep beating; a failed write shows as a stale heartbeat anyway
                _log.exception("OPC UA: cannot write the heartbeat")
            await asyncio.sleep(self.heartbeat_s)

    # ------------------------------------------------------------------ writes (loop only)

    def _record(self, verdict: Mapping[str, Any]) -> None:
        """One inspection into the values and counters, under the lock: readers never see half of it."""
        with self._lock:
            v = self._values
            v.update(LastVerdict=verdict["verdict"], LastGrade=verdict["grade"], LastPartId=verdict["part_id"],
                     LastLot=verdict["lot"], LastInspectionId=verdict["inspection_id"], Inspected=v["Inspected"] + 1,
                     Rejected=v["Rejected"] + (verdict["verdict"] == "NG"),
                     Errors=v["Errors"] + (verdict["verdict"] == "ERROR"))
            if verdict.get("model_version"):
                v["ModelVersion"] = verdict["model_version"]
            if "drift" in verdict:
                v["DriftState"] = verdict["drift"]

    def _push(self, timeout: float) -> None:
        """Have the loop write the current values; wait for it unless called in the loop's own thread."""
        loop = self._loop
        if loop is None or not self.running:
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self._write(), loop)
        except RuntimeError:  # the loop is closing: the values are kept for the next start
            return
        if threading.current_thread() is self._thread:
            return
        try:
            future.result(timeout)
        except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
            # stopped or stuck meanwhile: the values are kept and written by the next batch or start;
            # the station's own work (which called this) goes on
            _log.warning("OPC UA: the variables were not updated within %g s", timeout)
        except Exception:
            _log.exception("OPC UA: cannot write the variables")

    async def _write(self, names: Sequence[str] | None = None) -> None:
        """Write the current values of ``names`` (all by default) in one batch, one timestamp."""
        if self._server is None or self._batch is None:
            return
        with self._lock:
            if self._stopping:
                self._values["State"] = "stopping"
            else:  # an Inspect running shows busy; "error" (the station's word) wins over it
                self._values["State"] = "busy" if self._inflight and self._base_state == "ready" else self._base_state
            values = {k: self._values[k] for k in (names or self._values)}
        now = datetime.now(timezone.utc)
        async with self._batch:
            for key, value in values.items():
                await self._server.write_attribute_value(self._nodes[key], ua.DataValue(
                    Value=ua.Variant(value, _TYPES[key]), SourceTimestamp=now, ServerTimestamp=now))

    async def _write_value(self, key: str, value: Any) -> None:
        if self._server is not None:
            now = datetime.now(timezone.utc)
            await self._server.write_attribute_value(self._nodes[key], ua.DataValue(
                Value=ua.Variant(value, _TYPES[key]), SourceTimestamp=now, ServerTimestamp=now))

    # ------------------------------------------------------------------ the method

    async def _inspect(self, parent: ua.NodeId, *args: ua.Variant) -> list[ua.Variant] | ua.CallMethodResult:
        """Inspect (OPC 10000-4, 5.11.2): argument errors are the Call's status codes (Bad_ArgumentsMissing,
        Bad_TooManyArguments, Bad_InvalidArgument with Bad_TypeMismatch / Bad_OutOfRange per argument);
        everything else, the callback failing included, is a Good call with Verdict ERROR and the reason.

        The inspection runs as its own task: a client that disconnects cancels its call, not the inspection,
        whose result still reaches the variables (the part was inspected; 5.11.2: results of a call whose
        session ended are discarded, the work is not).
        """
        refused = _check_arguments(args)
        if refused is not None:
            _log.warning("OPC UA: Inspect refused: %s", ua.StatusCode(refused.StatusCode.value).name)
            return refused
        part_id, lot, image_path = (str(a.Value or "") for a in args)
        task = asyncio.create_task(self._run_inspection(part_id, lot, image_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        verdict = await asyncio.shield(task)
        return [ua.Variant(verdict["inspection_id"], ua.VariantType.Int64),
                ua.Variant(verdict["verdict"], ua.VariantType.String),
                ua.Variant(verdict["grade"], ua.VariantType.String),
                ua.Variant(verdict["error"], ua.VariantType.String)]

    async def _run_inspection(self, part_id: str, lot: str, image_path: str) -> dict[str, Any]:
        assert self._executor is not None
        self._inflight += 1
        try:
            await self._write(["State"])
            call = functools.partial(self.inspect_part, part_id, lot, image_path, origin="opcua")
            future = asyncio.get_running_loop().run_in_executor(self._executor, call)
            try:
                result = await asyncio.wait_for(future, self.inspect_timeout_s)
                verdict = verdict_from_result(result, part_id=part_id, lot=lot)
            except asyncio.TimeoutError:
                _log.error("OPC UA: Inspect of part %r took longer than %g s", part_id, self.inspect_timeout_s)
                verdict = _error_verdict(f"the inspection took longer than {self.inspect_timeout_s:g} s", part_id, lot)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the PLC reads a verdict, never a fault
                _log.exception("OPC UA: Inspect of part %r (image %r) failed", part_id, image_path)
                verdict = _error_verdict(f"{type(error).__name__}: {error}", part_id, lot)
        finally:
            self._inflight -= 1
        self._record(verdict)
        await self._write()
        return verdict


def _check_arguments(args: Sequence[ua.Variant]) -> ua.CallMethodResult | None:
    """None when ``args`` are three scalar Strings within their lengths, else the Call's result that says
    why (OPC 10000-4, 5.11.2.4, Tables 67 and 68)."""
    result = ua.CallMethodResult()
    if len(args) != len(_INPUTS):
        code = ua.StatusCodes.BadArgumentsMissing if len(args) < len(_INPUTS) else ua.StatusCodes.BadTooManyArguments
        result.StatusCode = ua.StatusCode(code)
        return result
    statuses = []
    for arg, limit in zip(args, MAX_ARGUMENT_CHARS):
        if not isinstance(arg, ua.Variant) or arg.VariantType != ua.VariantType.String or arg.is_array \
                or not isinstance(arg.Value, (str, type(None))):
            statuses.append(ua.StatusCode(ua.StatusCodes.BadTypeMismatch))
        elif arg.Value is not None and len(arg.Value) > limit:
            statuses.append(ua.StatusCode(ua.StatusCodes.BadOutOfRange))
        else:
            statuses.append(ua.StatusCode())
    if all(s.is_good() for s in statuses):
        return None
    result.StatusCode = ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
    result.InputArgumentResults = statuses
    return result
