"""An operator's round on ``defect-station`` with a fitted bundle: every held-out test image, uploaded and decided.

    python experiments/station/bundle_round.py BUNDLE DATA [--out round.json]

Starts the real station (``python -m defect_plugins.station --model BUNDLE --no-login``, a new SQLite file in
the current folder), uploads each image of the bundle's test part (``predictions.csv``) through the page's API,
records a decision for it (accept what the station calls good, reject the rest) and compares the station's
decisions with the bundle's own held-out predictions: the false-reject rate and the recall the operator sees
must be the card's. Prints and writes the figures as JSON.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HEADERS = {"X-Requested-With": "defect-station"}


def _post(url: str, body: bytes, kind: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={**HEADERS, "Content-Type": kind})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("data", type=Path, help="the folder the bundle was fitted on")
    parser.add_argument("--out", type=Path, default=Path("round.json"))
    args = parser.parse_args()
    process = subprocess.Popen([sys.executable, "-m", "defect_plugins.station", "--model", str(args.bundle),
                                "--no-login", "--port", "0", "--db", "round.sqlite"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = None
    for line in process.stdout:
        if line.startswith("defect-station: serving"):
            url = line.split("serving ", 1)[1].strip()
            break
    if url is None:
        raise SystemExit(f"the station did not start (exit {process.wait()})")
    rows = [row for row in csv.DictReader((args.bundle / "predictions.csv").open()) if row["part"] == "test"]
    figures = {"images": len(rows), "agree": 0, "good": 0, "false_reject": 0, "defects": 0, "caught": 0}
    started = time.perf_counter()
    try:
        for row in rows:
            path = args.data / row["file"]
            shown = _post(f"{url}api/inspect?name={urllib.request.quote(path.name)}", path.read_bytes(),
                          "application/octet-stream")
            decision = shown["models"][0]["decision"]
            figures["agree"] += decision == row["decision_fp32"]
            good = row["label"] == "good"
            figures["good" if good else "defects"] += 1
            figures["false_reject" if good else "caught"] += decision == "defect"
            _post(f"{url}api/decision", json.dumps({
                "inspection_id": shown["inspection_id"], "token": shown["token"], "operator": "round",
                "decision": "accept" if decision == "good" else "reject"}).encode(), "application/json")
    finally:
        process.terminate()
        process.wait()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["command"] = " ".join(sys.argv)
    print(json.dumps(figures))
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
