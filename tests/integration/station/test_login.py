"""Logins over real HTTP: sessions and their cookie, roles, CSRF tokens, signed decisions, the throttle, the CLI.

The station runs as operators start it (``python -m defect_plugins.station``), with accounts made by
the real ``defect-station users add``; the audit trail is read back from its SQLite file.
"""
from __future__ import annotations

import csv
import json
import sqlite3
from urllib.parse import urlsplit

import pytest

from tests.fixtures.station import add_user, png_bytes, running_station, station_cli, steel_image

ENGINEER, OPERATOR = ("Erin", "engineer pass 1"), ("Olaf", "operator pass 1")


@pytest.fixture(scope="module")
def station(station_irs, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("login")
    add_user(workdir, "station.sqlite", ENGINEER[0], "engineer", ENGINEER[1])
    add_user(workdir, "station.sqlite", OPERATOR[0], "operator", OPERATOR[1])
    with running_station([station_irs["anomaly"]], workdir, "--db", "station.sqlite") as process:
        process.workdir = workdir
        yield process


def _audit(station) -> list[tuple[str, str, dict]]:
    with sqlite3.connect(station.workdir / "station.sqlite") as conn:
        rows = conn.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()
    return [(actor, action, json.loads(detail)) for actor, action, detail in rows]


def _inspect(client, seed: int) -> dict:
    status, payload = client.upload(png_bytes(steel_image(seed, size=96)), f"part{seed}.png")
    assert status == 200, payload
    return payload


def test_without_a_session_only_the_login_page_answers(station):
    status, _ = station.request("")
    assert status == 303 and station.last_headers["location"] == ["/login"]
    for path in ("api/status", "api/history", "api/history.csv", "api/me"):
        status, body = station.request(path)
        assert status == 401 and "log in" in body["error"], path
    status, body = station.upload(png_bytes(steel_image(1, size=96)), "x.png")
    assert status == 401
    status, page = station.request("login")
    assert status == 200 and "/static/login.js" in page and "<script>" not in page  # the CSP forbids inline
    assert station.request("static/login.js")[0] == 200 and station.request("static/station.js")[0] == 200
    # a cookie that is not a session's is no session
    forged = station.login(*OPERATOR)
    forged.cookie = "defect_station_session=" + "A" * 43
    assert forged.request("api/me")[0] == 401


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_the_session(station):
    status, body = station.request("api/login", json_body={"name": OPERATOR[0], "password": "not it at all"})
    assert status == 401 and body["error"] == "wrong user name or password (or the account is disabled)"
    status, body = station.request("api/login", json_body={"name": "Nobody", "password": "not it at all"})
    assert status == 401 and body["error"] == "wrong user name or password (or the account is disabled)"
    olaf = station.login(*OPERATOR)
    cookie = olaf.last_headers["set-cookie"][0]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(flags) and "secure" not in flags
    assert cookie.startswith("defect_station_session=") and "max-age=43200" in flags  # one 12 h shift
    status, me = olaf.request("api/me")
    assert status == 200 and (me["login"], me["user"], me["role"]) == (True, "Olaf", "operator")
    assert me["csrf_token"] == olaf.csrf
    assert olaf.request("")[0] == 200
    # over https (a TLS proxy on this PC, which uvicorn trusts): the cookie is Secure too
    status, _ = station.request("api/login", json_body={"name": OPERATOR[0], "password": OPERATOR[1]},
                                headers={"X-Forwarded-Proto": "https"})
    assert status == 200 and "secure" in [p.strip().lower() for p in station.last_headers["set-cookie"][0].split(";")]

    status, _ = olaf.request("api/logout", json_body={})
    assert status == 200 and "max-age=0" in olaf.last_headers["set-cookie"][0].lower()
    assert olaf.request("api/me")[0] == 401 and olaf.request("")[0] == 303
    trail = _audit(station)
    assert ("Olaf", "login_failed", {"client": "127.0.0.1", "reason": "wrong password"}) in trail
    assert ("Nobody", "login_failed", {"client": "127.0.0.1", "reason": "unknown user name"}) in trail
    assert [a for a in trail if a[1] in ("login", "logout")][-1][:2] == ("Olaf", "logout")


def test_writes_need_the_sessions_csrf_token_and_the_guards_checks(station):
    olaf, erin = station.login(*OPERATOR), station.login(*ENGINEER)
    payload = _inspect(olaf, 5)
    decide = {"inspection_id": payload["inspection_id"], "decision": "accept", "token": payload["token"]}
    for token in (None, "", erin.csrf, "x" * 64):
        status, body = olaf.request("api/decision", json_body=decide, headers={"X-CSRF-Token": token})
        assert status == 403 and "X-CSRF-Token" in body["error"], token
    # a valid session and token do not lift the guard: another site's page still cannot write
    status, body = olaf.request("api/decision", json_body=decide, headers={"Origin": "http://evil.example"})
    assert status == 403 and "Origin" in body["error"]
    status, body = olaf.request("api/decision", json_body=decide, headers={"X-Requested-With": None})
    assert status == 403 and "X-Requested-With" in body["error"]
    with sqlite3.connect(station.workdir / "station.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM decisions WHERE inspection_id = ?",
                            (payload["inspection_id"],)).fetchone()[0] == 0
    status, row = olaf.request("api/decision", json_body=decide)
    assert status == 200 and row["operator"] == "Olaf"


def test_operators_inspect_and_decide_only_engineers_move_thresholds(station):
    olaf, erin = station.login(*OPERATOR), station.login(*ENGINEER)
    payload = _inspect(olaf, 11)
    move = {"inspection_id": payload["inspection_id"], "token": payload["token"], "model": 0, "threshold": 0.0}
    status, body = olaf.request("api/threshold", json_body=move)
    assert status == 403 and "needs the engineer role" in body["error"] and "Olaf" in body["error"]
    # the engineer, on the page that was shown the inspection (its view token), may
    status, moved = erin.request("api/threshold", json_body=move)
    assert status == 200 and moved["model"]["threshold"] == 0.0
    assert olaf.request("api/history")[0] == 200 and olaf.request("api/history.csv")[0] == 200
    model = payload["models"][0]["name"]
    assert ("Erin", "threshold_moved", {"inspection_id": payload["inspection_id"], "model": model,
                                        "threshold": 0.0, "grade": moved["grade"]}) in _audit(station)


def test_decisions_carry_the_logged_in_operator(station):
    olaf = station.login(*OPERATOR)
    payload = _inspect(olaf, 21)
    decide = {"inspection_id": payload["inspection_id"], "token": payload["token"], "decision": "reject",
              "comment": "pit"}
    status, body = olaf.request("api/decision", json_body={**decide, "operator": "Erin"})
    assert status == 403 and "'Olaf'" in body["error"] and "'Erin'" in body["error"]
    status, row = olaf.request("api/decision", json_body=decide)
    assert status == 200 and row["operator"] == "Olaf"
    status, row = olaf.request("api/decision", json_body={**decide, "operator": "Olaf", "decision": "accept"})
    assert status == 200 and row["operator"] == "Olaf"
    history = olaf.request("api/history")[1]["rows"]
    decided = next(r for r in history if r["id"] == payload["inspection_id"])["decisions"]
    assert [(d["decision"], d["operator"]) for d in decided] == [("reject", "Olaf"), ("accept", "Olaf")]
    entries = [a for a in _audit(station) if a[1] == "decision" and a[2]["inspection_id"] == payload["inspection_id"]]
    assert [(actor, detail["decision"], detail["comment"]) for actor, _, detail in entries] == [
        ("Olaf", "reject", "pit"), ("Olaf", "accept", "pit")]


def test_repeated_failures_lock_the_name_for_a_minute(station):
    add_user(station.workdir, "station.sqlite", "Tess", "operator", "tess pass 123")
    for _ in range(5):
        assert station.request("api/login", json_body={"name": "Tess", "password": "guess 1234"})[0] == 401
    status, body = station.request("api/login", json_body={"name": "Tess", "password": "tess pass 123"})
    assert status == 429 and "try again in" in body["error"] and int(station.last_headers["retry-after"][0]) > 0


def test_the_start_is_audited_and_the_cli_manages_users_and_checks_the_trail(station, tmp_path):
    trail = _audit(station)
    assert [a[:2] for a in trail[:2]] == [("cli", "user_added"), ("cli", "user_added")]
    started = [a for a in trail if a[0] == "station"]
    assert [a[1] for a in started[:3]] == ["station_started", "rules_loaded", "model_loaded"]
    assert started[0][2]["logins"] is True and started[2][2]["family"] == "anomaly"
    assert started[1][2]["grades"] and started[1][2]["origin"]

    workdir, db = station.workdir, "station.sqlite"
    done = station_cli("users", "add", "Olaf", "--role", "operator", "--db", db, "--password-stdin", cwd=workdir,
                       stdin="another pass\n")
    assert done.returncode == 1 and "user 'Olaf' already exists" in done.stderr
    done = station_cli("users", "add", "Pia", "--role", "operator", "--db", db, cwd=workdir, stdin="")
    assert done.returncode == 1 and "--password-stdin" in done.stderr  # no terminal to ask on
    done = station_cli("users", "add", "Pia", "--role", "operator", "--db", db, "--password-stdin", cwd=workdir,
                       stdin="short\n")
    assert done.returncode == 1 and "at least 8 characters" in done.stderr
    add_user(workdir, db, "Pia", "operator", "pia pass 1234")
    pia = station.login("Pia", "pia pass 1234")
    done = station_cli("users", "list", "--db", db, cwd=workdir)
    listed = {line.split()[0]: line.split()[1:3] for line in done.stdout.splitlines()}
    assert done.returncode == 0 and listed["Erin"] == ["engineer", "active"] and listed["Pia"] == ["operator", "active"]
    done = station_cli("users", "disable", "Pia", "--db", db, cwd=workdir)
    assert done.returncode == 0 and "disabled" in done.stdout
    assert pia.request("api/me")[0] == 401  # the running station sees it at once
    assert station.request("api/login", json_body={"name": "Pia", "password": "pia pass 1234"})[0] == 401
    assert station_cli("users", "list", "--db", db, cwd=workdir).stdout.count("disabled") == 1
    assert station_cli("users", "list", "--db", "typo.sqlite", cwd=workdir).returncode == 1

    done = station_cli("audit", "verify", "--db", db, cwd=workdir)
    count = len(_audit(station))
    assert done.returncode == 0 and done.stdout.splitlines()[0] == f"audit trail intact: {count} entries"
    done = station_cli("audit", "export", "--db", db, "--out", str(tmp_path / "audit.csv"), cwd=workdir)
    assert done.returncode == 0
    with (tmp_path / "audit.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= count and list(rows[0]) == ["id", "at", "actor", "action", "detail", "prev_hash", "hash"]
    assert all(row["prev_hash"] == previous["hash"] for previous, row in zip(rows, rows[1:]))

    # a copy of the file with one entry edited (triggers dropped, as the sqlite3 shell can): named, exit 1
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(workdir / db) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy, isolation_level=None) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET actor = 'Olaf' WHERE id = 3")
    conn.close()
    done = station_cli("audit", "verify", "--db", str(copy), cwd=workdir)
    assert done.returncode == 1 and done.stdout.startswith("audit trail broken at entry 3: ")
    assert "edited" in done.stdout


def test_serving_needs_an_engineer_unless_no_login(station_irs, tmp_path):
    add_user(tmp_path, "station.sqlite", "Olaf", "operator", OPERATOR[1])
    done = station_cli("--model", str(station_irs["anomaly"]), "--db", "station.sqlite", "--port", "0", cwd=tmp_path)
    assert done.returncode == 1
    assert "no engineer account" in done.stderr and "users add NAME --role engineer" in done.stderr
    assert "--no-login" in done.stderr

    with running_station([station_irs["anomaly"]], tmp_path, "--db", "station.sqlite", "--no-login") as bench:
        status, me = bench.request("api/me")
        assert status == 200 and me == {"login": False, "user": None, "role": None, "csrf_token": None,
                                        "expires_at": None}
        assert bench.request("login")[0] == 303 and bench.last_headers["location"] == ["/"]
        status, body = bench.request("api/login", json_body={"name": OPERATOR[0], "password": OPERATOR[1]})
        assert status == 400 and "--no-login" in body["error"]
        assert "No login: anyone who reaches this page acts as any" in bench.request("")[1]
        payload = _inspect(bench, 31)
        status, row = bench.request("api/decision", json_body={
            "inspection_id": payload["inspection_id"], "token": payload["token"], "decision": "accept",
            "operator": "Typed Name"})
        assert status == 200 and row["operator"] == "Typed Name"
        assert urlsplit(bench.url).hostname == "127.0.0.1"
        output = bench.output()
    assert "WARNING: --no-login: anyone who reaches this page acts as any operator" in output
