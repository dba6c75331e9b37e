"""The model-version routes over HTTP (Starlette's TestClient, in process): roles, CSRF, clear 400s, the report.

The station, its accounts (at a cheap scrypt setting) and the bundles are made in process from tiny opset
IRs (tests/fixtures/station.py :func:`version_shelf`), so the whole file runs in seconds.
"""
from __future__ import annotations


import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from defect_plugins.deploy.grading import load_rules
from defect_plugins.station.accounts import Accounts, ScryptCost
from defect_plugins.station.app import create_app
from defect_plugins.station.audit import verify
from defect_plugins.station.engine import Station
from defect_plugins.station.store import Store
from tests.fixtures.station import png_bytes, version_image, version_shelf
from tests.unit.station.test_versions import _BrokenPostprocessing

WRITE = {"X-Requested-With": "defect-station"}


@pytest.fixture
def served(tmp_path):
    paths = version_shelf(tmp_path)
    store = Store(tmp_path / "station.sqlite")
    accounts = Accounts(store, cost=ScryptCost(n=2 ** 14, r=8, p=1))
    accounts.add_user("erin", "engineer", "engineer-secret-1")
    accounts.add_user("olaf", "operator", "operator-secret-1")
    station = Station([paths["live"]], load_rules(), store, bundles=paths["shelf"])
    app = create_app(station, accounts=accounts, hosts={"testserver"})
    yield station, app
    store.close()


def _login(app, name: str, password: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    answer = client.post("/api/login", json={"name": name, "password": password}, headers=WRITE)
    assert answer.status_code == 200, answer.text
    return client, {**WRITE, "X-CSRF-Token": answer.json()["csrf_token"]}


def test_an_operator_gets_403_on_every_model_route(served):
    _, app = served
    client, headers = _login(app, "olaf", "operator-secret-1")
    assert client.get("/api/models").status_code == 403
    assert client.get("/api/models/comparison?slot=0").status_code == 403
    for path in ("shadow", "shadow/stop", "activate", "rollback"):
        answer = client.post(f"/api/models/{path}", json={"slot": 0, "bundle": "strict"}, headers=headers)
        assert answer.status_code == 403 and "engineer role" in answer.json()["error"], path


def test_an_engineer_shadows_activates_rolls_back_and_reads_the_report(served):
    station, app = served
    client, headers = _login(app, "erin", "engineer-secret-1")
    listing = client.get("/api/models").json()
    assert [b["name"] for b in listing["bundles"]] == ["cls", "strict"]
    strict = next(b for b in listing["bundles"] if b["name"] == "strict")
    assert strict["family"] == "anomaly" and strict["created"] and len(strict["version"]) == 12
    assert listing["slots"][0]["active"]["name"] == "live" and listing["slots"][0]["shadow"] is None
    # without the CSRF token a write is refused
    assert client.post("/api/models/shadow", json={"slot": 0, "bundle": "strict"}, headers=WRITE).status_code == 403

    answer = client.post("/api/models/shadow", json={"slot": 0, "bundle": "strict"}, headers=headers)
    assert answer.status_code == 200 and answer.json()["shadow"]["name"] == "strict"
    inspected = client.post("/api/inspect?name=g.png", content=png_bytes(version_image()),
                            headers={**headers, "Content-Type": "image/png"})
    assert inspected.status_code == 200 and [m["name"] for m in inspected.json()["models"]] == ["live"]
    history = client.get("/api/history").json()["rows"][0]
    assert history["verdict"] == "OK" and history["results"][1]["role"] == "shadow"
    report = client.get("/api/models/comparison?slot=0").json()
    assert report["count"] == 1 and report["agreement"] == 0.0
    assert report["differ"][0]["view"] == f"/api/part/{inspected.json()['inspection_id']}"

    answer = client.post("/api/models/activate", json={"slot": 0}, headers=headers)
    assert answer.status_code == 200 and answer.json()["active"]["name"] == "strict"
    assert answer.json()["previous"]["name"] == "live"
    assert client.get("/api/status").json()["models"][0]["name"] == "strict"
    assert client.get("/api/line").json()["models"][0]["name"] == "strict"
    # a switched-in model that fails on a part is rolled back; both pages' states carry the notice
    active = station.slots.snapshot()[0].active
    active.inferencer.family = _BrokenPostprocessing(active.inferencer.family)
    inspected = client.post("/api/inspect?name=g.png", content=png_bytes(version_image()),
                            headers={**headers, "Content-Type": "image/png"})
    assert inspected.status_code == 200 and inspected.json()["grade"] == "ok"
    assert [m["name"] for m in inspected.json()["models"]] == ["live"]
    for path in ("/api/status", "/api/line"):
        assert "rolled back to live" in client.get(path).json()["model_notices"][0]["message"], path
    answer = client.post("/api/models/rollback", json={"slot": 0}, headers=headers)  # back to the failing one
    assert answer.status_code == 200 and answer.json()["active"]["name"] == "strict"
    answer = client.post("/api/models/rollback", json={"slot": 0}, headers=headers)
    assert answer.status_code == 200 and answer.json()["active"]["name"] == "live"
    active.inferencer.family = active.inferencer.family._family  # repaired
    answer = client.post("/api/models/shadow", json={"slot": 0, "bundle": "strict"}, headers=headers)
    answer = client.post("/api/models/shadow/stop", json={"slot": 0}, headers=headers)
    assert answer.status_code == 200 and answer.json()["shadow"] is None

    with station.store.transaction() as conn:
        trail = [row[0] for row in conn.execute(
            text("SELECT action FROM audit WHERE action LIKE 'model_%' ORDER BY id"))]
    assert trail == ["model_shadow_started", "model_activated", "model_auto_rollback", "model_rolled_back",
                     "model_rolled_back", "model_shadow_started", "model_shadow_stopped"]
    assert verify(station.store).ok


@pytest.mark.parametrize("path, body, message", [
    ("shadow", {"slot": 5, "bundle": "strict"}, "slot 5 does not exist"),
    ("shadow", {"slot": "one", "bundle": "strict"}, "'slot' must be an integer"),
    ("shadow", {"bundle": "strict"}, "'slot' is missing"),
    ("shadow", {"slot": 0, "bundle": "nope"}, "no bundle or IR called 'nope'"),
    ("shadow", {"slot": 0, "bundle": "../live"}, "no bundle or IR called '../live'"),
    ("shadow", {"slot": 0}, "'bundle' must be the name of a bundle"),
    ("shadow", {"slot": 0, "bundle": "cls"}, "cls is a classifier model; slot 0 holds anomaly models"),
    ("activate", {"slot": 0}, "runs no shadow model to activate"),
    ("rollback", {"slot": 0}, "no previous model"),
    ("shadow/stop", {"slot": 0}, "runs no shadow model"),
])
def test_bad_slots_bundles_and_families_get_400_with_a_clear_message(served, path, body, message):
    _, app = served
    client, headers = _login(app, "erin", "engineer-secret-1")
    answer = client.post(f"/api/models/{path}", json=body, headers=headers)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert client.get("/api/models/comparison").status_code == 400
    assert client.get("/api/models/comparison?slot=9").status_code == 400
