"""The real ``defect-station`` process: three model families, bad input, the watched folder, the slider, load."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import threading
import time

import pytest

from tests.fixtures.station import FORBIDDEN, jpeg_bytes, png_bytes, running_station, steel_image


def _family_index(payload: dict, family: str) -> int:
    return next(model["index"] for model in payload["models"] if model["family"] == family)


def test_station_serves_three_families_without_torch_and_survives_bad_input(station_irs, huge_png, tmp_path):
    watch = tmp_path / "camera"
    watch.mkdir()
    (tmp_path / "outside.png").write_bytes(png_bytes(steel_image(99)))
    models = [station_irs["classifier"], station_irs["segmentor"], station_irs["anomaly"]]
    # --no-login: this test is about models and input (logins: test_login.py)
    with running_station(models, tmp_path, "--watch", str(watch), "--db", "station.sqlite",
                         "--max-upload-mb", "2", "--no-login") as station:
        assert station.url.startswith("http://127.0.0.1:")  # loopback unless --host
        status, info = station.request("api/status")
        assert status == 200 and [m["family"] for m in info["models"]] == ["classifier", "segmentor", "anomaly"]
        assert all(m["precision"] == "f32" and m["weights"] == "FP32" and len(m["version"]) == 12
                   for m in info["models"])
        status, page = station.request("")
        assert status == 200 and "Operator station" in page and "/static/station.js" in page
        assert station.request("static/station.js")[0] == 200

        # bad input: a clear message each, and the station goes on serving
        jpeg = jpeg_bytes(steel_image(1))
        bad = {"notes.txt": (b"not an image at all", 400, "not an image"),
               "cut.jpg": (jpeg[: len(jpeg) // 2], 400, "truncated JPEG"),
               "huge.png": (huge_png, 400, "10000 x 10000 pixels"),
               "empty.png": (b"", 400, "empty file"),
               "big.bin": (os.urandom(2_500_000), 413, "limit of 2 MB")}
        for name, (data, code, message) in bad.items():
            status, body = station.upload(data, name)
            assert status == code and message in body["error"] and body["error"].startswith(name), (name, body)
        status, result = station.upload(png_bytes(steel_image(2)), "part 2.png")
        assert status == 200, result
        assert result["source"] == "upload:part 2.png" and result["grade"] in info["rules"]["grades"]
        assert set(result["views"]) >= {"original", "bilateral", "stretched", "otsu"}
        for model in result["models"]:
            assert model["status"] == "ok" and model["overlay"].startswith("data:image/jpeg;base64,")
            assert model["grade"] in info["rules"]["grades"] and model["reasons"]
            assert model["totals"]["image_width"] == 200
        classifier = result["models"][_family_index(result, "classifier")]
        assert classifier["class"] in info["models"][0]["classes"] and classifier["regions"]
        assert result["class"] == classifier["class"]

        # the watched folder: its newest image, a name inside it, nothing outside it
        (watch / "older.png").write_bytes(png_bytes(steel_image(3)))
        (watch / "newer.jpg").write_bytes(jpeg_bytes(steel_image(4)))
        os.utime(watch / "older.png", (time.time() - 60, time.time() - 60))
        (watch / "link.png").symlink_to(tmp_path / "outside.png")
        assert station.request("api/watch")[1]["files"] == ["newer.jpg", "older.png"]
        status, newest = station.request("api/watch", json_body={})
        assert status == 200 and newest["source"] == "watch:newer.jpg"
        assert station.request("api/watch", json_body={"name": "older.png"})[1]["source"] == "watch:older.png"
        for name, code in (("../outside.png", 400), (str(tmp_path / "outside.png"), 400), ("link.png", 400),
                           ("..", 400), ("missing.png", 404)):
            status, body = station.request("api/watch", json_body={"name": name})
            assert status == code and "watched folder" in body["error"], (name, body)

        # the threshold slider re-thresholds the kept map: decision follows, the model does not run again
        anomaly = _family_index(result, "anomaly")
        runs = station.request("api/status")[1]["models"][anomaly]["inferences"]
        token = result["token"]
        low = station.request("api/threshold", json_body={"inspection_id": result["inspection_id"], "model": anomaly,
                                                          "threshold": 0.0, "token": token})[1]
        assert low["model"]["decision"] == "defect" and low["model"]["threshold"] == 0.0
        assert low["model"]["num_regions"] >= 1 and low["model"]["grade"] != "ok"
        score = low["model"]["score"]
        if score < 1.0:
            high = station.request("api/threshold", json_body={"inspection_id": result["inspection_id"],
                                                               "model": anomaly, "threshold": 1.0, "token": token})[1]
            assert high["model"]["decision"] == "good" and high["model"]["num_regions"] == 0
        assert station.request("api/status")[1]["models"][anomaly]["inferences"] == runs
        for body, message in (({"inspection_id": result["inspection_id"], "model": 0, "threshold": 0.5,
                                "token": token}, "no anomaly map"),
                              ({"inspection_id": 10 ** 6, "model": anomaly, "threshold": 0.5}, "no longer"),
                              ({"inspection_id": result["inspection_id"], "model": anomaly, "threshold": 2,
                                "token": token}, "within 0 and 1")):
            status, answer = station.request("api/threshold", json_body=body)
            assert status in (400, 404) and message in answer["error"]

        # decisions: stored with the threshold in force; bad ones refused
        status, row = station.request("api/decision", json_body={
            "inspection_id": result["inspection_id"], "token": token, "operator": "Ana", "decision": "reject",
            "comment": "pit near the edge"})
        assert status == 200 and row["decision"] == "reject" and row["operator"] == "Ana"
        in_force = 1.0 if score < 1.0 else 0.0  # the last threshold the slider set
        assert json.loads(row["thresholds"])[info["models"][anomaly]["name"]] == in_force
        signed = {"token": token, "operator": "Ana"}
        for body, message in (({"inspection_id": result["inspection_id"], "decision": "regrade", "grade": "awful",
                                **signed}, "regrade needs a grade"),
                              ({"inspection_id": result["inspection_id"], "decision": "maybe", **signed},
                               "must be one of"),
                              ({"inspection_id": 10 ** 6, "decision": "accept", **signed}, "does not exist"),
                              ({"inspection_id": "x", "decision": "accept", **signed}, "must be an integer")):
            status, answer = station.request("api/decision", json_body=body)
            assert status in (400, 404) and message in answer["error"], answer
        assert station.request("api/decision", data=b"{not json", method="POST",
                               headers={"Content-Type": "application/json"})[0] == 400

        # history filters and the CSV export
        status, history = station.request(f"api/history?decision=reject&class={result['class']}")
        assert [r["id"] for r in history["rows"]] == [result["inspection_id"]]
        assert history["rows"][0]["comment"] == "pit near the edge"
        csv_text = station.request("api/history.csv?decision=reject")[1]
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        assert len(rows) == 1 and rows[0]["decision"] == "reject"
        assert len(station.request("api/history")[1]["rows"]) == 3
        assert station.request("api/history?from=yesterday")[0] == 400
        modules = station.stop()
    assert modules, "the station did not report its modules at exit"
    loaded = sorted({name.split(".")[0] for name in modules} & set(FORBIDDEN))
    assert loaded == [], f"defect-station imported {loaded}"


def test_four_clients_fifty_images_each_all_stored_once(station_irs, tmp_path):
    models = [station_irs["classifier"], station_irs["segmentor"], station_irs["anomaly"]]
    uploads = {(client, index): png_bytes(steel_image(1000 * client + index, size=96))
               for client in range(4) for index in range(50)}
    answers: dict[tuple[int, int], tuple[int, dict]] = {}
    with running_station(models, tmp_path, "--db", "station.sqlite", "--no-login") as station:
        def client(number: int) -> None:
            for index in range(50):
                answers[(number, index)] = station.upload(uploads[(number, index)], f"c{number}_{index:02d}.png")

        threads = [threading.Thread(target=client, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert station.request("api/status")[0] == 200  # still serving
        station.stop()
    assert all(status == 200 for status, _ in answers.values()), [a for a in answers.values() if a[0] != 200][:3]
    ids = {key: body["inspection_id"] for key, (_, body) in answers.items()}
    assert len(set(ids.values())) == 200
    with sqlite3.connect(tmp_path / "station.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT id, source, image_sha256, models, results, grade, class_name FROM inspections")
        rows = {row[0]: row for row in rows}
    assert sorted(rows) == sorted(ids.values())  # every upload once, nothing else
    for key, inspection_id in ids.items():
        _, source, sha, models_json, results_json, grade, class_name = rows[inspection_id]
        assert source == f"upload:c{key[0]}_{key[1]:02d}.png"
        assert sha == hashlib.sha256(uploads[key]).hexdigest()
        assert [m["family"] for m in json.loads(models_json)] == ["classifier", "segmentor", "anomaly"]
        results = json.loads(results_json)
        assert len(results) == 3 and all(r["status"] == "ok" and r["grade"] for r in results)
        assert grade and class_name


@pytest.mark.parametrize("args, message", [
    (["--rules", "missing.yaml"], "missing.yaml: no such rule file"),
    (["--db", "no/such/folder/station.sqlite"], "does not exist"),
    (["--watch", "not-a-folder"], "not a folder"),
])
def test_bad_start_arguments_are_one_line_errors(station_irs, tmp_path, monkeypatch, capsys, args, message):
    from defect_plugins.station.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["--model", str(station_irs["anomaly"]), "--port", "0", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("defect-station: error: ") and message in err and len(err.splitlines()) == 1
