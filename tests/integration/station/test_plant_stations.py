"""A plant: four real station processes on one PostgreSQL and one broker, one station killed (SIGKILL) and the
database restarted while the line sends requests. Nothing lost, nothing doubled: one inspection per request and
line, each tagged with its line and station, every verdict published (a repeat carries the same inspection id),
the outbox drained, the audit chain intact.

Why it holds: a request is acknowledged to the broker only after its record is written, so the broker delivers
again what a killed station had not acknowledged; the request id is the record's write key, so a request that
was recorded before the kill writes nothing the second time; a write interrupted by the database restart is
retried under the same key (``--db-retry-s``), and the outbox resends what was not acknowledged by the broker.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, text

from defect_plugins.station.audit import verify
from defect_plugins.station.db.engine import parse
from defect_plugins.station.store import Store
from tests.fixtures.mqtt import wait_for
from tests.fixtures.station import REPO_ROOT, steel_image

pytestmark = pytest.mark.timeout(600)
STATIONS = 4
PER_STATION = 200
IMAGES = 4
TOTAL = STATIONS * PER_STATION
REPEATED = 10  # line 1 requests sent again after its restart


class Plant:
    """The station processes: started with the same arguments again after a kill, their output in files."""

    def __init__(self, folder: Path, db: str, broker_url: str, model: Path, images: Path) -> None:
        self.folder, self.db, self.broker_url, self.model, self.images = folder, db, broker_url, model, images
        self.processes: dict[int, subprocess.Popen] = {}
        self.starts: dict[int, int] = {}

    def command(self, n: int) -> list[str]:
        return [sys.executable, "-m", "defect_plugins.station", "--no-login", "--db", self.db, "--line", f"L{n}",
                "--station", f"S{n}", "--mqtt", self.broker_url, "--mqtt-prefix", f"plant/L{n}",
                "--image-root", str(self.images), "--model", str(self.model), "--port", "0", "--db-retry-s", "60"]

    def log(self, n: int) -> Path:
        return self.folder / f"station-{n}-{self.starts.get(n, 0)}.log"

    def start(self, n: int) -> None:
        self.starts[n] = self.starts.get(n, 0) + 1
        # faulthandler: a station that hangs is made to show its threads' stacks (SIGABRT) when the test fails
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT), PYTHONFAULTHANDLER="1")
        with self.log(n).open("w") as out:  # a file, not a pipe: nobody has to read it while the line runs
            self.processes[n] = subprocess.Popen(self.command(n), cwd=self.folder, env=env, stdout=out,
                                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_serving(self, n: int, timeout: float = 120) -> None:
        def serving() -> bool:
            if self.processes[n].poll() is not None:
                raise AssertionError(f"station {n} exited: {self.log(n).read_text()[-3000:]}")
            return "defect-station: serving " in self.log(n).read_text()
        wait_for(serving, timeout, interval=0.2, what=f"station {n} serving")

    def kill(self, n: int) -> None:
        self.processes[n].send_signal(signal.SIGKILL)
        self.processes[n].wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def output(self) -> str:
        """Each run's output; a station still running first dumps its threads' stacks (it may be the one stuck)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGABRT)
        time.sleep(2)
        return "".join(f"==== {path.name}\n{path.read_text(errors='replace')[-12000:]}"
                       for path in sorted(self.folder.glob("station-*.log")))


class Consumer:
    """The plant's MES: ``plant/+/verdict`` with QoS 1 and a persistent session; every message kept."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"mes-{uuid.uuid4().hex}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.subscribed = False
        self.client.on_connect = lambda client, *args: client.subscribe("plant/+/verdict", qos=1)
        self.client.on_subscribe = lambda *args: setattr(self, "subscribed", True)
        self.client.on_message = lambda client, userdata, message: self.messages.append(
            (message.topic, bytes(message.payload)))  # paho's one network thread appends
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def request(n: int, number: int) -> tuple[str, str]:
    return f"plant/L{n}/request", json.dumps({"part_id": f"P{number:04d}", "lot": f"LOT-{n}",
                                               "image_path": f"img{number % IMAGES}.png",
                                               "request_id": f"L{n}-{number:04d}"})


def counts(engine) -> dict[str, int]:
    """Inspections per line, and the outbox messages not yet published."""
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT line, COUNT(*) FROM inspections GROUP BY line")).all())
        found["pending"] = int(conn.execute(text("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")).scalar())
    return found


def test_four_stations_through_a_station_kill_and_a_database_restart(postgres, mqtt_broker, anomaly_export,
                                                                       tmp_path):
    started = time.monotonic()
    images = tmp_path / "camera"
    images.mkdir()
    for seed in range(IMAGES):
        assert cv2.imwrite(str(images / f"img{seed}.png"), steel_image(seed, size=64))
    Store(postgres.url).close()  # the schema once, before four processes would race to make it
    plant = Plant(tmp_path, postgres.url, mqtt_broker.url, anomaly_export[1], images)
    consumer = Consumer(mqtt_broker.host, mqtt_broker.port)
    engine = create_engine(parse(postgres.url)[0], pool_pre_ping=True)
    requester = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plc-{uuid.uuid4().hex}")
    requester.max_queued_messages_set(0)
    requester.connect(mqtt_broker.host, mqtt_broker.port)
    requester.loop_start()
    try:
        for n in range(1, STATIONS + 1):
            plant.start(n)
        for n in range(1, STATIONS + 1):
            plant.wait_serving(n)
        # a request sent before a station's first subscription would have no session to wait in
        wait_for(lambda: all(f"SUBSCRIBE from plant-L{n}-requests" in mqtt_broker.log_text()
                             for n in range(1, STATIONS + 1)), 60, interval=0.2, what="the stations' subscriptions")
        wait_for(lambda: consumer.subscribed, 30, what="the consumer's subscription")
        ready = time.monotonic()
        half = PER_STATION // 2
        sent = [requester.publish(*request(n, number), qos=1) for number in range(half)
                for n in range(1, STATIONS + 1)]

        # midway through line 1: SIGKILL, then the same command again; the broker kept what it had not acknowledged
        wait_for(lambda: counts(engine).get("L1", 0) >= half // 2, 120, interval=0.05, what="line 1 midway")
        plant.kill(1)
        killed_at = counts(engine).get("L1", 0)
        # requests line 1 recorded but had not acknowledged: the broker delivers them again, and each must find
        # its record (the request id is the record's key) rather than make a second one
        unacknowledged = killed_at - mqtt_broker.log_text().count("Received PUBACK from plant-L1-requests")
        assert unacknowledged >= 0
        plant.start(1)
        plant.wait_serving(1)
        # the window between a record and its acknowledgement is too short to hit with a kill at will: the same
        # requests recorded before the kill, delivered once more, stand in for it (to the restarted station, with
        # nothing in memory, they are what the broker's redelivery is; they must find their records)
        sent += [requester.publish(*request(1, number), qos=1) for number in range(REPEATED)]
        # the second half; once every line is busy with it, the database restarts under their writes
        sent += [requester.publish(*request(n, number), qos=1) for number in range(half, PER_STATION)
                 for n in range(1, STATIONS + 1)]
        others = [f"L{n}" for n in range(2, STATIONS + 1)]
        wait_for(lambda: min(counts(engine).get(line, 0) for line in others) >= half + 10, 180, interval=0.05,
                 what="the other lines into the second half")
        during = counts(engine)
        postgres.restart()
        for message in sent:
            message.wait_for_publish(30)

        def quiet() -> bool:
            found = counts(engine)
            return found["pending"] == 0 and sum(v for k, v in found.items() if k != "pending") >= TOTAL
        wait_for(quiet, 300, interval=0.5, what="every request recorded and published")
        time.sleep(1.0)  # a repeat that would still come shows here
        worked = time.monotonic() - ready
        assert all(process.poll() is None for process in plant.processes.values()), plant.output()
    except BaseException:
        print(f"records per line and pending messages: {counts(engine)}")
        print(plant.output())
        raise
    finally:
        requester.loop_stop()
        requester.disconnect()
        plant.stop_all()

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, line, station, part_id, lot, verdict, write_key FROM inspections")).all()
        pending = conn.execute(text("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")).scalar()
        queued = dict(conn.execute(text("SELECT inspection_id, payload FROM outbox")).all())
    engine.dispose()
    # one inspection per (line, request), tagged with its line and station, its key the request's
    assert len(rows) == STATIONS * PER_STATION, len(rows)
    for n in range(1, STATIONS + 1):
        mine = [row for row in rows if row.line == f"L{n}"]
        assert sorted(row.part_id for row in mine) == [f"P{number:04d}" for number in range(PER_STATION)], n
        assert {row.station for row in mine} == {f"S{n}"} and {row.lot for row in mine} == {f"LOT-{n}"}
        assert {row.write_key for row in mine} == {f"mqtt:plant/L{n}:L{n}-{number:04d}"
                                                   for number in range(PER_STATION)}
    assert {row.verdict for row in rows} <= {"OK", "NG"}, {row.verdict for row in rows}
    assert pending == 0 and set(queued) == {row.id for row in rows}

    # every verdict at the consumer, on its line's topic; a repeat is the same message
    consumer.stop()
    seen: dict[int, bytes] = {}
    by_id = {row.id: row for row in rows}
    for topic, payload in consumer.messages:
        message = json.loads(payload)
        assert seen.setdefault(message["inspection_id"], payload) == payload
        row = by_id[message["inspection_id"]]
        assert topic == f"plant/{row.line}/verdict" and message["part_id"] == row.part_id
    assert set(seen) == set(by_id), f"{len(by_id) - len(set(seen) & set(by_id))} verdicts never seen"

    # an operator's decisions afterwards, and one audit chain for the plant
    store = Store(postgres.url, line="L1", station="S1")
    try:
        for row in rows[:3]:
            grade = store.inspection(row.id)["grade"]
            store.add_decision(row.id, decision="accept", operator="olaf", system_grade=grade, final_grade=grade,
                               thresholds={}, comment="seen at the gate")
        report = verify(store)
        assert report.ok and report.entries >= 3, report
    finally:
        store.close()
    # the restart came while the other lines were still at work
    assert all(during.get(line, 0) < PER_STATION for line in others), during
    # the broker delivered line 1's unacknowledged requests again (DUP) to the restarted station; those recorded
    # before the kill are among the records counted above only once
    redelivered = mqtt_broker.log_text().count("Sending PUBLISH to plant-L1-requests (d1")
    assert redelivered >= 1
    print(f"\n{STATIONS * PER_STATION} parts in {worked:.1f} s ({time.monotonic() - started:.1f} s in all); line 1 "
          f"killed at {killed_at} records, database restarted at {during}; {len(consumer.messages)} verdict messages, "
          f"{redelivered} requests delivered again to line 1, {unacknowledged} of them recorded before the kill")
