"""Write ``station_schema3.sqlite``: a small station file as the schema-3 release (raw ``sqlite3`` store) wrote it.

The migration test opens a copy of it with today's store: every row must still be there and the audit
chain must verify. The file was made once with the schema-3 release of ``defect_plugins.station.store``
(``python tests/data/make_station_schema3.py``, from the repository root) and is checked in as written;
running this again with a later release would write a file of that release's schema instead.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from defect_plugins.station.accounts import Accounts, ScryptCost  # noqa: E402
from defect_plugins.station.store import Store  # noqa: E402

FAST = ScryptCost(n=2 ** 14, r=8, p=1)
PASSWORD = "correct horse"  # both users' password


def main(path: Path = HERE / "station_schema3.sqlite") -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store(path)
    accounts = Accounts(store, cost=FAST)
    accounts.add_user("Ana", "engineer", PASSWORD)
    accounts.add_user("Ben", "operator", PASSWORD)
    accounts.login("Ben", PASSWORD, client="127.0.0.1")
    parts = [("P-001", "L-7", "OK", "ok"), ("P-002", "L-7", "NG", "major"), (None, None, None, "minor")]
    for index, (part_id, lot, verdict, grade) in enumerate(parts, start=1):
        def messages(inspection_id: int, created: str, part_id: str | None = part_id) -> list[tuple[str, str, str]]:
            if part_id is None:
                return []
            return [("mqtt", "line/verdict", f'{{"inspection_id": {inspection_id}, "part_id": "{part_id}"}}')]
        store.add_inspection(source=f"upload:{index}.png", image_sha256=f"{index:064x}", width=200, height=100,
                             models=[{"name": "rd", "version": "1"}], results=[{"model": "rd", "score": 0.5}],
                             grade=grade, class_name="crazing", score=0.25 * index, view_token=f"token-{index}",
                             part_id=part_id, lot=lot, verdict=verdict, messages=messages)
    store.add_decision(2, decision="reject", operator="Ben", system_grade="major", final_grade="major",
                       thresholds={"rd": 0.5}, comment="scratch")
    store.add_decision(3, decision="regrade", operator="Ana", system_grade="minor", final_grade="ok",
                       thresholds={"rd": 0.6})
    first = store.outbox_pending("mqtt")[0]
    store.outbox_attempted(first["id"])
    store.outbox_published(first["id"])  # one published, one pending
    store.close()  # checkpoints the WAL into the file


if __name__ == "__main__":
    main()
