"""Verdicts to the line and inspection requests from it over MQTT (paho-mqtt 2.x, MQTT 5.0).

Topics under one prefix (``--mqtt-prefix``, default ``defect-station``):

==========================  =========================================================================
``<prefix>/verdict``        the station publishes one message per inspection (:func:`verdict_message`)
``<prefix>/request``        the station subscribes: ``{"part_id", "lot"?, "image_path", "request_id"?}``
``<prefix>/error``          the station's answer to a request it could not take (the reason, the request id)
``<prefix>/status``         ``online`` / ``offline``, retained; ``offline`` is also the last will
``<prefix>/drift``          a model's drift state when it changes (:func:`drift_message`), from the outbox
==========================  =========================================================================

Nothing lost, nothing reordered (:class:`OutboxPublisher`). A verdict and its message are written in one
SQLite transaction (``Store.add_inspection(messages=...)``); the publisher sends the outbox's oldest unpublished
message with QoS 1, waits for the broker's PUBACK (MQTT 5.0 section 4.3.2, 3.1.1 section 4.3.2: the broker owns
the message once it acknowledged it) and only then marks it published and sends the next one. The outbox, not
memory, is the queue: a station restarted after a crash or a power cut resends what was never acknowledged.

At least once, not exactly once. A message can reach the line twice: when the broker acknowledged it and the
station died (or lost the connection) before the acknowledgement was marked in SQLite, the message goes again
(paho re-sends it with the DUP flag after a reconnect, MQTT 5.0 section 4.4; the outbox re-sends it after a
restart). Consumers deduplicate on ``inspection_id`` (unique and increasing per station database): a verdict
message is idempotent by that key. Consumers that must not miss verdicts while they are away subscribe with
QoS 1 and a persistent session (MQTT 5.0 ``Clean Start`` 0 and a ``Session Expiry Interval``, section 3.1.2.4
and 3.1.2.11.2; 3.1.1: ``CleanSession`` 0, section 3.1.2.4): the broker then queues the messages for them.

Requests (:class:`RequestSubscriber`) are acknowledged only after the station's callback returned (paho's
``manual_ack``): a request that arrived while the station died is delivered again by the broker's persistent
session of the station, and one redelivered (DUP) with a ``request_id`` already handled is skipped. The
request id is also the record's identity (``mqtt:<prefix>:<request_id>``, the inspection's write key): a
request recorded but not acknowledged when the station was killed is answered after the restart with the
verdict recorded the first time, and nothing is written twice. A PLC that wants exactly one record per part
must therefore send a ``request_id``, unique on its prefix; requests without one are inspected at every
delivery.

The password never goes on the command line (every user of the PC sees command lines): it comes from the
environment variable :data:`PASSWORD_ENV`.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import concurrent.futures
import queue
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ..store import MAX_PART_ID, Store, StoreError

log = logging.getLogger(__name__)

CHANNEL = "mqtt"  # the outbox channel of these messages
PASSWORD_ENV = "DEFECT_STATION_MQTT_PASSWORD"
DEFAULT_PREFIX = "defect-station"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}  # IANA's ports for MQTT and MQTT over TLS
URL_EXPECTED = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS), e.g. mqtt://broker.line:1883"
MAX_PREFIX = 200
MAX_FIELD = MAX_PART_ID  # part ids, lots, request ids and image paths: what the store keeps of a part
MAX_REQUEST_BYTES = 64 * 1024
REQUEST_FIELDS = ("part_id", "lot", "image_path", "request_id")
VERDICTS = ("OK", "NG", "ERROR")
VERDICT_SCHEMA = 1  # bumped when a consumer would have to change
DRIFT_SCHEMA = 1
STATUS_ONLINE, STATUS_OFFLINE = "online", "offline"


class MqttConfigError(ValueError):
    """A bad ``--mqtt*`` setting; the message is one line naming the option and what was expected."""


class RequestError(ValueError):
    """A request the station cannot take; the message is the reason the requester gets on the error topic."""


# ---------------------------------------------------------------------------------------------------- settings


def parse_mqtt_url(url: str) -> tuple[bool, str, int, str | None]:
    """``(tls, host, port, user name or None)`` of ``mqtt://[USER@]HOST[:PORT]`` or ``mqtts://...``.

    Default ports: 1883 and 8883. A password in the URL is refused: it would be on the command line.
    """
    if not isinstance(url, str) or not url.strip():
        raise MqttConfigError(f"--mqtt: the broker URL is empty; {URL_EXPECTED}")
    text = url.strip()
    shown = re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", text)  # a password in the URL never goes into a log
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError: not a number, or out of 0..65535
    except ValueError as error:
        raise MqttConfigError(f"--mqtt {shown!r}: {error}; {URL_EXPECTED}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        what = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise MqttConfigError(f"--mqtt {shown!r}: {what}; {URL_EXPECTED}")
    if parts.password is not None:
        raise MqttConfigError(f"--mqtt {shown!r}: holds a password; give it in the environment variable {PASSWORD_ENV} "
                              f"instead (a command line is visible to every user of the PC)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise MqttConfigError(f"--mqtt {shown!r}: has a path, query or fragment; {URL_EXPECTED}")
    host = parts.hostname
    if not host:
        raise MqttConfigError(f"--mqtt {shown!r}: no host; {URL_EXPECTED}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?", host):
            raise MqttConfigError(f"--mqtt {shown!r}: {host!r} is not a host name or IP address; "
                                  f"{URL_EXPECTED}") from None
    if port == 0:
        raise MqttConfigError(f"--mqtt {shown!r}: port 0; {URL_EXPECTED}")
    user = unquote(parts.username) if parts.username else None
    return scheme == "mqtts", host, port or DEFAULT_PORTS[scheme], user


def check_prefix(prefix: str) -> str:
    """A topic prefix the station can publish under and subscribe to: ``prefix``, or MqttConfigError.

    No wildcard (``+``, ``#``: MQTT 5.0 section 4.7.1, not allowed in topic names), no NUL (section 1.5.4), no
    leading ``$`` (section 4.7.2: the broker's own topics), no empty level (a ``/`` at either end or ``//``).
    """
    if not isinstance(prefix, str) or not prefix:
        raise MqttConfigError(f"--mqtt-prefix: empty; expected topic levels such as {DEFAULT_PREFIX}/line-3")
    for bad, why in (("+", "a wildcard"), ("#", "a wildcard"), ("\x00", "a NUL character")):
        if bad in prefix:
            raise MqttConfigError(f"--mqtt-prefix {prefix!r}: contains {bad!r} ({why}); topic names cannot")
    if prefix.startswith("$"):
        raise MqttConfigError(f"--mqtt-prefix {prefix!r}: starts with '$' (topics of the broker itself)")
    if prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise MqttConfigError(f"--mqtt-prefix {prefix!r}: has an empty topic level; expected e.g. "
                              f"{DEFAULT_PREFIX}/line-3")
    if len(prefix) > MAX_PREFIX:
        raise MqttConfigError(f"--mqtt-prefix: {len(prefix)} characters; at most {MAX_PREFIX}")
    try:
        prefix.encode("utf-8")
    except UnicodeEncodeError:
        raise MqttConfigError(f"--mqtt-prefix {prefix!r}: not valid Unicode text") from None
    return prefix


@dataclass(frozen=True)
class MqttSettings:
    """Where the broker is, who the station is to it, and the topics (see the module docstring)."""

    host: str
    port: int = 1883
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # TLS: the CA that signed the broker's certificate (None: the system's CAs)
    prefix: str = DEFAULT_PREFIX
    client_id_base: str | None = None  # None: from the prefix (two stations on one broker need two prefixes)
    keepalive_s: int = 15  # the broker declares the station dead (last will) after 1.5 x this (5.0 section 3.1.2.10)
    backoff_min_s: float = 0.5  # reconnect and retry delays: doubled after each failure, capped
    backoff_max_s: float = 30.0
    poll_s: float = 5.0  # the publisher looks at the outbox at least this often (notify() wakes it at once)
    request_session_s: int = 300  # how long the broker keeps requests for a station that is away

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if not 1 <= self.port <= 65535:
            raise MqttConfigError(f"MQTT port must be 1 to 65535, got {self.port}")
        if self.password is not None and self.username is None:
            raise MqttConfigError(f"{PASSWORD_ENV} is set but no MQTT user name is given (--mqtt-user or "
                                  f"mqtt://USER@HOST)")
        if self.ca_file is not None and not self.tls:
            raise MqttConfigError(f"--mqtt-ca {self.ca_file}: a CA file is for mqtts:// (TLS); the URL is mqtt://")
        if not 1 <= self.keepalive_s <= 65535 or self.poll_s <= 0 or self.request_session_s < 0:
            raise MqttConfigError(f"MQTT timing: keep-alive 1 to 65535 s, a positive poll and a session expiry >= 0 "
                                  f"s, got {self.keepalive_s}, {self.poll_s} and {self.request_session_s}")
        if not 0 < self.backoff_min_s <= self.backoff_max_s:
            raise MqttConfigError(f"MQTT back-off: need 0 < min <= max, got {self.backoff_min_s} and "
                                  f"{self.backoff_max_s}")

    @property
    def url(self) -> str:
        """The broker as the page shows it (never the password)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"

    @property
    def verdict_topic(self) -> str:
        return f"{self.prefix}/verdict"

    @property
    def request_topic(self) -> str:
        return f"{self.prefix}/request"

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}/status"

    @property
    def error_topic(self) -> str:
        return f"{self.prefix}/error"

    @property
    def drift_topic(self) -> str:
        return f"{self.prefix}/drift"

    def client_id(self, role: str) -> str:
        """A stable client id per role: the broker finds the station's persistent session under it."""
        base = self.client_id_base or re.sub(r"[^A-Za-z0-9._-]+", "-", self.prefix)
        return f"{base}-{role}"


def add_mqtt_arguments(parser: argparse.ArgumentParser) -> None:
    """The station's ``--mqtt*`` options (read back with :func:`settings_from_args`)."""
    group = parser.add_argument_group("MQTT (verdicts to the line, inspection requests from it)")
    group.add_argument("--mqtt", metavar="URL",
                       help="broker: mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (TLS, 8883); USER@HOST gives "
                            f"the user name; the password comes from the environment variable {PASSWORD_ENV}")
    group.add_argument("--mqtt-prefix", metavar="TOPIC", default=None,
                       help=f"topic prefix (default {DEFAULT_PREFIX}): PREFIX/verdict, PREFIX/request, PREFIX/error, "
                            "PREFIX/status")
    group.add_argument("--mqtt-user", metavar="NAME", help="user name at the broker (or mqtt://NAME@HOST)")
    group.add_argument("--mqtt-ca", metavar="FILE", type=Path,
                       help="mqtts://: the CA certificate (PEM) that signed the broker's (default: the system's CAs)")
    group.add_argument("--mqtt-client-id", metavar="NAME",
                       help="client id base at the broker (default: from the prefix); -verdicts and -requests are "
                            "appended")


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> MqttSettings | None:
    """The settings of parsed :func:`add_mqtt_arguments` options; None without ``--mqtt``."""
    if getattr(args, "mqtt", None) is None:
        given = [name for name in ("mqtt_prefix", "mqtt_user", "mqtt_ca", "mqtt_client_id")
                 if getattr(args, name, None) is not None]
        if given:
            raise MqttConfigError(f"--{given[0].replace('_', '-')} needs --mqtt URL")
        return None
    return settings_from_options(args.mqtt, prefix=args.mqtt_prefix, user=args.mqtt_user, ca_file=args.mqtt_ca,
                                 client_id=args.mqtt_client_id, environ=environ)


def settings_from_options(url: str, *, prefix: str | None = None, user: str | None = None,
                          ca_file: str | Path | None = None, client_id: str | None = None,
                          environ: Mapping[str, str] | None = None, **tuning: Any) -> MqttSettings:
    """Settings from the option values; the password from ``environ`` (default: the process environment)."""
    tls, host, port, url_user = parse_mqtt_url(url)
    if user is not None and url_user is not None and user != url_user:
        raise MqttConfigError(f"--mqtt-user {user!r} and the user name {url_user!r} in --mqtt differ; give one")
    username = user if user is not None else url_user
    if username is not None and (not username or "\x00" in username):
        raise MqttConfigError(f"MQTT user name {username!r}: empty or with a NUL character")
    password = (os.environ if environ is None else environ).get(PASSWORD_ENV) or None
    ca = Path(ca_file) if ca_file is not None else None
    if ca is not None and tls and not ca.is_file():
        raise MqttConfigError(f"--mqtt-ca {ca}: no such file; expected the broker's CA certificate (PEM)")
    if client_id is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", client_id):
        raise MqttConfigError(f"--mqtt-client-id {client_id!r}: expected 1 to 100 of A-Z a-z 0-9 . _ -")
    return MqttSettings(host=host, port=port, tls=tls, username=username, password=password, ca_file=ca,
                        prefix=check_prefix(DEFAULT_PREFIX if prefix is None else prefix), client_id_base=client_id,
                        **tuning)


# ---------------------------------------------------------------------------------------------------- payloads


def _finite(value: Any) -> float | None:
    """A score JSON can carry: a finite float, else None (a model's NaN must not fail the verdict's transaction)."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp(value: str | datetime) -> str:
    """ISO 8601 with a UTC offset (what the store writes); refuses a time without an offset."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {value!s} has no UTC offset; expected ISO 8601 such as 2025-03-01T08:00:00+01:00")
    return moment.isoformat(timespec="milliseconds") if isinstance(value, datetime) else str(value)


def verdict_message(*, inspection_id: int, part_id: str | None, lot: str | None, verdict: str, grade: str | None,
                    class_name: str | None, scores: Mapping[str, float | None] | None = None,
                    versions: Mapping[str, str | None] | None = None, timestamp: str | datetime,
                    error: str | None = None) -> str:
    """The JSON text of one verdict (sorted keys, no spaces): what ``<prefix>/verdict`` carries.

    ``{"class", "error" (ERROR only), "grade", "inspection_id", "lot", "part_id", "schema", "scores": {model: score},
    "timestamp", "verdict": "OK" | "NG" | "ERROR", "versions": {model: version}}``. ``inspection_id`` is the
    consumers' deduplication key (see the module docstring). A score that is not a finite number is ``null``.
    """
    if isinstance(inspection_id, bool) or not isinstance(inspection_id, int) or inspection_id < 1:
        raise ValueError(f"inspection_id must be a positive integer, got {inspection_id!r}")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if verdict == "ERROR" and not error:
        raise ValueError("an ERROR verdict needs its error text")
    if verdict != "ERROR" and error is not None:
        raise ValueError(f"error is only for an ERROR verdict, not for {verdict}")
    payload: dict[str, Any] = {
        "schema": VERDICT_SCHEMA, "inspection_id": inspection_id, "part_id": part_id, "lot": lot, "verdict": verdict,
        "grade": grade, "class": class_name, "timestamp": _timestamp(timestamp),
        "scores": {str(model): _finite(score) for model, score in (scores or {}).items()},
        "versions": {str(model): None if version is None else str(version)
                     for model, version in (versions or {}).items()},
    }
    if verdict == "ERROR":
        payload["error"] = str(error)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def drift_message(change: Mapping[str, Any], *, inspection_id: int, timestamp: str | datetime,
                  line: str | None = None, station: str | None = None) -> str:
    """The JSON text of one drift change (sorted keys): what ``<prefix>/drift`` carries.

    ``{"schema", "model", "state": "collecting" | "ok" | "warn" | "drift", "tripped": [signal], "psi": {signal:
    value}, "n": {signal: count}, "inspection_id" (the part that changed it), "timestamp", "line", "station"}``.
    """
    psi = {str(name): _finite(value) for name, value in (change.get("psi") or {}).items()}
    payload = {"schema": DRIFT_SCHEMA, "model": str(change["model"]), "state": str(change["state"]),
               "tripped": [str(name) for name in change.get("tripped") or []], "psi": psi,
               "n": {str(name): int(value) for name, value in (change.get("n") or {}).items()},
               "inspection_id": int(inspection_id), "timestamp": _timestamp(timestamp), "line": line,
               "station": station}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def verdict_messages(topic: str, *, part_id: str | None, lot: str | None, verdict: str, grade: str | None,
                     class_name: str | None, scores: Mapping[str, float | None] | None = None,
                     versions: Mapping[str, str | None] | None = None,
                     error: str | None = None) -> Callable[[int, str], list[tuple[str, str, str]]]:
    """The ``messages`` argument of ``Store.add_inspection`` for one verdict on ``topic``.

    The fields are checked here, before the store's transaction (a bad verdict fails the caller, never the
    inspection's write); the inspection id and the time come from the transaction.
    """
    fields = {"part_id": part_id, "lot": lot, "verdict": verdict, "grade": grade, "class_name": class_name,
              "scores": dict(scores or {}), "versions": dict(versions or {}), "error": error}
    verdict_message(inspection_id=1, timestamp=datetime.now().astimezone(), **fields)

    def messages(inspection_id: int, created_at: str) -> list[tuple[str, str, str]]:
        return [(CHANNEL, topic, verdict_message(inspection_id=inspection_id, timestamp=created_at, **fields))]

    return messages


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class InspectionRequest:
    """A checked request of ``<prefix>/request``."""

    part_id: str
    lot: str | None
    image_path: str
    request_id: str | None


def _field(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    if name not in data:
        if required:
            raise RequestError(f"missing field '{name}'")
        return None
    value = data[name]
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise RequestError(f"field '{name}' must be a string, got {_json_type(value)}")
    if "\x00" in value:
        raise RequestError(f"field '{name}' contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \\ud800 escapes can make
        raise RequestError(f"field '{name}' is not valid Unicode text") from None
    if len(value) > MAX_FIELD:
        raise RequestError(f"field '{name}' is {len(value)} characters; at most {MAX_FIELD}")
    if not value.strip():
        if required:
            raise RequestError(f"field '{name}' is empty")
        return None
    return value


def parse_request(payload: bytes | bytearray | str) -> InspectionRequest:
    """The checked request in ``payload``, or RequestError with the reason.

    A JSON object of at most :data:`MAX_REQUEST_BYTES` bytes: ``part_id`` and ``image_path`` (non-empty strings),
    ``lot`` and ``request_id`` (optional strings); each at most :data:`MAX_FIELD` characters; no other field.
    """
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(f"the request is {len(raw)} bytes; at most {MAX_REQUEST_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(f"the request is not UTF-8 text (byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(f"the request is not JSON: {error.msg} at line {error.lineno} "
                           f"column {error.colno}") from None
    except RecursionError:
        raise RequestError("the request is not JSON this station reads: nested too deeply") from None
    if not isinstance(data, dict):
        raise RequestError(f"the request must be a JSON object, got {_json_type(data)}")
    unknown = sorted(set(data) - set(REQUEST_FIELDS))
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(repr(name[:50]) for name in unknown[:5])}; expected "
                           f"{', '.join(REQUEST_FIELDS)}")
    return InspectionRequest(part_id=str(_field(data, "part_id", required=True)),
                             lot=_field(data, "lot", required=False),
                             image_path=str(_field(data, "image_path", required=True)),
                             request_id=_field(data, "request_id", required=False))


def _peek(payload: bytes) -> dict[str, str]:
    """``request_id`` and ``part_id`` of a rejected request, where readable: the requester matches the answer."""
    try:
        data = json.loads(payload.decode("utf-8")) if len(payload) <= MAX_REQUEST_BYTES else None
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: data[key] for key in ("request_id", "part_id")
            if isinstance(data.get(key), str) and len(data[key]) <= MAX_FIELD and "\x00" not in data[key]}


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------- clients


class _Client(mqtt.Client):
    """paho's client, telling why a connection attempt failed: ``loop_forever`` swallows the OSError of
    :meth:`reconnect` (refused, unreachable, a TLS certificate that does not verify), which the page shows."""

    def __init__(self, *args: Any, on_connect_error: Callable[[OSError], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._station_connect_error = on_connect_error

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as error:
            self._station_connect_error(error)
            raise


def _new_client(settings: MqttSettings, role: str, on_connect_error: Callable[[OSError], None], *,
                manual_ack: bool = False) -> _Client:
    """A paho client (callback API version 2, MQTT 5.0: PUBACK reason codes, session expiry) with auth and TLS."""
    client = _Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id(role), protocol=mqtt.MQTTv5,
                     manual_ack=manual_ack, on_connect_error=on_connect_error)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        try:  # verifies the broker's certificate and host name (paho's defaults: CERT_REQUIRED, not insecure)
            client.tls_set(ca_certs=None if settings.ca_file is None else str(settings.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise MqttConfigError(f"--mqtt-ca {settings.ca_file}: cannot be used as a CA certificate "
                                  f"({error})") from None
    # paho's own capped exponential back-off between connection attempts (reconnect_delay_set)
    client.reconnect_delay_set(settings.backoff_min_s, settings.backoff_max_s)  # type: ignore[arg-type]
    return client


def _guarded(function: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that logs its exception instead of raising it into paho's loop (which would end it)."""

    def call(*args: Any) -> None:
        try:
            function(*args)
        except Exception:
            log.exception("MQTT callback %s failed", function.__name__)

    call.__name__ = function.__name__
    return call


class OutboxPublisher:
    """Publishes the store's ``mqtt`` outbox to the broker, in order, each message at least once.

    A thread of its own with its own client (paho's network thread under it): :meth:`start`, :meth:`notify`
    after a verdict was stored, :meth:`state` for the page, :meth:`stop`. Every message: QoS 1 publish, wait
    for the PUBACK (MQTT 5.0 section 3.4), mark it published, next. While the broker is away the publisher
    reconnects with capped exponential back-off; nothing is dropped, and the backlog goes in order once the
    broker is back. ``Store.outbox_attempted`` counts the tries that did not get through at once on the
    message waiting: each failed connection, each refusal (a PUBACK reason code >= 0x80) and each re-send after
    a lost connection. A message the broker took at the first send keeps 0: counting every send would add a
    synchronous SQLite write per verdict, as much as marking it published costs.

    One message in flight, on purpose. paho and a broker keep the order of a window of QoS 1 messages on one
    connection (5.0 section 4.6), but not across what a line PC lives through: a broker refusing message n
    (a PUBACK reason code >= 0x80, e.g. not authorised or quota exceeded) while it accepts n+1, or a restart
    that loses paho's in-memory window after n+1 was acknowledged and n was not. Either way n would reach the
    line after n+1. With one in flight, n+1 is not sent before n was acknowledged and marked, so the broker
    only ever sees the outbox order. The cost is one round trip per verdict: a backlog of 200 verdicts went to
    a local mosquitto in 1 to 2 s on a 2-core PC, most of it the SQLite write that marks each one published,
    against tens of milliseconds per inspection.

    The status topic: ``online`` (retained) at each connection, ``offline`` (retained) from :meth:`stop`, and
    ``offline`` as the last will (5.0 section 3.1.2.5; 3.1.1 section 3.1.2.5), which the broker publishes when
    the station vanishes without a DISCONNECT (crash, power cut, cable): 1.5 x the keep-alive after its last
    packet at the latest (section 3.1.2.10).
    """

    def __init__(self, settings: MqttSettings, store: Store, *, channel: str = CHANNEL, batch: int = 100) -> None:
        self.settings = settings
        self.store = store
        self.channel = channel
        self.batch = int(batch)
        self._client: _Client | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._acked = threading.Condition()  # guards _acks: PUBACKs by message id, from paho's thread
        self._acks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()  # guards the fields the page reads
        self._head: int | None = None  # the outbox id that goes next: failed connections count against it
        self._in_flight: int | None = None
        self._last_error: str | None = None
        self._last_published: int | None = None
        self._published = 0

    # ------------------------------------------------------------------ public

    def start(self) -> OutboxPublisher:
        """Connect (in the background: a broker that is down is retried) and start draining the outbox."""
        if self._thread is not None:
            raise RuntimeError("the MQTT outbox publisher was started already")
        client = _new_client(self.settings, "verdicts", _guarded(self._on_connect_error))
        client.will_set(self.settings.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = _guarded(self._on_connect)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_publish = _guarded(self._on_publish)
        # Clean Start: the publisher keeps no session state at the broker; its queue is the outbox
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s, clean_start=True)
        self._client = client
        client.loop_start()
        self._thread = threading.Thread(target=self._run, name="defect-station-mqtt-outbox", daemon=True)
        self._thread.start()
        return self

    def notify(self) -> None:
        """A verdict was stored: look at the outbox now rather than at the next poll."""
        self._wake.set()

    def state(self) -> dict[str, Any]:
        """For the page: ``broker``, ``topic``, ``connected``, ``last_error`` (what keeps verdicts from the
        broker now; None since a connection or a publish worked), ``pending`` (outbox rows not yet acknowledged;
        None when the store cannot be read), ``in_flight_id``, ``last_published_id`` and ``published`` (outbox
        ids and count of this run)."""
        try:
            pending: int | None = self.store.outbox_counts(self.channel)["pending"]
        except StoreError as error:
            pending = None
            self._set_error(f"cannot read the outbox of {self.store.path}: {error}")
        with self._lock:
            return {"broker": self.settings.url, "topic": self.settings.verdict_topic,
                    "connected": self._connected.is_set(), "last_error": self._last_error, "pending": pending,
                    "in_flight_id": self._in_flight, "last_published_id": self._last_published,
                    "published": self._published}

    def stop(self, timeout: float = 5.0) -> None:
        """Stop: the message in flight stays unmarked (it goes again at the next start), ``offline`` is published
        (retained) when connected, then a normal DISCONNECT (after which the broker discards the last will)."""
        if self._thread is None or self._client is None:
            return
        self._stopping.set()
        self._wake.set()
        with self._acked:
            self._acked.notify_all()
        self._thread.join(timeout)
        client = self._client
        if self._connected.is_set():
            info = client.publish(self.settings.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            if self._wait_ack(info.mid, deadline=time.monotonic() + timeout) is None:
                log.warning("MQTT: the broker at %s did not acknowledge 'offline' on %s within %.1f s",
                            self.settings.url, self.settings.status_topic, timeout)
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> OutboxPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ paho's thread

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:  # e.g. bad user name or password, not authorised: paho tries again after a back-off
            self._set_error(f"the broker at {self.settings.url} refused the connection: {reason}")
            log.warning("MQTT: %s", self._last_error)
            self._count_attempt(self._head)
            return
        self._set_error(None)
        with self._lock:
            # read before the publisher's thread may send a new message: that one is no re-send
            resent = self._in_flight
        self._connected.set()
        client.publish(self.settings.status_topic, STATUS_ONLINE, qos=1, retain=True)
        # paho sends the unacknowledged message again right after this callback (DUP set): one more attempt
        self._count_attempt(resent)
        log.info("MQTT: connected to %s; verdicts on %s", self.settings.url, self.settings.verdict_topic)
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._stopping.is_set():
            self._set_error(f"lost the connection to the broker at {self.settings.url}: {reason}")
            log.warning("MQTT: %s; reconnecting", self._last_error)

    def _on_connect_error(self, error: OSError) -> None:
        self._set_error(f"cannot connect to the broker at {self.settings.url}: {error}")
        log.debug("MQTT: %s", self._last_error)
        self._count_attempt(self._head)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        with self._acked:
            self._acks[mid] = reason
            self._acked.notify_all()

    # ------------------------------------------------------------------ the publisher's thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._wake.clear()  # before reading: a notify() from now on is seen by the wait below
                rows = self.store.outbox_pending(self.channel, self.batch)
                if not rows:
                    self._wake.wait(self.settings.poll_s)
                    continue
                for row in rows:
                    if not self._deliver(row):
                        break
            except StoreError as error:
                self._set_error(f"cannot read the outbox of {self.store.path}: {error}")
                log.error("MQTT: %s", self._last_error)
                self._stopping.wait(self.settings.backoff_max_s)
            except Exception as error:  # e.g. paho refusing a stored topic: keep the message, show why, try later
                self._set_error(f"publishing the outbox failed: {error!r}")
                log.exception("MQTT: publishing the outbox failed")
                self._stopping.wait(self.settings.backoff_max_s)

    def _deliver(self, row: dict[str, Any]) -> bool:
        """Publish ``row`` until the broker accepted it, then mark it; False when stopping first."""
        message_id, topic = int(row["id"]), row["topic"]
        with self._lock:
            self._head = message_id
        delay = self.settings.backoff_min_s
        while not self._stopping.is_set():
            if not self._wait_connected():
                return False
            with self._acked:
                self._acks.clear()  # an old id's entry must not answer for the new message
            with self._lock:
                self._in_flight = message_id
            properties = Properties(PacketTypes.PUBLISH)
            properties.PayloadFormatIndicator = 1  # UTF-8 text (5.0 section 3.3.2.3.2)
            properties.ContentType = "application/json"
            assert self._client is not None
            info = self._client.publish(topic, row["payload"], qos=1, properties=properties)
            # NO_CONN: the connection dropped in between; paho keeps the message and sends it on reconnecting
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                reason = self._wait_ack(info.mid)
                if reason is None:
                    return False  # stopping: not marked, so it goes again at the next start
                if not reason.is_failure:  # success, or 0x10 "no matching subscribers": the broker has it
                    return self._mark(message_id)
                problem = f"refused message {message_id} (inspection {row['inspection_id']}) on {topic}: {reason}"
            else:
                problem = f"could not queue message {message_id} on {topic}: {mqtt.error_string(info.rc)}"
            with self._lock:
                self._in_flight = None
            self._count_attempt(message_id)
            self._set_error(f"the broker at {self.settings.url} {problem}")
            log.error("MQTT: %s; trying again in %.1f s", self._last_error, delay)
            if self._stopping.wait(delay):
                return False
            delay = min(delay * 2, self.settings.backoff_max_s)
        return False

    def _mark(self, message_id: int) -> bool:
        delay = self.settings.backoff_min_s
        while True:
            try:
                self.store.outbox_published(message_id)
                break
            except StoreError as error:
                # acknowledged but not marked: if the station stops now, it is published again (idempotent)
                self._set_error(f"cannot mark outbox message {message_id} published in {self.store.path}: {error}")
                log.error("MQTT: %s", self._last_error)
                if self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, self.settings.backoff_max_s)
        with self._lock:
            self._last_published, self._in_flight, self._head = message_id, None, None
            self._published += 1
            self._last_error = None  # what went wrong before is over: the broker took this one
        return True

    def _wait_connected(self) -> bool:
        while not self._stopping.is_set():
            if self._connected.wait(0.2):
                return True
        return False

    def _wait_ack(self, mid: int, *, deadline: float | None = None) -> ReasonCode | None:
        """The PUBACK's reason code for ``mid``; None when stopping (or past ``deadline``, when given)."""
        with self._acked:
            while mid not in self._acks:
                if deadline is None:
                    if self._stopping.is_set():
                        return None
                    self._acked.wait(0.5)
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._acked.wait(min(left, 0.5))
            return self._acks.pop(mid)

    def _count_attempt(self, message_id: int | None) -> None:
        if message_id is None:
            return
        try:
            self.store.outbox_attempted(message_id)
        except StoreError as error:
            log.error("MQTT: cannot count an attempt on outbox message %s in %s: %s", message_id, self.store.path,
                      error)

    def _set_error(self, text: str | None) -> None:
        with self._lock:
            self._last_error = text


class InspectPart(Protocol):
    """The station's inspection of one part: writes the verdict and its outbox message, returns the payload."""

    def __call__(self, part_id: str, lot: str | None, image_path: str, *, origin: str = "mqtt",
                 request_key: str | None = None) -> dict[str, Any]:
        ...


class RequestSubscriber:
    """Takes inspection requests from ``<prefix>/request`` (QoS 1) and hands them to ``inspect_part`` in order.

    Its own client (not the publisher's): it keeps a persistent session at the broker (5.0 Clean Start 0 and a
    Session Expiry Interval of ``request_session_s``, sections 3.1.2.4 and 3.1.2.11.2), so requests sent while
    the station restarts wait for it, whereas the publisher keeps none (its queue is the outbox); and neither
    one's reconnects nor waits touch the other. It does not publish verdicts: ``inspect_part`` stores the
    verdict with its outbox message, and the :class:`OutboxPublisher` sends it.

    paho's network thread only queues a request, so a slow inspection never stalls the keep-alive; a dispatch
    thread checks the requests in the order they arrived and hands them to ``workers`` inspection threads (the
    station's parts in flight: with several, one part decodes or is recorded while another is inferred). Each
    request is acknowledged (PUBACK) after its callback returned, in arrival order as 5.0 section 4.6 asks: an
    ack thread waits for the requests' results in that order, so a part finished early waits for the ones
    before it to be acknowledged. The broker's flow control
    (Receive Maximum, section 3.1.2.11.3, ``receive_maximum`` here) then bounds the queue, and a request in the
    queue when the station dies is delivered again. Retained requests are not taken (Retain Handling 2,
    section 3.8.3.1): a retained request would be inspected again at every reconnect.

    A malformed request (not JSON, wrong types, a missing field, over 64 KiB) or a failed callback is logged
    with the reason and answered on ``<prefix>/error``: ``{"error": reason, "part_id"?, "request_id"?,
    "request_topic"}``; the subscriber goes on.

    ``image_path`` comes from whoever may publish on the request topic: ``inspect_part`` must resolve it inside
    the camera's folder and refuse anything else (``..``, absolute paths elsewhere), and the broker's ACL should
    let only the line's PLC / MES publish there.
    """

    def __init__(self, settings: MqttSettings, inspect_part: InspectPart, *, receive_maximum: int = 16,
                 remember: int = 1000, workers: int = 1) -> None:
        if int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.settings = settings
        self.inspect_part = inspect_part
        self.workers = int(workers)
        self.receive_maximum = max(int(receive_maximum), self.workers)
        self._remember = int(remember)
        self._recent: OrderedDict[str, None] = OrderedDict()  # request ids handled lately (DUP redeliveries)
        self._queue: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._client: _Client | None = None
        self._worker: threading.Thread | None = None
        self._acker: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        # (message, its handling) in arrival order: the ack thread acknowledges each once handled
        self._handled: queue.Queue[tuple[mqtt.MQTTMessage, concurrent.futures.Future] | None] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._subacked = threading.Condition()  # guards _subacks: SUBACKs by packet id, from paho's thread
        self._subacks: set[int] = set()
        self._lock = threading.Lock()
        self._last_error: str | None = None
        self._counts = {"connections": 0, "received": 0, "inspected": 0, "rejected": 0, "failed": 0, "duplicates": 0}

    def start(self) -> RequestSubscriber:
        """Connect in the background (retried while the broker is down) and start the worker."""
        if self._worker is not None:
            raise RuntimeError("the MQTT request subscriber was started already")
        client = _new_client(self.settings, "requests", _guarded(self._on_connect_error), manual_ack=True)
        client.on_connect = _guarded(self._on_connect)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_subscribe = _guarded(self._on_subscribe)
        client.on_message = _guarded(self._on_message)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = int(self.settings.request_session_s)
        properties.ReceiveMaximum = self.receive_maximum
        client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s, clean_start=False,
                             properties=properties)
        self._client = client
        self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="defect-station-part")
        self._worker = threading.Thread(target=self._work, name="defect-station-mqtt-requests", daemon=True)
        self._acker = threading.Thread(target=self._ack_in_order, name="defect-station-mqtt-acks", daemon=True)
        self._worker.start()
        self._acker.start()
        client.loop_start()
        return self

    def state(self) -> dict[str, Any]:
        """For the page: ``broker``, ``topic``, ``connected``, ``subscribed``, ``last_error``, ``queued`` and the
        counts of this run (``connections``, ``received``, ``inspected``, ``rejected``, ``failed``,
        ``duplicates``)."""
        with self._lock:
            return {"broker": self.settings.url, "topic": self.settings.request_topic,
                    "connected": self._connected.is_set(), "subscribed": self._subscribed.is_set(),
                    "last_error": self._last_error, "queued": self._queue.qsize(), **self._counts}

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the requests being inspected and acknowledge them, then disconnect once the broker has read the
        acknowledgements (:meth:`_sync`). Requests queued but not begun are not acknowledged: the session keeps
        them at the broker, which delivers them at the next start."""
        if self._worker is None or self._client is None:
            return
        self._stopping.set()  # from now on paho's thread queues nothing more
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        self._worker.join(timeout)
        if self._acker is not None:
            self._acker.join(max(0.0, deadline - time.monotonic()))
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._sync(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()

    def _sync(self, timeout: float) -> None:
        """Make sure the broker has read every acknowledgement sent: it answers packets of one connection in order,
        so a SUBACK (of the same subscription again: nothing changes, Retain Handling 2 sends nothing) comes after
        it processed the PUBACKs before it. Without this a DISCONNECT right after the last PUBACK can lose them:
        the broker keeps sending requests, the socket closes with unread ones, and the TCP reset that follows
        makes the broker drop what it had not read yet, so it would deliver those requests again next time."""
        if self._client is None or not self._connected.is_set():
            return
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        _, mid = self._client.subscribe(self.settings.request_topic, options=options)
        deadline = time.monotonic() + timeout
        with self._subacked:
            while mid not in self._subacks and time.monotonic() < deadline and self._connected.is_set():
                self._subacked.wait(0.1)

    def __enter__(self) -> RequestSubscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ paho's thread

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            self._set_error(f"the broker at {self.settings.url} refused the connection: {reason}")
            log.warning("MQTT: %s", self._last_error)
            return
        self._set_error(None)
        self._count("connections")
        self._connected.set()
        # subscribed again at every connection: harmless with a session present, needed without one
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe(self.settings.request_topic, options=options)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Properties | None) -> None:
        with self._subacked:
            self._subacks.add(mid)
            self._subacked.notify_all()
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self._set_error(f"the broker at {self.settings.url} refused the subscription to "
                            f"{self.settings.request_topic}: {refused[0]}")
            log.error("MQTT: %s", self._last_error)
            return
        if self._subscribed.is_set() or self._stopping.is_set():
            return
        self._subscribed.set()
        log.info("MQTT: taking inspection requests on %s at %s", self.settings.request_topic, self.settings.url)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if was_connected and reason.is_failure:
            self._set_error(f"lost the connection to the broker at {self.settings.url}: {reason}")
            log.warning("MQTT: %s; reconnecting", self._last_error)

    def _on_connect_error(self, error: OSError) -> None:
        self._set_error(f"cannot connect to the broker at {self.settings.url}: {error}")
        log.debug("MQTT: %s", self._last_error)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._stopping.is_set():  # while stopping: not acknowledged, so the broker keeps it for next time
            self._queue.put(message)  # nothing more on paho's thread: the worker checks and runs it

    # ------------------------------------------------------------------ the worker

    def _work(self) -> None:
        """Dispatch: each request, in arrival order, to the inspection threads; the ack thread follows."""
        assert self._pool is not None
        while True:
            message = self._queue.get()
            if message is None:
                self._handled.put(None)
                return
            self._handled.put((message, self._pool.submit(self._handle_safely, message)))

    def _ack_in_order(self) -> None:
        while True:
            item = self._handled.get()
            if item is None:
                return
            message, handling = item
            handling.result()  # _handle_safely never raises
            if message.qos > 0 and self._client is not None:
                self._client.ack(message.mid, message.qos)  # after the callback: at least once

    def _handle_safely(self, message: mqtt.MQTTMessage) -> None:
        try:
            self._handle(message)
        except Exception:  # never lose a worker over one request
            log.exception("MQTT: handling a request on %s failed", message.topic)

    def _seen(self, request_id: str | None) -> bool:
        """Whether ``request_id`` was taken lately; remembers it (checked and noted at once: requests run side by
        side)."""
        if request_id is None:
            return False
        with self._lock:
            seen = request_id in self._recent
            self._recent[request_id] = None
            self._recent.move_to_end(request_id)
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        return seen

    def _handle(self, message: mqtt.MQTTMessage) -> None:
        self._count("received")
        if message.topic != self.settings.request_topic:
            log.warning("MQTT: ignored a message on %s (expected %s)", message.topic, self.settings.request_topic)
            return
        try:
            request = parse_request(message.payload)
        except RequestError as error:
            self._count("rejected")
            self._answer(str(error), _peek(message.payload), "rejected a request")
            return
        if self._seen(request.request_id) and message.dup:
            self._count("duplicates")
            log.info("MQTT: request %r on %s was delivered again (DUP); handled already, skipped",
                     request.request_id, message.topic)
            return
        try:
            # the request's identity, not just its delivery: a redelivery after a crash finds its record
            key = f"mqtt:{self.settings.prefix}:{request.request_id}" if request.request_id else None
            self.inspect_part(request.part_id, request.lot, request.image_path, origin="mqtt", request_key=key)
        except Exception as error:
            self._count("failed")
            reason = getattr(error, "message", None) or str(error) or type(error).__name__
            known = {"part_id": request.part_id, **({"request_id": request.request_id} if request.request_id else {})}
            self._answer(f"inspecting part {request.part_id!r} ({request.image_path}) failed: {reason}", known,
                         "a request failed")
        else:
            self._count("inspected")

    def _answer(self, reason: str, known: dict[str, str], what: str) -> None:
        """Log ``reason`` and publish it on the error topic (QoS 1, not retained), with what identifies the
        request."""
        log.warning("MQTT: %s on %s (request id %s): %s", what, self.settings.request_topic,
                    known.get("request_id", "none"), reason)
        payload = _dumps({"error": reason, "request_topic": self.settings.request_topic, **known})
        if self._client is not None:
            self._client.publish(self.settings.error_topic, payload, qos=1)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _set_error(self, text: str | None) -> None:
        with self._lock:
            self._last_error = text
