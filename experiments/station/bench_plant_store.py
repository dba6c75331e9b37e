"""Records per second one PostgreSQL takes from 4 stations, against 1 station on SQLite (the station's store).

    python experiments/station/bench_plant_store.py [--inspections 500] [--stations 4] [--rounds 3] \\
        [--fsync on|off] [--folder DIR] [--json bench_plant_store.json]

Each station is its own process with its own ``Store(url, line="bench", station="stationK")`` and writes
``--inspections`` inspections as the line records a part: ``add_inspection(..., messages=...)`` with the
verdict's outbox message (:func:`defect_plugins.station.line.mqtt.verdict_messages`) in the inspection's
transaction, and ``add_decision`` (with its audit entry) for every 10th inspection. Four variants, side by
side in one run:

* ``sqlite_1``: 1 station on an SQLite file (WAL, ``synchronous=FULL``: the station's own engine sets it);
* ``postgres_4``: 4 stations (``--stations``) on one PostgreSQL database;
* ``postgres_1``: 1 station on PostgreSQL;
* ``sqlite_4``: 4 stations on one SQLite file (they serialise on its write lock).

The variants alternate in ``--rounds`` rounds (the order rotates each round), each run on a new, empty
database (a new file; a new PostgreSQL database on the one server), and the figures are the medians over
the rounds: a shared machine's speed drifts. Per variant: records/s (inspections of all stations together
per second of wall time, from the first station's start to the last one's end; the stations start together
at a barrier), p50 / p99 of one ``add_inspection`` call (all stations' calls pooled), p50 of one
``add_decision``, the CPU cores the stations used and, on PostgreSQL, the cores the server used (the
postmaster and its backends, from ``/proc``). After each run the rows are counted: every station's
inspections, outbox messages and decisions exactly once (write keys distinct), and the audit trail verified.

PostgreSQL is started here, as ``tests/fixtures/postgres.py`` starts it (``initdb`` and ``pg_ctl`` from PATH or
``/usr/lib/postgresql/*/bin``, a free loopback port, a temporary folder; under root as the unprivileged user
``nobody`` through ``runuser``), but with ``fsync`` on (the server's default, what a plant runs; the test
fixture turns it off, which is why it is not imported here); ``--fsync off`` for comparison. The settings the
server ran with are recorded. The data of both databases live in ``--folder`` (default: the system's
temporary folder), so that both write to the same disk. The JSON has the hardware, the versions and the
exact command.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.metadata
import multiprocessing
import os
import platform
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: the clone's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

VARIANTS = ("sqlite_1", "postgres_4", "postgres_1", "sqlite_4")
DECISION_EVERY = 10
UNPRIVILEGED = "nobody"
LINE = "bench"


# ---------------------------------------------------------------------------------------------- the server

def find_postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else the newest ``/usr/lib/postgresql/*/bin``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    folders = [f for f in glob.glob("/usr/lib/postgresql/*/bin") if (Path(f) / "initdb").is_file()]
    folders.sort(key=lambda f: int(Path(f).parent.name) if Path(f).parent.name.isdigit() else 0, reverse=True)
    return Path(folders[0]) if folders else None


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """``postgres`` on ``127.0.0.1:port``, data, socket and log in ``folder``; superuser ``postgres``, trust."""

    def __init__(self, bin_dir: Path, folder: Path, *, fsync: bool) -> None:
        self.bin_dir, self.folder, self.fsync = bin_dir, folder, fsync
        self.data = folder / "data"
        self.log_path = folder / "postgres.log"
        self.port = free_port()
        self._as = ["runuser", "-u", UNPRIVILEGED, "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(folder, UNPRIVILEGED)

    def _run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode:
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}\n{log}")
        return done.stdout

    def start(self) -> Postgres:
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=100 "
                   f"-c fsync={'on' if self.fsync else 'off'}")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def connect(self, database: str = "postgres") -> Any:  # noqa: ANN401
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname={database}", autocommit=True)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
                 "shared_buffers", "wal_level", "max_connections")
        with self.connect() as conn:
            return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        return None


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def server_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time (s) of the postmaster and every backend: its own, its reaped children's, its live children's."""
    if postmaster is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    own = _stat(postmaster)
    if own is None:
        return None
    total = sum(int(v) for v in own[11:15])  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and int(stat[1]) == postmaster:  # ppid
                total += sum(int(v) for v in stat[11:15])
    return total / tick


# ---------------------------------------------------------------------------------------------- a station

def station(url: str, name: str, inspections: int, barrier: Any, results: Any) -> None:  # noqa: ANN401
    """One station's process: its own store, ``inspections`` records, a decision for every 10th."""
    from defect_plugins.station.line.mqtt import verdict_messages
    from defect_plugins.station.store import Store

    try:
        store = Store(url, line=LINE, station=name)
        store.read("warming up", lambda conn: conn.exec_driver_sql("SELECT COUNT(*) FROM inspections").scalar())
        models = [{"name": "cls", "version": "1"}]
        insert_s: list[float] = []
        decision_s: list[float] = []
        barrier.wait(timeout=180)
        cpu0, start = time.process_time(), time.monotonic()
        for number in range(inspections):
            part = f"{name}-{number}"
            score = (number % 100) / 100
            grade = "ng" if score > 0.9 else "ok"
            messages = verdict_messages(f"plant/{LINE}/{name}/verdict", part_id=part, lot="bench",
                                        verdict="NG" if grade == "ng" else "OK", grade=grade, class_name=grade,
                                        scores={"cls": score}, versions={"cls": "1"})
            t0 = time.perf_counter()
            inspection_id = store.add_inspection(
                source=f"line:{part}", image_sha256=secrets.token_hex(32), width=200, height=200, models=models,
                results=[{"model": "cls", "status": "ok", "class_name": grade, "score": score}], grade=grade,
                class_name=grade, score=score, view_token=secrets.token_urlsafe(18), part_id=part, lot="bench",
                verdict="NG" if grade == "ng" else "OK", messages=messages)
            insert_s.append(time.perf_counter() - t0)
            if number % DECISION_EVERY == DECISION_EVERY - 1:
                t0 = time.perf_counter()
                store.add_decision(inspection_id, decision="accept", operator="bench", system_grade=grade,
                                   final_grade=grade, thresholds={"cls": 0.9})
                decision_s.append(time.perf_counter() - t0)
        end, cpu = time.monotonic(), time.process_time() - cpu0
        store.close()
        results.put({"station": name, "start": start, "end": end, "cpu_s": cpu, "insert_s": insert_s,
                     "decision_s": decision_s})
    except BaseException as error:  # the parent reports it; a station that dies must not hang the barrier
        with contextlib.suppress(Exception):
            barrier.abort()
        results.put({"station": name, "error": f"{type(error).__name__}: {error}"})


# ---------------------------------------------------------------------------------------------- one run

def percentile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return 1000.0 * ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def count_rows(url: str, stations: list[str], inspections: int) -> dict[str, Any]:
    """Every station's rows exactly once, and the audit trail intact."""
    from defect_plugins.station.audit import verify
    from defect_plugins.station.store import Store

    store = Store(url, line=LINE, station="check")
    try:
        def work(conn: Any) -> dict[str, Any]:  # noqa: ANN401
            one = lambda sql: int(conn.exec_driver_sql(sql).scalar())  # noqa: E731
            per_station = {row[0]: int(row[1]) for row in conn.exec_driver_sql(
                "SELECT station, COUNT(*) FROM inspections GROUP BY station")}
            return {"inspections": one("SELECT COUNT(*) FROM inspections"),
                    "inspection_keys": one("SELECT COUNT(DISTINCT write_key) FROM inspections"),
                    "outbox": one("SELECT COUNT(*) FROM outbox"),
                    "outbox_inspections": one("SELECT COUNT(DISTINCT inspection_id) FROM outbox"),
                    "decisions": one("SELECT COUNT(*) FROM decisions"),
                    "decision_keys": one("SELECT COUNT(DISTINCT write_key) FROM decisions"),
                    "per_station": per_station}
        found = store.read("counting", work)
        audit = verify(store)
    finally:
        store.close()
    total, decisions = len(stations) * inspections, len(stations) * (inspections // DECISION_EVERY)
    found["audit_entries"], found["audit_ok"] = audit.entries, audit.ok
    found["ok"] = (found["inspections"] == found["inspection_keys"] == found["outbox"] == found["outbox_inspections"]
                   == total and found["decisions"] == found["decision_keys"] == decisions
                   and found["per_station"] == {name: inspections for name in stations}
                   and audit.ok and audit.entries == decisions)
    return found


def run_variant(variant: str, inspections: int, server: Postgres | None, folder: Path,
                stations: int) -> dict[str, Any]:
    from defect_plugins.station.store import Store

    kind, count = variant.split("_")
    names = [f"station{k + 1}" for k in range(stations if count != "1" else 1)]
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'{variant}-{uuid.uuid4().hex[:8]}.sqlite'}"
        postmaster = None
    else:
        assert server is not None
        url, postmaster = server.url(server.new_database()), server.postmaster_pid()
    Store(url, line=LINE, station="setup").close()  # the schema, once, before the stations open it
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(names) + 1), context.Queue()  # the stations and this process
    processes = [context.Process(target=station, args=(url, name, inspections, barrier, results)) for name in names]
    for process in processes:
        process.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a station that failed: its error comes below
        barrier.wait(timeout=180)
    server_before, started = server_cpu_seconds(postmaster), time.monotonic()
    rows = [results.get(timeout=3600) for _ in processes]
    server_after, window = server_cpu_seconds(postmaster), time.monotonic() - started
    for process in processes:
        process.join(timeout=60)
    errors = [f"{row['station']}: {row['error']}" for row in rows if "error" in row]
    if errors:
        raise RuntimeError(f"{variant}: " + "; ".join(errors))
    wall = max(row["end"] for row in rows) - min(row["start"] for row in rows)
    inserts = [s for row in rows for s in row["insert_s"]]
    decisions = [s for row in rows for s in row["decision_s"]]
    figures = {"stations": len(names), "wall_s": wall, "records_per_s": len(inserts) / wall,
               "insert_p50_ms": percentile_ms(inserts, 50), "insert_p99_ms": percentile_ms(inserts, 99),
               "decision_p50_ms": percentile_ms(decisions, 50),
               "station_cores": sum(row["cpu_s"] for row in rows) / wall,
               "server_cores": None if server_before is None or server_after is None
               else max(0.0, server_after - server_before) / window}  # /proc counts 10 ms ticks: short runs read coarse
    figures["rows"] = count_rows(url, names, inspections)
    return figures


# ---------------------------------------------------------------------------------------------- the run

def hardware() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cpu_count": os.cpu_count(), "machine": platform.machine(), "system": platform.platform()}


def versions() -> dict[str, str]:
    import sqlite3

    found = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for package in ("defect_plugins", "sqlalchemy", "psycopg"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure(args: argparse.Namespace, command: str) -> dict[str, Any]:
    variants = [v for v in VARIANTS if v in args.variants]
    figures: dict[str, Any] = {"command": command, "hardware": hardware(), "versions": versions(),
                               "inspections_per_station": args.inspections, "stations": args.stations,
                               "decision_every": DECISION_EVERY, "rounds": args.rounds,
                               "sqlite_synchronous": "FULL (set by the station's engine at every write)",
                               "runs": {v: [] for v in variants}}
    base = Path(tempfile.mkdtemp(prefix="bench-plant-store-", dir=args.folder))
    base.chmod(0o755)  # under root the server runs as nobody, in a folder inside this one
    server = None
    try:
        if any(v.startswith("postgres") for v in variants):
            bin_dir = find_postgres_bin()
            if bin_dir is None:
                raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
                                 "/usr/lib/postgresql/*/bin")
            (base / "postgres").mkdir()
            server = Postgres(bin_dir, base / "postgres", fsync=args.fsync == "on").start()
            figures["postgres_settings"] = server.settings()
        (base / "sqlite").mkdir()
        for round_index in range(args.rounds):
            order = variants[round_index % len(variants):] + variants[:round_index % len(variants)]
            for variant in order:
                row = run_variant(variant, args.inspections, server, base / "sqlite", args.stations)
                row["round"] = round_index + 1
                figures["runs"][variant].append(row)
                print(f"round {round_index + 1} {variant}: {row['records_per_s']:.1f} records/s, insert p50 "
                      f"{row['insert_p50_ms']:.2f} ms p99 {row['insert_p99_ms']:.2f} ms, rows "
                      f"{'ok' if row['rows']['ok'] else 'WRONG'}", flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    keys = ("records_per_s", "insert_p50_ms", "insert_p99_ms", "decision_p50_ms", "station_cores", "server_cores")
    figures["medians"] = {v: {key: median([run[key] for run in runs]) for key in keys} | {
        "stations": runs[0]["stations"], "rows_ok": all(run["rows"]["ok"] for run in runs)}
        for v, runs in figures["runs"].items()}
    return figures


def report(figures: dict[str, Any]) -> str:
    def cell(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    out = [f"{figures['hardware']['cpu']}, {figures['hardware']['cpu_count']} cores; "
           + ", ".join(f"{k} {v}" for k, v in figures["versions"].items())]
    if "postgres_settings" in figures:
        out.append("PostgreSQL: " + ", ".join(f"{k}={v}" for k, v in figures["postgres_settings"].items()))
    out.append(f"{figures['inspections_per_station']} inspections per station, a decision every "
               f"{figures['decision_every']}th; medians of {figures['rounds']} rounds")
    out.append(f"{'variant':<12} {'stations':>8} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'dec p50':>8} "
               f"{'stn cores':>9} {'db cores':>8}  rows")
    for variant, row in figures["medians"].items():
        out.append(f"{variant:<12} {row['stations']:>8} {cell(row['records_per_s'], 1):>10} "
                   f"{cell(row['insert_p50_ms']):>8} {cell(row['insert_p99_ms']):>8} {cell(row['decision_p50_ms']):>8} "
                   f"{cell(row['station_cores']):>9} {cell(row['server_cores']):>8}  "
                   f"{'ok' if row['rows_ok'] else 'WRONG'}")
    medians = figures["medians"]
    if "postgres_4" in medians and "sqlite_1" in medians and medians["sqlite_1"]["records_per_s"]:
        ratio = medians["postgres_4"]["records_per_s"] / medians["sqlite_1"]["records_per_s"]
        out.append(f"PostgreSQL from {medians['postgres_4']['stations']} stations / SQLite from 1: {ratio:.2f}x")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inspections", type=int, default=500, help="inspections per station and run (500)")
    parser.add_argument("--stations", type=int, default=4, help="stations of the *_4 variants (4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of alternating variants; medians (3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), type=lambda text: text.split(","),
                        help=f"which variants, comma-separated (default {','.join(VARIANTS)})")
    parser.add_argument("--fsync", choices=("on", "off"), default="on",
                        help="the PostgreSQL server's fsync (default on, the server's default)")
    parser.add_argument("--folder", type=Path,
                        help="where both databases live (default: the temporary folder; under root it must be "
                             "reachable by the user nobody)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or args.inspections < DECISION_EVERY or args.stations < 2 or args.rounds < 1:
        parser.error(f"need --variants from {','.join(VARIANTS)}, --inspections >= {DECISION_EVERY}, "
                     f"--stations >= 2, --rounds >= 1")
    command = " ".join(shlex.quote(part) for part in ["python", "experiments/station/bench_plant_store.py",
                                                      *(sys.argv[1:] if argv is None else argv)])
    figures = measure(args, command)
    print(report(figures))
    if args.json:
        from defect_plugins.fileio import atomic_write_json

        atomic_write_json(args.json, figures, indent=2)
    return 0 if all(row["rows_ok"] for row in figures["medians"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
