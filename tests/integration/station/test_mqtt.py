"""The station's MQTT link against a real broker (mosquitto, tests/fixtures/mqtt.py): verdicts from the outbox in
order and at least once through a broker killed mid-burst, a broker down at start and a station restart; requests,
malformed ones answered on the error topic; the status and its last will; a password and TLS."""
from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from defect_plugins.station.line.mqtt import (
    PASSWORD_ENV,
    MqttSettings,
    OutboxPublisher,
    RequestSubscriber,
    settings_from_options,
    verdict_messages,
)
from defect_plugins.station.store import Store
from tests.conftest import REPO_ROOT
from tests.fixtures.mqtt import MosquittoBroker, make_password_file, make_tls_files, wait_for

pytestmark = pytest.mark.timeout(120)


def line_settings(broker: MosquittoBroker, **changes: Any) -> MqttSettings:
    """Settings for tests: a prefix of its own, short back-offs and polls (the defaults are the line's)."""
    fields = {"host": broker.host, "port": broker.port, "prefix": f"test/{uuid.uuid4().hex[:8]}",
              "backoff_min_s": 0.05, "backoff_max_s": 0.25, "poll_s": 0.5, "keepalive_s": 5, **changes}
    return MqttSettings(**fields)


def inspect(store: Store, settings: MqttSettings, number: int) -> int:
    """Store one fake inspection with its verdict message, as the station's engine does."""
    messages = verdict_messages(settings.verdict_topic, part_id=f"P-{number}", lot="L-1", verdict="OK", grade="ok",
                                class_name="ok", scores={"cls": 0.1}, versions={"cls": "1"})
    return store.add_inspection(source=f"test:{number}.png", image_sha256="0" * 64, width=8, height=8,
                                models=[{"name": "cls", "version": "1"}], results=[{"model": "cls", "class": "ok"}],
                                grade="ok", class_name="ok", score=0.1, part_id=f"P-{number}", lot="L-1",
                                messages=messages)


class Collector:
    """A consumer on the line (a PLC / MES): QoS 1, persistent session (3.1.1 CleanSession 0), records payloads."""

    def __init__(self, broker: MosquittoBroker, *topics: str, client_id: str | None = None) -> None:
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"plc-{uuid.uuid4().hex}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(0.05, 0.25)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe([(topic, 1) for topic in self.topics])  # again at every connection: the session may be gone

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for name, payload, _ in self.messages if name == topic]

    def ids(self, topic: str) -> list[int]:
        return [json.loads(payload)["inspection_id"] for payload in self.payloads(topic)]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def first_occurrences(ids: list[int]) -> list[int]:
    seen: set[int] = set()
    return [i for i in ids if not (i in seen or seen.add(i))]


def no_threads_left() -> bool:
    """Every thread of the station's MQTT link has ended (its workers and paho's network threads)."""
    return not [thread.name for thread in threading.enumerate()
                if thread.name.startswith(("defect-station-mqtt", "paho-mqtt-client-test-"))]


def attempts(store: Store, inspection_id: int) -> int:
    """The outbox's count of tries on the verdict of ``inspection_id``."""
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        return conn.execute("SELECT attempts FROM outbox WHERE inspection_id = ?", (inspection_id,)).fetchone()[0]


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "station.sqlite")
    yield store
    store.close()


def test_a_burst_survives_the_broker_killed_midway_complete_and_in_order(store, mqtt_broker):
    settings = line_settings(mqtt_broker)
    plc = Collector(mqtt_broker, settings.verdict_topic)
    wait_for(plc.subscribed.is_set, what="the PLC's subscription")
    publisher = OutboxPublisher(settings, store).start()
    ids = []
    for number in range(100):
        ids.append(inspect(store, settings, number))
        publisher.notify()
    wait_for(lambda: len(set(plc.ids(settings.verdict_topic))) >= 40, what="40 verdicts at the PLC")
    received_at_kill = len(set(plc.ids(settings.verdict_topic)))
    mqtt_broker.stop(kill=True)  # SIGKILL: no clean shutdown, the broker keeps what its autosave wrote
    for number in range(100, 200):  # the line goes on while the broker is away
        ids.append(inspect(store, settings, number))
        publisher.notify()
    wait_for(lambda: not publisher.state()["connected"], what="the publisher to see the broker gone")
    mqtt_broker.start()
    wait_for(lambda: store.outbox_counts("mqtt")["pending"] == 0, timeout=30, what="an empty outbox")
    wait_for(lambda: set(plc.ids(settings.verdict_topic)) >= set(ids), timeout=10, what="every verdict at the PLC")
    state = publisher.state()
    publisher.stop()
    plc.stop()
    received = plc.ids(settings.verdict_topic)
    assert first_occurrences(received) == ids  # every inspection, first seen in inspection order
    duplicates = len(received) - len(ids)
    print(f"\nbroker SIGKILLed after {received_at_kill} of 200 verdicts; {len(received)} received, "
          f"{duplicates} duplicate(s): {sorted({i for i in received if received.count(i) > 1})}")
    # at least once: a duplicate is a message acknowledged (or in flight) around the kill, never one from elsewhere
    assert duplicates <= 25
    assert all(abs(ids.index(i) - received_at_kill) <= 25 for i in received if received.count(i) > 1)
    assert state["connected"] and state["pending"] == 0 and state["last_published_id"] is not None
    assert store.outbox_counts("mqtt") == {"pending": 0, "published": 200}
    assert max(attempts(store, i) for i in ids) >= 1  # the message waiting while the broker was away


def test_with_the_broker_down_at_start_the_outbox_waits_and_goes_in_order_when_it_appears(store, mqtt_broker):
    settings = line_settings(mqtt_broker)
    plc_id = f"plc-{uuid.uuid4().hex}"
    plc = Collector(mqtt_broker, settings.verdict_topic, client_id=plc_id)  # its session keeps messages for it
    wait_for(plc.subscribed.is_set, what="the PLC's subscription")
    plc.stop()
    mqtt_broker.stop()  # SIGTERM: mosquitto saves the PLC's session
    publisher = OutboxPublisher(settings, store).start()
    ids = [inspect(store, settings, number) for number in range(20)]
    publisher.notify()
    wait_for(lambda: attempts(store, ids[0]) >= 3, what="three counted attempts on the first message")
    state = publisher.state()
    assert not state["connected"] and state["pending"] == 20 and state["last_published_id"] is None
    assert "cannot connect to the broker at mqtt://127.0.0.1:" in state["last_error"]
    assert "refused" in state["last_error"].lower()
    mqtt_broker.start()
    wait_for(lambda: store.outbox_counts("mqtt")["pending"] == 0, what="an empty outbox")
    plc = Collector(mqtt_broker, settings.verdict_topic, client_id=plc_id)
    wait_for(lambda: len(plc.ids(settings.verdict_topic)) >= 20, what="the queued verdicts at the PLC")
    assert plc.ids(settings.verdict_topic) == ids
    assert publisher.state()["last_error"] is None
    publisher.stop()
    plc.stop()


def test_a_restarted_station_publishes_what_the_stopped_one_left_pending(tmp_path, store, mqtt_broker):
    settings = line_settings(mqtt_broker)
    plc = Collector(mqtt_broker, settings.verdict_topic, settings.status_topic)
    wait_for(plc.subscribed.is_set, what="the PLC's subscription")
    first = OutboxPublisher(settings, store).start()
    wait_for(lambda: plc.payloads(settings.status_topic) == [b"online"], what="'online'")
    ids = [inspect(store, settings, number) for number in range(30)]
    first.notify()
    wait_for(lambda: first.state()["published"] >= 5, what="5 verdicts published")
    first.stop()
    wait_for(lambda: plc.payloads(settings.status_topic)[-1:] == [b"offline"], what="'offline' from the stop")
    ids += [inspect(store, settings, number) for number in range(30, 40)]  # written while nothing publishes
    left = store.outbox_counts("mqtt")["pending"]
    assert left >= 10
    store.close()
    reopened = Store(tmp_path / "station.sqlite")  # a new process would start from the file alone
    second = OutboxPublisher(settings, reopened).start()
    wait_for(lambda: reopened.outbox_counts("mqtt")["pending"] == 0, what="an empty outbox")
    wait_for(lambda: set(plc.ids(settings.verdict_topic)) >= set(ids), what="every verdict at the PLC")
    assert first_occurrences(plc.ids(settings.verdict_topic)) == ids
    assert len(plc.ids(settings.verdict_topic)) - len(ids) <= 1  # the one in flight at the stop, at most
    assert second.state()["published"] == left
    second.stop()
    plc.stop()
    reopened.close()
    wait_for(no_threads_left, what="the publishers' threads to end")


def test_a_message_the_broker_refuses_is_kept_retried_and_goes_first_once_allowed(tmp_path, store,
                                                                                   mqtt_broker_factory):
    acl = tmp_path / "acl"
    acl.write_text("topic read #\ntopic readwrite test/+/status\n")  # verdicts not allowed yet
    broker = mqtt_broker_factory(extra=[f"acl_file {acl}"])
    settings = line_settings(broker)
    plc = Collector(broker, settings.verdict_topic)
    wait_for(plc.subscribed.is_set, what="the PLC's subscription")
    ids = [inspect(store, settings, number) for number in range(5)]
    publisher = OutboxPublisher(settings, store).start()
    wait_for(lambda: attempts(store, ids[0]) >= 2, what="counted refusals")  # MQTT 5 PUBACK 0x87
    state = publisher.state()
    assert state["connected"] and state["pending"] == 5 and state["last_published_id"] is None
    assert state["last_error"] == (f"the broker at {settings.url} refused message 1 (inspection {ids[0]}) on "
                                   f"{settings.verdict_topic}: Not authorized")
    acl.write_text("topic readwrite #\n")
    broker.reload()
    wait_for(lambda: store.outbox_counts("mqtt")["pending"] == 0, what="the verdicts once allowed")
    wait_for(lambda: len(plc.ids(settings.verdict_topic)) >= 5, what="the verdicts at the PLC")
    assert plc.ids(settings.verdict_topic) == ids
    assert publisher.state()["last_error"] is None
    publisher.stop()
    plc.stop()


LAUNCH = r"""
import sys, time
from defect_plugins.station.line.mqtt import MqttSettings, OutboxPublisher
from defect_plugins.station.store import Store
host, port, prefix, db = sys.argv[1:5]
publisher = OutboxPublisher(MqttSettings(host=host, port=int(port), prefix=prefix, keepalive_s=5), Store(db)).start()
while not publisher.state()["connected"]:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(60)
"""


def test_the_status_is_online_then_the_last_will_says_offline_when_the_station_dies(tmp_path, mqtt_broker):
    settings = line_settings(mqtt_broker)
    child = subprocess.Popen([sys.executable, "-c", LAUNCH, mqtt_broker.host, str(mqtt_broker.port), settings.prefix,
                              str(tmp_path / "child.sqlite")], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "connected"
        plc = Collector(mqtt_broker, settings.status_topic)
        wait_for(lambda: plc.payloads(settings.status_topic) == [b"online"], what="the retained 'online'")
        child.kill()  # the station dies without a DISCONNECT: the broker publishes its will
        wait_for(lambda: plc.payloads(settings.status_topic)[-1:] == [b"offline"], what="the last will")
        plc.stop()
        late = Collector(mqtt_broker, settings.status_topic)  # a PLC that connects later sees the retained state
        wait_for(lambda: late.payloads(settings.status_topic) == [b"offline"], what="the retained 'offline'")
        late.stop()
    finally:
        child.kill()
        child.wait()


class Requests:
    """The station's callback: records calls; a part id starting with 'fail' raises as a failed inspection would,
    one starting with 'slow' takes ``slow`` seconds."""

    def __init__(self, slow: float = 0.0) -> None:
        self.calls: list[tuple[str, str | None, str, str]] = []
        self.slow = slow

    def __call__(self, part_id: str, lot: str | None, image_path: str, *, origin: str = "mqtt",
                 request_key: str | None = None) -> dict[str, Any]:
        if part_id.startswith("slow"):
            time.sleep(self.slow)
        if part_id.startswith("fail"):
            raise FileNotFoundError(f"no image {image_path}")
        self.calls.append((part_id, lot, image_path, origin))
        return {"id": len(self.calls)}


def publish(broker: MosquittoBroker, topic: str, payloads: list[bytes | str], **kwargs: Any) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"requester-{uuid.uuid4().hex}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1, **kwargs).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_malformed_requests_are_answered_on_the_error_topic_and_valid_ones_inspected(mqtt_broker, caplog):
    settings = line_settings(mqtt_broker)
    callback = Requests()
    subscriber = RequestSubscriber(settings, callback).start()
    wait_for(lambda: subscriber.state()["subscribed"], what="the station's subscription")
    requester = Collector(mqtt_broker, settings.error_topic)
    wait_for(requester.subscribed.is_set, what="the requester's subscription")
    caplog.set_level(logging.WARNING, logger="defect_plugins.station.line.mqtt")
    publish(mqtt_broker, settings.request_topic, [
        b"{not json",
        json.dumps({"part_id": "P-1", "request_id": "r1"}),
        json.dumps({"part_id": 7, "image_path": "p.png", "request_id": "r2"}),
        json.dumps({"part_id": "P-3", "image_path": "p.png", "lot": ["L"]}),
        b"x" * (64 * 1024 + 1),
        json.dumps({"part_id": "fail-5", "image_path": "cam/missing.png", "request_id": "r5"}),
        json.dumps({"part_id": "P-6", "lot": "L-6", "image_path": "cam/p6.png", "request_id": "r6"}),
    ])
    wait_for(lambda: callback.calls, what="the valid request's callback")
    wait_for(lambda: len(requester.payloads(settings.error_topic)) >= 6, what="6 answers on the error topic")
    assert callback.calls == [("P-6", "L-6", "cam/p6.png", "mqtt")]
    answers = [json.loads(payload) for payload in requester.payloads(settings.error_topic)]
    assert [answer.get("request_id") for answer in answers] == [None, "r1", "r2", None, None, "r5"]
    reasons = [answer["error"] for answer in answers]
    assert "not JSON" in reasons[0]
    assert reasons[1] == "missing field 'image_path'"
    assert reasons[2] == "field 'part_id' must be a string, got a number"
    assert reasons[3] == "field 'lot' must be a string, got an array"
    assert reasons[4] == "the request is 65537 bytes; at most 65536"
    assert "inspecting part 'fail-5' (cam/missing.png) failed: no image cam/missing.png" == reasons[5]
    assert all(answer["request_topic"] == settings.request_topic for answer in answers)
    assert "missing field 'image_path'" in caplog.text and settings.request_topic in caplog.text
    state = subscriber.state()
    assert (state["received"], state["inspected"], state["rejected"], state["failed"]) == (7, 1, 5, 1)
    assert state["connections"] == 1
    assert state["connected"] and state["last_error"] is None
    subscriber.stop()
    requester.stop()
    wait_for(no_threads_left, what="the subscriber's threads to end")


def test_requests_run_in_order_off_the_network_thread_and_wait_at_the_broker_over_a_restart(mqtt_broker):
    # keep-alive 1 s: the broker drops a client silent for 1.5 s (MQTT 5.0 section 3.1.2.10); one inspection takes 2
    settings = line_settings(mqtt_broker, keepalive_s=1)
    callback = Requests(slow=2.0)
    subscriber = RequestSubscriber(settings, callback).start()
    wait_for(lambda: subscriber.state()["subscribed"], what="the station's subscription")
    request = lambda part: json.dumps({"part_id": part, "image_path": f"{part}.png"})  # noqa: E731
    publish(mqtt_broker, settings.request_topic, [request("slow-0")] + [request(f"P-{n}") for n in range(1, 20)])
    publish(mqtt_broker, settings.request_topic, [request("R")], retain=True)
    wait_for(lambda: len(callback.calls) >= 21, what="21 inspections")
    state = subscriber.state()  # the slow inspection did not stall the keep-alive: still the first connection
    assert state["connected"] and state["connections"] == 1 and state["last_error"] is None
    subscriber.stop()
    # the station is away: its session at the broker keeps these
    publish(mqtt_broker, settings.request_topic, [request(f"P-{n}") for n in range(20, 30)])
    restarted = RequestSubscriber(settings, callback).start()
    wait_for(lambda: len(callback.calls) >= 30, what="the requests sent while the station was away")
    publish(mqtt_broker, settings.request_topic, [request("END")])
    wait_for(lambda: callback.calls[-1][0] == "END", what="the last request")
    parts = [part for part, *_ in callback.calls]  # in order, once each, the retained one not again
    assert parts == ["slow-0"] + [f"P-{n}" for n in range(1, 20)] + ["R"] + [f"P-{n}" for n in range(20, 30)] + [
        "END"]
    restarted.stop()


def test_with_two_workers_parts_overlap_and_are_acknowledged_in_arrival_order(mqtt_broker):
    settings = line_settings(mqtt_broker)
    callback = Requests(slow=1.0)
    subscriber = RequestSubscriber(settings, callback, workers=2).start()
    wait_for(lambda: subscriber.state()["subscribed"], what="the station's subscription")
    acked: list[int] = []
    send_ack = subscriber._client.ack
    subscriber._client.ack = lambda mid, qos: (acked.append(mid), send_ack(mid, qos))[1]
    request = lambda part: json.dumps({"part_id": part, "image_path": f"{part}.png"})  # noqa: E731
    publish(mqtt_broker, settings.request_topic, [request("slow-0")] + [request(f"P-{n}") for n in range(1, 6)])
    wait_for(lambda: len(acked) >= 6, what="6 acknowledgements")
    # the second worker took the fast parts while the slow one was inspected; the acks kept the arrival order
    assert [part for part, *_ in callback.calls] == [f"P-{n}" for n in range(1, 6)] + ["slow-0"]
    assert acked == sorted(acked)
    subscriber.stop()
    restarted = RequestSubscriber(settings, callback, workers=2).start()  # nothing left unacknowledged
    publish(mqtt_broker, settings.request_topic, [request("END")])
    wait_for(lambda: callback.calls[-1][0] == "END", what="the last request")
    assert len(callback.calls) == 7
    restarted.stop()
    wait_for(no_threads_left, what="the subscriber's threads to end")


def test_a_password_protected_broker_takes_the_right_password_and_reports_a_wrong_one(tmp_path, store,
                                                                                       mqtt_broker_factory):
    passwords = make_password_file(tmp_path, "station", "right horse")
    broker = mqtt_broker_factory(extra=[f"password_file {passwords}"], anonymous=False)
    url = f"mqtt://station@{broker.host}:{broker.port}"
    tuning = {"backoff_min_s": 0.05, "backoff_max_s": 0.25, "poll_s": 0.5}
    wrong = settings_from_options(url, prefix="auth", environ={PASSWORD_ENV: "wrong"}, **tuning)
    first = inspect(store, wrong, 0)
    publisher = OutboxPublisher(wrong, store).start()
    wait_for(lambda: attempts(store, first) >= 2, what="counted attempts")
    error = publisher.state()["last_error"]
    assert error.startswith(f"the broker at {url} refused the connection: ") and "authori" in error.lower()
    publisher.stop()
    assert store.outbox_counts("mqtt")["pending"] == 1
    right = settings_from_options(url, prefix="auth", environ={PASSWORD_ENV: "right horse"}, **tuning)
    publisher = OutboxPublisher(right, store).start()
    wait_for(lambda: store.outbox_counts("mqtt")["pending"] == 0, what="the message published")
    publisher.stop()


def test_tls_with_the_line_ca_publishes_and_a_foreign_ca_is_refused(tmp_path, store, mqtt_broker_factory):
    files = make_tls_files(tmp_path)
    broker = mqtt_broker_factory(listener_extra=[f"cafile {files['ca']}", f"certfile {files['cert']}",
                                                 f"keyfile {files['key']}"])
    tuning = {"backoff_min_s": 0.05, "backoff_max_s": 0.25, "poll_s": 0.5}
    (tmp_path / "other").mkdir()
    other = make_tls_files(tmp_path / "other")  # a CA the broker's certificate does not come from
    foreign = settings_from_options(f"mqtts://{broker.host}:{broker.port}", prefix="tls", ca_file=other["ca"],
                                    environ={}, **tuning)
    inspect(store, foreign, 0)
    publisher = OutboxPublisher(foreign, store).start()
    wait_for(lambda: publisher.state()["last_error"], what="the TLS failure")
    assert "CERTIFICATE_VERIFY_FAILED" in publisher.state()["last_error"]
    publisher.stop()
    good = settings_from_options(f"mqtts://{broker.host}:{broker.port}", prefix="tls", ca_file=files["ca"],
                                 environ={}, **tuning)
    publisher = OutboxPublisher(good, store).start()
    wait_for(lambda: store.outbox_counts("mqtt")["pending"] == 0, what="the message published over TLS")
    assert publisher.state()["connected"]
    publisher.stop()


def test_stop_returns_promptly_with_the_broker_down(store, mqtt_broker_factory):
    broker = mqtt_broker_factory(start=False)
    publisher = OutboxPublisher(line_settings(broker, backoff_max_s=5.0), store).start()
    inspect(store, publisher.settings, 0)
    publisher.notify()
    wait_for(lambda: publisher.state()["last_error"], what="a failed connection")
    started = time.monotonic()
    publisher.stop()
    assert time.monotonic() - started < 3
    assert store.outbox_counts("mqtt")["pending"] == 1

