"""The station's MQTT settings, verdict payload and request checks (no broker: see
tests/integration/station/test_mqtt.py for the real one)."""
from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import datetime, timezone

import pytest

from defect_plugins.station.line import mqtt as line
from defect_plugins.station.line.mqtt import (
    PASSWORD_ENV,
    MqttConfigError,
    MqttSettings,
    RequestError,
    add_mqtt_arguments,
    check_prefix,
    parse_mqtt_url,
    parse_request,
    settings_from_args,
    settings_from_options,
    verdict_message,
    verdict_messages,
)
from defect_plugins.station.store import Store


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://broker.line", (False, "broker.line", 1883, None)),
    ("mqtts://broker.line", (True, "broker.line", 8883, None)),
    ("mqtt://10.0.0.5:1884", (False, "10.0.0.5", 1884, None)),
    ("MQTTS://plc-gw:8884/", (True, "plc-gw", 8884, None)),
    ("mqtt://station%2D3@broker:1883", (False, "broker", 1883, "station-3")),
    ("mqtt://[::1]:1883", (False, "::1", 1883, None)),
    ("  mqtt://127.0.0.1  ", (False, "127.0.0.1", 1883, None)),
])
def test_broker_urls_give_tls_host_port_and_user(url, expected):
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize(("url", "says"), [
    ("", "empty"),
    ("broker.line:1883", "scheme"),
    ("http://broker:1883", "scheme 'http'"),
    ("tcp://broker", "scheme 'tcp'"),
    ("mqtt://", "no host"),
    ("mqtt://:1883", "no host"),
    ("mqtt://broker:abc", "Port could not be cast"),
    ("mqtt://broker:70000", "out of range"),
    ("mqtt://broker:0", "port 0"),
    ("mqtt://broker/topic", "path"),
    ("mqtt://broker?x=1", "path, query"),
    ("mqtt://user:secret@broker", PASSWORD_ENV),
    ("mqtt://bad host", "not a host name"),
    ("mqtt://-broker", "not a host name"),
])
def test_bad_broker_urls_are_refused_in_one_line_naming_what_was_expected(url, says):
    with pytest.raises(MqttConfigError) as error:
        parse_mqtt_url(url)
    message = str(error.value)
    assert says in message and "\n" not in message
    assert message.startswith("--mqtt")
    if says != PASSWORD_ENV:
        assert "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]" in message
    assert "secret" not in message


@pytest.mark.parametrize(("prefix", "says"), [
    ("", "empty"),
    ("plant/+/station", "'+'"),
    ("plant/#", "'#'"),
    ("plant\x00x", "NUL"),
    ("$SYS/station", "'$'"),
    ("/plant", "empty topic level"),
    ("plant/", "empty topic level"),
    ("plant//line", "empty topic level"),
    ("p" * 201, "at most 200"),
    ("plant\ud800", "Unicode"),
])
def test_bad_prefixes_are_refused(prefix, says):
    with pytest.raises(MqttConfigError, match="--mqtt-prefix") as error:
        check_prefix(prefix)
    assert says in str(error.value)


def test_topics_and_client_ids_follow_the_prefix():
    settings = MqttSettings(host="broker", prefix="plant-1/line 3")
    assert (settings.verdict_topic, settings.request_topic, settings.status_topic, settings.error_topic) == (
        "plant-1/line 3/verdict", "plant-1/line 3/request", "plant-1/line 3/status", "plant-1/line 3/error")
    assert settings.client_id("verdicts") == "plant-1-line-3-verdicts"
    assert MqttSettings(host="broker", client_id_base="st7").client_id("requests") == "st7-requests"
    assert MqttSettings(host="::1", port=1884, tls=True, username="u").url == "mqtts://u@[::1]:1884"


def test_the_password_comes_from_the_environment_and_never_shows():
    settings = settings_from_options("mqtt://station@broker", environ={PASSWORD_ENV: "s3cret"})
    assert (settings.username, settings.password) == ("station", "s3cret")
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.url
    assert settings_from_options("mqtt://broker", user="station", environ={}).password is None
    assert settings_from_options("mqtt://broker", environ={PASSWORD_ENV: ""}).password is None
    with pytest.raises(MqttConfigError, match=f"{PASSWORD_ENV} is set but no MQTT user name"):
        settings_from_options("mqtt://broker", environ={PASSWORD_ENV: "s3cret"})
    with pytest.raises(MqttConfigError, match="differ"):
        settings_from_options("mqtt://a@broker", user="b", environ={})


def test_a_ca_file_needs_tls_and_must_exist(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    assert settings_from_options("mqtts://broker", ca_file=ca, environ={}).ca_file == ca
    with pytest.raises(MqttConfigError, match="a CA file is for mqtts://"):
        settings_from_options("mqtt://broker", ca_file=ca, environ={})
    with pytest.raises(MqttConfigError, match="no such file"):
        settings_from_options("mqtts://broker", ca_file=tmp_path / "missing.pem", environ={})


def test_command_line_options_make_the_settings():
    parser = argparse.ArgumentParser()
    add_mqtt_arguments(parser)
    assert settings_from_args(parser.parse_args([]), environ={}) is None
    args = parser.parse_args(["--mqtt", "mqtts://gw:8884", "--mqtt-prefix", "plant/line-3", "--mqtt-user", "st3",
                              "--mqtt-client-id", "station-3"])
    settings = settings_from_args(args, environ={PASSWORD_ENV: "pw"})
    assert (settings.tls, settings.host, settings.port, settings.prefix, settings.username, settings.password,
            settings.client_id("verdicts")) == (True, "gw", 8884, "plant/line-3", "st3", "pw", "station-3-verdicts")
    assert settings_from_args(parser.parse_args(["--mqtt", "mqtt://gw"]), environ={}).prefix == "defect-station"
    with pytest.raises(MqttConfigError, match="--mqtt-prefix needs --mqtt URL"):
        settings_from_args(parser.parse_args(["--mqtt-prefix", "x"]), environ={})
    with pytest.raises(MqttConfigError, match="--mqtt-client-id"):
        settings_from_args(parser.parse_args(["--mqtt", "mqtt://gw", "--mqtt-client-id", "a b"]), environ={})


def test_verdict_message_is_compact_sorted_json_with_every_field():
    text = verdict_message(inspection_id=42, part_id="P-1", lot="L7", verdict="NG", grade="major",
                           class_name="scratches", scores={"ad": 0.73, "cls": float("nan")},
                           versions={"ad": "bundle 2025-03-01", "cls": None},
                           timestamp="2025-03-01T08:00:00.123+01:00")
    assert " " not in text.replace("bundle 2025", "")
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data == {"schema": 1, "inspection_id": 42, "part_id": "P-1", "lot": "L7", "verdict": "NG",
                    "grade": "major", "class": "scratches", "scores": {"ad": 0.73, "cls": None},
                    "versions": {"ad": "bundle 2025-03-01", "cls": None},
                    "timestamp": "2025-03-01T08:00:00.123+01:00"}
    error = json.loads(verdict_message(inspection_id=1, part_id=None, lot=None, verdict="ERROR", grade=None,
                                       class_name="error", timestamp=datetime(2025, 3, 1, tzinfo=timezone.utc),
                                       error="the model failed"))
    assert error["error"] == "the model failed" and error["timestamp"] == "2025-03-01T00:00:00.000+00:00"


@pytest.mark.parametrize(("change", "says"), [
    ({"verdict": "BAD"}, "verdict must be one of"),
    ({"verdict": "ERROR"}, "needs its error text"),
    ({"error": "x"}, "only for an ERROR verdict"),
    ({"inspection_id": 0}, "positive integer"),
    ({"inspection_id": True}, "positive integer"),
    ({"timestamp": "2025-03-01T08:00:00"}, "no UTC offset"),
    ({"timestamp": "yesterday"}, "isoformat"),
])
def test_verdict_message_refuses_what_a_consumer_could_not_read(change, says):
    fields = {"inspection_id": 1, "part_id": "P", "lot": None, "verdict": "OK", "grade": "ok", "class_name": "ok",
              "timestamp": "2025-03-01T08:00:00+00:00", **change}
    with pytest.raises(ValueError, match=says):
        verdict_message(**fields)


def test_verdict_messages_go_into_the_inspections_transaction(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    messages = verdict_messages("plant/verdict", part_id="P-9", lot=None, verdict="OK", grade="ok", class_name="ok",
                                scores={"cls": 0.1}, versions={"cls": "3"})
    inspection_id = store.add_inspection(source="mqtt:p.png", image_sha256="0" * 64, width=8, height=8, models=[],
                                         results=[], grade="ok", class_name="ok", score=None, part_id="P-9",
                                         messages=messages)
    [row] = store.outbox_pending("mqtt")
    data = json.loads(row["payload"])
    assert (row["inspection_id"], row["topic"], data["inspection_id"], data["part_id"]) == (
        inspection_id, "plant/verdict", inspection_id, "P-9")
    with sqlite3.connect(store.path) as conn:
        created = conn.execute("SELECT created_at FROM inspections WHERE id = ?", (inspection_id,)).fetchone()[0]
    assert data["timestamp"] == created
    with pytest.raises(ValueError, match="verdict must be one of"):  # before any transaction
        verdict_messages("t", part_id=None, lot=None, verdict="ok", grade="ok", class_name="ok")
    store.close()


def test_valid_requests_are_read():
    request = parse_request(b'{"part_id": "P-1", "lot": "L", "image_path": "cam/p1.png", "request_id": "r1"}')
    assert (request.part_id, request.lot, request.image_path, request.request_id) == ("P-1", "L", "cam/p1.png", "r1")
    request = parse_request('{"part_id": "P-2", "image_path": "p2.png", "lot": null, "request_id": ""}')
    assert (request.lot, request.request_id) == (None, None)


@pytest.mark.parametrize(("payload", "says"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'{"part_id": "P"}', "missing field 'image_path'"),
    (b'{"image_path": "p.png"}', "missing field 'part_id'"),
    (b'{"part_id": 5, "image_path": "p.png"}', "field 'part_id' must be a string, got a number"),
    (b'{"part_id": "P", "image_path": ["p.png"]}', "field 'image_path' must be a string, got an array"),
    (b'{"part_id": "P", "image_path": "  "}', "field 'image_path' is empty"),
    (b'{"part_id": "P", "image_path": null}', "field 'image_path' must be a string, got null"),
    (b'{"part_id": "P", "image_path": "p", "lot": true}', "field 'lot' must be a string, got true/false"),
    (b'{"part_id": "P", "image_path": "p", "partId": "x"}', "unknown field(s) 'partId'"),
    (json.dumps({"part_id": "P" * 201, "image_path": "p"}).encode(), "field 'part_id' is 201 characters; at most 200"),
    (b'{"part_id": "P\\u0000", "image_path": "p"}', "NUL"),
    (b'{"part_id": "P\\ud800", "image_path": "p"}', "not valid Unicode"),
    (b"[" * 100_000, "bytes; at most 65536"),
    (b"[" * 60_000, "nested too deeply"),
])
def test_malformed_requests_are_refused_with_the_reason(payload, says):
    with pytest.raises(RequestError) as error:
        parse_request(payload)
    assert says in str(error.value)


def test_rejected_requests_keep_what_identifies_them():
    assert line._peek(b'{"request_id": "r9", "part_id": 5}') == {"request_id": "r9"}
    assert line._peek(b"not json") == {}
