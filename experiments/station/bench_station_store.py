"""Insert time of the station's SQLite store, with the WAL kept open by the store's keeper connection and without.

    python experiments/station/bench_station_store.py [--inserts 200] [--json bench_station_store.json]

SQLite checkpoints the write-ahead log into the database and deletes it when the last connection
that has the WAL open closes (https://www.sqlite.org/wal.html); the station opens a connection
per operation, so without a connection that stays open *and has read the database* every insert
pays that checkpoint. This runs ``--inserts`` inspections into a new file twice per mode
(alternating, so both see the same moments of the machine) and reports the mean insert time and
whether the ``-wal`` file stayed.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from defect_plugins.station.store import Store


def insert_time(inserts: int, *, keeper_reads: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        store = Store(Path(folder) / "station.sqlite")
        if not keeper_reads:  # a keeper that was opened but never read: it does not hold the WAL open
            store.close()
            store._keeper = sqlite3.connect(str(store.path), check_same_thread=False)
        start = time.perf_counter()
        for _ in range(inserts):
            store.add_inspection(source="upload:bench.png", image_sha256="0" * 64, width=200, height=200,
                                 models=[], results=[], grade="ok", class_name="bench", score=None)
        per_insert_ms = (time.perf_counter() - start) / inserts * 1000
        wal_kept = Path(f"{store.path}-wal").exists()
        store.close()
    return {"per_insert_ms": per_insert_ms, "wal_file_kept": wal_kept}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inserts", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"keeper_reads": [], "keeper_never_reads": []}
    for _ in range(2):
        runs["keeper_never_reads"].append(insert_time(args.inserts, keeper_reads=False))
        runs["keeper_reads"].append(insert_time(args.inserts, keeper_reads=True))
    figures = {"inserts": args.inserts, "cpu_count": os.cpu_count(), "synchronous": "FULL", "runs": runs}
    for mode, rows in runs.items():
        print(f"{mode}: " + ", ".join(f"{r['per_insert_ms']:.2f} ms/insert (WAL kept: {r['wal_file_kept']})"
                                      for r in rows))
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, figures, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
