"""The plant page over records of two lines from three stations: figures, filters, CSV, logins, read-only.

Each case runs on SQLite and on a real PostgreSQL (tests/fixtures/postgres.py; skipped with its reason
where the server's binaries are absent).
"""
from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from starlette.testclient import TestClient

from defect_plugins.station.accounts import Accounts, ScryptCost
from defect_plugins.station.audit import append
from defect_plugins.station.plant.app import create_plant_app
from defect_plugins.station.plant.figures import NO_LINE
from defect_plugins.station.store import Store

FAST = ScryptCost(n=2 ** 4, r=1, p=1)  # the tests' accounts: a cheap hash, the same code path
HOST = {"host": "127.0.0.1"}
WRITE = {**HOST, "x-requested-with": "defect-station", "content-type": "application/json"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "plant.sqlite")
    return request.getfixturevalue("postgres").url


def record(store: Store, part: str, verdict: str, *, version: str = "v1") -> int:
    grade = {"OK": "ok", "NG": "major", "ERROR": "critical"}[verdict]
    return store.add_inspection(source=f"opcua:{part}.png", image_sha256="0" * 64, width=8, height=8,
                                models=[{"name": "ad", "family": "anomaly", "version": version}],
                                results=[{"model": "ad", "score": 0.5}], grade=grade, class_name="anomalous",
                                score=0.5, part_id=part, lot="L1", verdict=verdict)


def fill(url: str) -> None:
    """Line A: s1 and s2, 6 OK, 3 NG (2 decided: one accepted, one rejected), 1 ERROR. Line B: s3, 2 OK."""
    stores = {name: Store(url, line=line, station=name) for name, line in (("s1", "A"), ("s2", "A"), ("s3", "B"))}
    try:
        for n in range(3):
            record(stores["s1"], f"a{n}", "OK")
            record(stores["s2"], f"b{n}", "OK", version="v2")
        rejected = [record(stores["s1"], f"r{n}", "NG") for n in range(3)]
        record(stores["s2"], "e0", "ERROR", version="v2")
        stores["s1"].add_decision(rejected[0], decision="accept", operator="olaf", system_grade="major",
                                  final_grade="ok", thresholds={})
        stores["s1"].add_decision(rejected[1], decision="reject", operator="olaf", system_grade="major",
                                  final_grade="major", thresholds={})
        for n in range(2):
            record(stores["s3"], f"c{n}", "OK")
        with stores["s3"].transaction() as conn:
            append(conn, "station", "drift_changed", {"station": "s3", "line": "B", "model": "ad", "state": "warn"})
        Store(url).add_inspection(source="upload:x.png", image_sha256="0" * 64, width=8, height=8, models=[],
                                  results=[], grade="ok", class_name="ok", score=None, verdict="OK")
    finally:
        for store in stores.values():
            store.close()


def client_for(url: str, *, logins: bool = True) -> tuple[TestClient, Store]:
    store = Store(url, station="plant-page")
    accounts = None
    if logins:
        accounts = Accounts(store, cost=FAST)
        accounts.add_user("ingrid", "operator", "a long enough password")
    return TestClient(create_plant_app(store, accounts=accounts), base_url="http://127.0.0.1"), store


def login(client: TestClient) -> dict[str, Any]:
    response = client.post("/api/login", json={"name": "ingrid", "password": "a long enough password"},
                           headers=WRITE)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_line_with_its_rates_models_and_drift(database):
    fill(database)
    client, store = client_for(database)
    assert client.get("/api/plant", headers=HOST).status_code == 401  # logins as on a station
    assert client.get("/", headers=HOST, follow_redirects=False).headers["location"] == "/login"
    login(client)
    data = client.get("/api/plant", headers=HOST).json()
    lines = {line["line"]: line for line in data["lines"]}
    assert set(lines) == {"A", "B", NO_LINE} and data["known_lines"] == sorted(lines)
    a = lines["A"]
    assert (a["inspected"], a["ok"], a["ng"], a["errors"]) == (10, 6, 3, 1)
    assert a["reject_rate"] == pytest.approx(3 / 9, abs=1e-4)
    assert (a["overrides"], a["reviewed_rejects"]) == (1, 2)
    assert a["false_reject_share"] == 0.5
    assert a["false_reject_estimate"] == pytest.approx(1 / 7, abs=1e-4)
    assert a["last_hour"] == 10 and a["throughput_per_h"] > 0
    assert {s["station"]: [m["version"] for m in s["models"]] for s in a["stations"]} == {"s1": ["v1"],
                                                                                      "s2": ["v2"]}
    assert a["drift"] is None and lines["B"]["drift"] == "warn"
    assert lines["B"]["stations"][0]["drift"]["ad"]["state"] == "warn"
    assert len(data["rows"]) == 13 and data["rows"][0]["line"] == NO_LINE  # newest first
    store.close()


def test_filters_and_the_csv_export(database):
    fill(database)
    client, store = client_for(database, logins=False)
    data = client.get("/api/plant?line=A&grade=major", headers=HOST).json()
    assert [line["line"] for line in data["lines"]] == ["A"] and data["lines"][0]["inspected"] == 3
    assert {row["part_id"] for row in data["rows"]} == {"r0", "r1", "r2"}
    today = data["rows"][0]["created_at"][:10]
    assert client.get(f"/api/plant?from={today}&to={today}", headers=HOST).json()["lines"]
    assert client.get("/api/plant?to=2000-01-01", headers=HOST).json()["lines"] == []
    response = client.get("/api/plant.csv?line=A", headers=HOST)
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 10 and {row["station"] for row in rows} == {"s1", "s2"}
    decided = {row["part_id"]: (row["decision"], row["operator"]) for row in rows if row["decision"]}
    assert decided == {"r0": ("accept", "olaf"), "r1": ("reject", "olaf")}
    bad = client.get("/api/plant?from=yesterday", headers=HOST)
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]
    store.close()


def test_the_page_is_read_only_and_guarded(tmp_path):
    url = str(tmp_path / "plant.sqlite")
    fill(url)
    client, store = client_for(url)
    assert client.get("/api/plant", headers={"host": "evil.example"}).status_code == 421
    me = login(client)
    assert me["role"] == "operator"
    # no write routes but logging out; a cross-origin write is refused before any route
    forged = client.post("/api/logout", json={}, headers={**WRITE, "origin": "http://evil.example"})
    assert forged.status_code == 403
    assert client.post("/api/plant", json={}, headers={**WRITE, "x-csrf-token": me["csrf_token"]}).status_code \
        in (403, 405)
    page = client.get("/", headers=HOST)
    assert page.status_code == 200 and "Plant" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    store.close()
