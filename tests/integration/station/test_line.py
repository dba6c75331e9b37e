"""The station driven as a PLC drives it: the real ``defect-station`` process with its OPC UA server, a real MQTT
broker (mosquitto) killed and restarted mid-burst, an MQTT consumer counting verdicts, operators logged in on the
line page. Every part has exactly one record and its message, in inspection order; decisions carry the operator."""
from __future__ import annotations

import asyncio
import json
import sqlite3

import cv2
import pytest

from tests.fixtures.mqtt import wait_for
from tests.fixtures.opcua import connected, free_port, line_nodes, read_all
from defect_plugins.station.accounts import Accounts, ScryptCost
from defect_plugins.station.store import Store
from tests.fixtures.station import running_station, steel_image

pytestmark = pytest.mark.timeout(300)
PARTS = 200
PREFIX = "plant/line1"


@pytest.fixture
def line_station(station_irs, mqtt_broker, tmp_path):
    from tests.integration.station.test_mqtt import Collector

    images = tmp_path / "camera"
    images.mkdir()
    for seed in range(4):
        assert cv2.imwrite(str(images / f"img{seed}.png"), steel_image(seed))
    db = tmp_path / "station.sqlite"
    store = Store(db)  # the accounts in process, at a cheaper scrypt setting (the CLI's is tested in test_login)
    accounts = Accounts(store, cost=ScryptCost(n=2 ** 14, r=8, p=1))
    for name, role, password in (("erin", "engineer", "engineer-secret-1"), ("olaf", "operator", "operator-secret-1"),
                                 ("plc", "operator", "plc-secret-123")):
        accounts.add_user(name, role, password)
    store.close()
    consumer = Collector(mqtt_broker, f"{PREFIX}/verdict")
    wait_for(consumer.subscribed.is_set, what="the consumer's subscription")
    port = free_port()
    with running_station([station_irs["anomaly"]], tmp_path, "--db", str(db), "--opcua-port", str(port),
                         "--mqtt", mqtt_broker.url, "--mqtt-prefix", PREFIX, "--image-root", str(images),
                         "--line", "line1") as station:
        yield {"station": station, "endpoint": f"opc.tcp://127.0.0.1:{port}/defect-station/", "db": db,
               "consumer": consumer, "broker": mqtt_broker, "images": images, "tmp": tmp_path}
    consumer.stop()


async def _plc_round(endpoint: str, cert, broker) -> tuple[list[dict], dict]:
    """``PARTS`` Inspect calls in order; the broker is SIGKILLed after a third and restarted after two thirds."""
    from asyncua import ua

    answers = []
    async with connected(endpoint, cert, user="plc", password="plc-secret-123") as client:
        nodes = await line_nodes(client)
        for number in range(PARTS):
            if number == PARTS // 3:
                await asyncio.to_thread(broker.stop, kill=True)
            if number == 2 * PARTS // 3:
                await asyncio.to_thread(broker.start)
            out = await nodes["object"].call_method(
                nodes["Inspect"], ua.Variant(f"P{number:04d}", ua.VariantType.String),
                ua.Variant("LOT-A", ua.VariantType.String), ua.Variant(f"img{number % 4}.png", ua.VariantType.String))
            inspection_id, verdict, grade, error = out
            answers.append({"inspection_id": inspection_id, "verdict": verdict, "grade": grade, "error": error})
        counters = await read_all(client, nodes, ["Inspected", "Rejected", "Errors", "LastPartId"])
    return answers, counters


def test_a_plc_drives_the_station_through_a_broker_restart(line_station, opcua_client_cert):
    answers, counters = asyncio.run(_plc_round(line_station["endpoint"], opcua_client_cert, line_station["broker"]))
    assert all(a["verdict"] in ("OK", "NG") and a["inspection_id"] > 0 and not a["error"] for a in answers), answers
    assert counters["Inspected"] == PARTS and counters["Errors"] == 0 and counters["LastPartId"] == f"P{PARTS - 1:04d}"
    ids = [a["inspection_id"] for a in answers]
    assert ids == sorted(ids) and len(set(ids)) == PARTS

    # exactly one record per part, with its identity
    with sqlite3.connect(line_station["db"]) as conn:
        rows = conn.execute("SELECT id, part_id, lot, verdict FROM inspections ORDER BY id").fetchall()
    assert [r[1] for r in rows] == [f"P{n:04d}" for n in range(PARTS)] and {r[2] for r in rows} == {"LOT-A"}
    assert [r[3] for r in rows] == [a["verdict"] for a in answers]

    # every verdict reaches the consumer, first seen in inspection order; a repeat (QoS 1) is the same message
    consumer = line_station["consumer"]
    topic = f"{PREFIX}/verdict"
    wait_for(lambda: set(consumer.ids(topic)) >= set(ids), timeout=60, what="every verdict at the consumer")
    messages = [json.loads(payload) for payload in consumer.payloads(topic)]
    first: dict[int, dict] = {}
    for message in messages:
        assert first.setdefault(message["inspection_id"], message) == message  # a duplicate is byte-for-byte alike
    assert list(first) == ids
    assert [m["part_id"] for m in first.values()] == [f"P{n:04d}" for n in range(PARTS)]
    print(f"\n{len(messages)} messages for {PARTS} parts ({len(messages) - PARTS} duplicates across the broker kill)")

    # the operator decides on the line page, logged in; the decision carries the operator's name
    operator = line_station["station"].login("olaf", "operator-secret-1")
    status, line = operator.request("api/line")
    assert status == 200 and line["shift"]["inspected"] == PARTS and line["recent"][0]["part_id"] == f"P{PARTS - 1:04d}"
    assert "connected" in line["links"]["MQTT"], line["links"]
    status, part = operator.request(f"api/part/{ids[-1]}")
    assert status == 200 and part["token"] and part["image_url"].startswith("data:image/")
    status, decided = operator.request("api/decision", json_body={
        "inspection_id": ids[-1], "token": part["token"], "decision": "reject", "comment": "seen at the gate"})
    assert status == 200 and decided["operator"] == "olaf", decided
    status, page = operator.request("line")
    assert status == 200 and "line.js" in page


def test_an_mqtt_request_for_a_missing_image_is_an_error_verdict_published(line_station):
    from tests.integration.station.test_mqtt import publish

    consumer = line_station["consumer"]
    topic = f"{PREFIX}/verdict"
    publish(line_station["broker"], f"{PREFIX}/request",
            [json.dumps({"part_id": "Q1", "lot": "L", "image_path": "nope.png"}),
             json.dumps({"part_id": "Q2", "image_path": "../../etc/passwd"}),
             json.dumps({"part_id": "Q3", "image_path": "img1.png"})])
    wait_for(lambda: len(consumer.payloads(topic)) >= 3, timeout=60, what="three verdicts")
    by_part = {m["part_id"]: m for m in map(json.loads, consumer.payloads(topic))}
    assert by_part["Q1"]["verdict"] == "ERROR" and "no such image" in by_part["Q1"]["error"]
    assert by_part["Q2"]["verdict"] == "ERROR" and "outside the line's image folders" in by_part["Q2"]["error"]
    assert by_part["Q3"]["verdict"] in ("OK", "NG") and by_part["Q3"].get("error") is None


def test_a_folder_trigger_names_parts_by_the_file_pattern(station_irs, tmp_path):
    camera = tmp_path / "camera"
    camera.mkdir()
    with running_station([station_irs["anomaly"]], tmp_path, "--no-login", "--watch", str(camera),
                         "--watch-pattern", r"(?P<lot>L\d+)_(?P<part_id>\d+)\.png") as station:
        assert cv2.imwrite(str(camera / "L7_000123.png"), steel_image(1))
        assert cv2.imwrite(str(camera / "stray.png"), steel_image(2))
        wait_for(lambda: len(station.request("api/line")[1]["recent"]) >= 2, timeout=30,
                 what="two parts from the folder")
        status, line = station.request("api/line")
        parts = {row["part_id"]: row for row in line["recent"]}
        assert parts["000123"]["lot"] == "L7" and parts["000123"]["verdict"] in ("OK", "NG")
        assert parts["unmatched:stray.png"]["verdict"] == "ERROR"
