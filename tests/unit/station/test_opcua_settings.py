"""The OPC UA server's parts that need no network: verdicts, certificates, client trust, settings, arguments."""
from __future__ import annotations

import argparse
import os
from datetime import datetime, timezone

import pytest
from asyncua import ua
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from defect_plugins.station.line.opcua import (
    CERT_FILE,
    KEY_FILE,
    ClientTrust,
    OpcUaError,
    OpcUaServer,
    _check_arguments,
    add_opcua_arguments,
    ensure_server_certificate,
    settings_from_args,
    thumbprint,
    verdict_from_result,
)
from tests.fixtures.opcua import make_client_cert

URI = "urn:defect-plugins:station:test:line1"


def _noop(*args, **kwargs):
    return {}


@pytest.mark.parametrize(("result", "expected"), [
    ({"inspection_id": 4, "verdict": "ng", "grade": "major", "error": "", "part_id": "p", "lot": "l"},
     {"inspection_id": 4, "verdict": "NG", "grade": "major", "error": "", "part_id": "p", "lot": "l"}),
    ({"inspection_id": None, "verdict": "OK", "grade": "ok"},  # part and lot from the call
     {"inspection_id": 0, "verdict": "OK", "grade": "ok", "error": "", "part_id": "call-part", "lot": "call-lot"}),
    ({"inspection_id": 5, "verdict": "OK", "grade": "ok", "error": "model failed"},  # an error is never OK
     {"inspection_id": 5, "verdict": "ERROR", "grade": "", "error": "model failed", "part_id": "call-part",
      "lot": "call-lot"}),
    ({"inspection_id": 2 ** 70, "verdict": "maybe"},
     {"inspection_id": 0, "verdict": "ERROR", "grade": "",
      "error": "the station gave no verdict OK / NG / ERROR (got 'maybe')", "part_id": "call-part", "lot": "call-lot"}),
    ({"verdict": "error", "part_id": "p"},
     {"inspection_id": 0, "verdict": "ERROR", "grade": "", "error": "the station gave ERROR without a reason",
      "part_id": "p", "lot": "call-lot"}),
    ("not a dict",
     {"inspection_id": 0, "verdict": "ERROR", "grade": "", "error": "the station returned str, not a result",
      "part_id": "call-part", "lot": "call-lot"}),
])
def test_verdict_from_result_fails_safe(result, expected):
    assert verdict_from_result(result, part_id="call-part", lot="call-lot") == expected


def test_verdict_from_result_keeps_the_model_version_and_cuts_long_errors():
    out = verdict_from_result({"verdict": "ERROR", "error": "x" * 5000, "model_version": "seg v2"})
    assert out["model_version"] == "seg v2" and len(out["error"]) == 1000


def test_the_server_certificate_is_made_once_with_a_private_key_and_reused(tmp_path):
    made = ensure_server_certificate(tmp_path / "pki", URI, ["station-pc", "localhost", "10.0.0.5", "0.0.0.0"])
    assert made.generated == "first start: no key"
    assert (made.cert_path.name, made.key_path.name) == (CERT_FILE, KEY_FILE)
    if os.name == "posix":
        assert made.key_path.stat().st_mode & 0o777 == 0o600
        assert made.key_path.parent.stat().st_mode & 0o777 == 0o700
    cert = x509.load_der_x509_certificate(made.cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert set(made.hosts) == {"station-pc", "localhost", "10.0.0.5"}
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.public_key().key_size == 2048 and made.thumbprint == thumbprint(made.cert_path.read_bytes())
    assert (made.not_after - datetime.now(timezone.utc)).days > 4 * 365

    again = ensure_server_certificate(tmp_path / "pki", URI, ["another-host"])
    assert again.generated == "" and again.thumbprint == made.thumbprint  # a host change alone keeps it


def test_a_certificate_for_another_uri_is_replaced_and_the_key_kept(tmp_path):
    made = ensure_server_certificate(tmp_path, URI, ["localhost"])
    key = made.key_path.read_bytes()
    moved = ensure_server_certificate(tmp_path, "urn:defect-plugins:station:other:line2", ["localhost"])
    assert "does not name the application URI" in moved.generated and moved.thumbprint != made.thumbprint
    assert moved.key_path.read_bytes() == key


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_private_key_readable_by_others_stops_the_start(tmp_path):
    made = ensure_server_certificate(tmp_path, URI, ["localhost"])
    made.key_path.chmod(0o644)
    with pytest.raises(OpcUaError, match=r"readable by others \(mode 0o644\); run chmod 600"):
        ensure_server_certificate(tmp_path, URI, ["localhost"])


def test_an_unreadable_key_is_not_replaced_silently(tmp_path):
    made = ensure_server_certificate(tmp_path, URI, ["localhost"])
    made.key_path.write_bytes(b"garbage")
    with pytest.raises(OpcUaError, match="not a readable PEM private key"):
        ensure_server_certificate(tmp_path, URI, ["localhost"])
    assert made.key_path.read_bytes() == b"garbage"


def _load(path) -> x509.Certificate:
    return x509.load_der_x509_certificate(path.read_bytes())


def test_client_trust_without_a_folder_checks_validity_and_the_uri_only(tmp_path):
    client = make_client_cert(tmp_path, "urn:test:plc")
    trust = ClientTrust(None, tmp_path / "rejected")
    assert trust.check(_load(client.cert), "urn:test:plc") is None
    assert trust.check(_load(client.cert), "urn:test:other") == ua.StatusCodes.BadCertificateUriInvalid
    assert not (tmp_path / "rejected").exists()


def test_client_trust_with_a_folder_takes_its_certificates_and_their_ca(tmp_path):
    trusted, rejected = tmp_path / "trusted", tmp_path / "rejected"
    trusted.mkdir()
    plc = make_client_cert(tmp_path / "plc", "urn:test:plc")
    (trusted / "plc.der").write_bytes(plc.cert.read_bytes())
    ca_key = cert_gen.generate_private_key()
    ca = cert_gen.generate_self_signed_app_certificate(ca_key, "line CA", {}, [x509.DNSName("ca")], extended=[])
    (trusted / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    scada_key = cert_gen.generate_private_key()
    csr = cert_gen.generate_app_certificate_signing_request(
        scada_key, "scada", {}, [x509.UniformResourceIdentifier("urn:test:scada")], [ExtendedKeyUsageOID.CLIENT_AUTH])
    scada = cert_gen.sign_certificate_request(csr, ca, ca_key, days=30)
    stranger = make_client_cert(tmp_path / "stranger", "urn:test:stranger", name="stranger")

    trust = ClientTrust(trusted, rejected)
    assert trust.check(_load(plc.cert), "urn:test:plc") is None
    assert trust.check(scada, "urn:test:scada") is None
    assert trust.check(_load(stranger.cert), "urn:test:stranger") == ua.StatusCodes.BadCertificateUntrusted
    kept = list(rejected.glob("*.der"))
    assert [p.read_bytes() for p in kept] == [stranger.cert.read_bytes()]
    assert kept[0].stem == thumbprint(stranger.cert.read_bytes())


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_opcua_arguments(parser)
    return parser.parse_args(list(argv))


def test_settings_from_the_command_line(tmp_path):
    assert settings_from_args(_parse(), db=tmp_path / "station.sqlite") is None  # off unless a port is given
    settings = settings_from_args(_parse("--opcua-port", "4840", "--opcua-insecure"), db=tmp_path / "station.sqlite",
                                  line="press-2")
    assert (settings.port, settings.line, settings.insecure) == (4840, "press-2", True)
    assert settings.cert_dir == tmp_path.resolve() / "opcua-pki" and settings.trusted_clients_dir is None


@pytest.mark.parametrize(("argv", "message"), [
    (("--opcua-port", "0"), "--opcua-port must be 1 to 65535"),
    (("--opcua-port", "70000"), "--opcua-port must be 1 to 65535"),
    (("--opcua-port", "4840", "--opcua-trusted-clients", "/nonexistent/x"), "is not a folder"),
])
def test_bad_settings_name_the_option(tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        settings_from_args(_parse(*argv), db=tmp_path / "station.sqlite")


def test_a_line_name_an_opc_ua_node_id_cannot_hold_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--line must be"):
        settings_from_args(_parse("--opcua-port", "4840"), db=tmp_path / "station.sqlite", line="line 1")


def test_the_server_refuses_settings_it_cannot_serve(tmp_path):
    with pytest.raises(ValueError, match="give authenticate"):
        OpcUaServer(_noop, None, cert_dir=tmp_path)
    with pytest.raises(ValueError, match="port must be 1 to 65535"):
        OpcUaServer(_noop, _noop, cert_dir=tmp_path, port=0)
    server = OpcUaServer(_noop, None, cert_dir=tmp_path, host="0.0.0.0", port=4841, line="press-2", insecure=True)
    assert server.endpoint == "opc.tcp://0.0.0.0:4841/defect-station/" and server.object_name == "Line_press-2"
    [warning] = server.warnings()
    assert "every interface" in warning and "port 4841" in warning
    assert OpcUaServer(_noop, _noop, cert_dir=tmp_path, host="::1").endpoint == "opc.tcp://[::1]:4840/defect-station/"


def test_publish_before_start_is_kept_for_the_start(tmp_path):
    server = OpcUaServer(_noop, _noop, cert_dir=tmp_path)
    server.publish({"inspection_id": 3, "verdict": "NG", "grade": "major", "part_id": "p", "lot": "l"})
    server.publish({"inspection_id": 4, "verdict": "OK", "part_id": "q", "origin": "opcua"})  # Inspect's own: skipped
    server.set_state("error")
    with pytest.raises(ValueError, match="state must be one of ready, error"):
        server.set_state("busy")
    values = server.snapshot()
    assert (values["LastVerdict"], values["LastInspectionId"], values["Inspected"], values["Rejected"]) == (
        "NG", 3, 1, 1)


def _string(value) -> ua.Variant:
    return ua.Variant(value, ua.VariantType.String)


def test_inspect_arguments_are_checked_as_part_4_says():
    assert _check_arguments([_string("p"), _string(None), _string("")]) is None  # null strings are strings
    assert _check_arguments([_string("p")]).StatusCode.value == ua.StatusCodes.BadArgumentsMissing
    assert _check_arguments([_string("p")] * 4).StatusCode.value == ua.StatusCodes.BadTooManyArguments
    wrong = _check_arguments([_string("p"), ua.Variant(["a"], ua.VariantType.String), ua.Variant(1.5)])
    assert wrong.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert [s.value for s in wrong.InputArgumentResults] == [0, ua.StatusCodes.BadTypeMismatch,
                                                              ua.StatusCodes.BadTypeMismatch]
    long = _check_arguments([_string("p"), _string("l"), _string("x" * 5000)])
    assert [s.value for s in long.InputArgumentResults] == [0, 0, ua.StatusCodes.BadOutOfRange]
