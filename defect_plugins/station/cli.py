"""``defect-station``: serve the operator station's page for exported models.

    defect-station --model cls.xml --model seg.xml --model ad.xml --rules rules.yaml \\
        --watch DIR --db station.sqlite --port 8080 [--host 127.0.0.1]
    defect-station --bundle BUNDLE [--model more.xml ...]     # a model bundle of defect-fit
    defect-station users add NAME --role engineer --db station.sqlite   # accounts (see .admin)
    defect-station audit verify --db station.sqlite                     # the audit trail (see .admin)
    defect-station plant --db postgresql://...                          # every line's records (see .plant)

A ``--model`` may be a bundle (its folder, ``bundle.json`` or archive; ``--bundle`` is a synonym):
its model is judged with the bundle's calibrated threshold(s). One rule file grades every model:
``--rules`` when given, else the rule file of the first bundle given (in ``--model`` / ``--bundle``
order) that has one, else the packaged default; the station prints which at start.

Logins are on by default: operators and engineers log in on the page with the accounts of
``defect-station users add`` (:mod:`.accounts`, :mod:`.admin`); the station refuses to start
without an engineer account. ``--no-login`` (a single-user bench) serves without logins: the
operator's name is typed on the page and anyone who reaches it acts as any operator, so the station
warns at start and the page shows a banner. At start the station writes ``rules_loaded`` and
``model_loaded`` entries in the audit trail (:mod:`.audit`). Binds to 127.0.0.1 unless ``--host``
says otherwise; bound to another address (``--host 0.0.0.0``) it warns at start: passwords and
session cookies cross the network in clear unless a TLS proxy is in front (and with
``--no-login``, anyone who can reach the port acts as any operator). It answers only to its own
host names (``--allow-host NAME`` adds one) and takes writes only from its own page
(:mod:`.guard`). ``--port 0`` takes a free port; the first line printed is always
``defect-station: serving http://HOST:PORT/``. ``--check`` tests the install instead of serving
(:mod:`.check`; a temporary database, no logins).
Runs in the runtime-only install (OpenVINO, numpy, OpenCV, PyYAML, Starlette, uvicorn).
"""
from __future__ import annotations

import argparse
import hashlib
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from defect_plugins.deploy.runtime import PRECISION_HINTS

ADMIN_COMMANDS = ("users", "audit")  # first words that run .admin instead of serving


def _db_value(text: str) -> Path | str:
    """``--db``: a database URL as given, else a file path (the store module is imported later, on a start)."""
    return text if "://" in text else Path(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defect-station", description=__doc__.split("\n")[0],
                                     epilog="accounts and the audit trail: defect-station users --help, "
                                            "defect-station audit --help; the plant page: "
                                            "defect-station plant --help; the shadow report: "
                                            "defect-station models compare --help")
    parser.add_argument("--model", dest="models", action="append", type=Path, default=[],
                        help="model.xml exported by defect-export or anomalib, or a model bundle of defect-fit "
                             "(repeat for several models)")
    parser.add_argument("--bundle", dest="models", action="append", type=Path,
                        help="a model bundle of defect-fit (folder, bundle.json or .tar/.tar.gz); the same as --model")
    parser.add_argument("--bundles", type=Path, metavar="DIR",
                        help="a folder of bundles (and bare IRs) an engineer may shadow, activate and roll back to "
                             "from the page or /api/models; each --model is a slot")
    parser.add_argument("--rules", type=Path,
                        help="grading rule file (YAML; default: the first bundle's, else the packaged "
                             "default_rules.yaml)")
    parser.add_argument("--watch", type=Path, help="folder the camera writes images into (newest image on request)")
    parser.add_argument("--db", type=_db_value, default=Path("station.sqlite"),
                        help="SQLite file (default station.sqlite), or a plant's PostgreSQL database shared by "
                             "several stations: postgresql://user@host/name")
    parser.add_argument("--station", default=socket.gethostname(), metavar="NAME",
                        help="this station's name, tagged on every record it writes (default: the host name)")
    parser.add_argument("--db-retry-s", type=float, default=30.0, metavar="S",
                        help="how long a write waits for a database server that went away (restart, network) "
                             "before the verdict is an ERROR (default 30)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this PC only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another host name (or address) clients use to reach the station; repeatable. "
                             "Loopback names, the bound address and, for 0.0.0.0, this PC's names are allowed")
    parser.add_argument("--precision", choices=PRECISION_HINTS, default="f32",
                        help="OpenVINO INFERENCE_PRECISION_HINT (default f32: anomaly scores feed thresholds)")
    parser.add_argument("--min-area", type=int, default=4, help="ignore regions smaller than this (pixels)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0,
                        help="largest upload or watched file accepted (MB, default 20)")
    parser.add_argument("--max-pixels", type=float, default=50.0,
                        help="largest image accepted, in megapixels (default 50)")
    parser.add_argument("--drift-config", type=Path, metavar="FILE",
                        help="the drift watch's window and limits: the [drift] section of a TOML or JSON file "
                             "(default: window 200, at least 50 parts, PSI 0.1 warn / 0.25 drift)")
    parser.add_argument("--cache-mb", type=float, default=256.0,
                        help="memory for recent results the threshold slider works on (MB, default 256)")
    parser.add_argument("--no-login", action="store_true",
                        help="serve without logins (a single-user bench): the operator's name is typed on the page "
                             "and anyone who reaches it acts as any operator")
    parser.add_argument("--session-hours", type=float, default=12.0,
                        help="how long a login lasts, in hours (default 12: one shift)")
    parser.add_argument("--check", action="store_true",
                        help="check this install instead of serving: page, a synthetic image through every model, "
                             "the slider, no torch imported (temporary database, free loopback port); exit 0 if fine")
    from .line.links import add_line_arguments

    add_line_arguments(parser)
    return parser


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), so the printed URL is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _audit_start(store: Any, station: Any, rules: Any, rules_origin: str, *, logins: bool, url: str) -> None:
    """The audit entries of a start: how the station serves, its rules and each model (actor ``station``)."""
    from .audit import append

    source = Path(rules.source)
    rules_sha = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else None
    with store.transaction() as conn:
        append(conn, "station", "station_started", {"url": url, "logins": logins})
        append(conn, "station", "rules_loaded", {"rules": rules.source, "origin": rules_origin, "sha256": rules_sha,
                                                 "grades": list(rules.grades)})
        for model in station.models:
            info = model.describe()
            append(conn, "station", "model_loaded", {key: info[key] for key in (
                "index", "name", "family", "path", "version", "weights", "precision", "bundle")})


def _line_login(accounts: Any) -> Callable[[str, str], bool]:  # noqa: ANN401  (accounts.Accounts)
    """A PLC's OPC UA login: the web login's checks (the failed-login throttle, the audit trail), no session."""
    from .accounts import LoginRefused

    def authenticate(name: str, password: str) -> bool:
        try:
            accounts.verify_login(name, password, client="opcua")
        except LoginRefused:
            return False
        return True

    return authenticate


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ADMIN_COMMANDS:  # defect-station users ... / audit ...
        from .admin import main as admin_main

        return admin_main(argv)
    if argv and argv[0] == "plant":  # defect-station plant --db ...: every line's records, read-only
        from .plant.cli import main as plant_main

        return plant_main(argv[1:])
    if argv and argv[0] == "models":  # defect-station models compare --db DB --slot N
        from .comparison import main as models_main

        return models_main(argv)
    args = build_parser().parse_args(argv)
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):  # kill -USR1 PID: a station that stops answering prints every thread's stack
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (OSError, ValueError, AttributeError):  # stderr without a file descriptor (embedded, captured)
            pass
    import uvicorn

    from .app import create_app
    from defect_plugins.deploy.grading.rules import RuleError, load_rules

    from .accounts import Accounts
    from .engine import Station, StationError
    from .line.links import LineLinks
    from .line.mqtt import MqttConfigError
    from .line.opcua import OpcUaError
    from .guard import allowed_hosts, is_loopback
    from .models import station_rules
    from .store import Store, StoreError

    if not args.models:
        print("defect-station: error: give at least one --model (or --bundle)", file=sys.stderr)
        return 2
    if not 1 <= args.port + 1 <= 65536:
        print(f"defect-station: error: --port must be 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        print("defect-station: error: --max-upload-mb and --max-pixels must be positive", file=sys.stderr)
        return 2
    if not 0 < args.session_hours <= 744:
        print(f"defect-station: error: --session-hours must be above 0 and at most 744, got {args.session_hours}",
              file=sys.stderr)
        return 2
    from defect_plugins.imaging.decode import DEFAULT_BUDGET, default_decode_bytes

    # decodes in flight share one budget: room for two of the largest image --max-pixels admits (1 GB at least)
    DEFAULT_BUDGET.configure(max_bytes=max(1_000_000_000, 2 * default_decode_bytes(int(args.max_pixels * 1e6))))
    if args.check:  # a temporary database and a free loopback port: nothing of the line's is touched
        scratch = tempfile.TemporaryDirectory(prefix="defect-station-check-")
        args.db, args.host, args.port, args.no_login = Path(scratch.name) / "check.sqlite", "127.0.0.1", 0, True
    logins = not args.no_login
    try:
        rules_path, rules_origin = station_rules(args.rules, args.models)
        rules = load_rules(rules_path)
        store = Store(args.db, line=getattr(args, "line", None), station=args.station, retry_s=args.db_retry_s)
        station = Station(args.models, rules, store, watch=args.watch, precision=args.precision,
                          min_area=args.min_area, max_pixels=int(args.max_pixels * 1e6),
                          max_file_bytes=int(args.max_upload_mb * 1e6), cache_mb=args.cache_mb,
                          strict_rules=args.rules is not None, workers=args.line_workers, bundles=args.bundles,
                          drift_config=args.drift_config)
        accounts = Accounts(store, session_hours=args.session_hours) if logins else None
        if accounts is not None and not accounts.has_engineer():
            store.close()
            print(f"defect-station: error: {args.db} has no engineer account and logins are on: create one with "
                  f"`defect-station users add NAME --role engineer --db {args.db}` (or start with --no-login, "
                  f"a single-user bench without logins)", file=sys.stderr)
            return 1
        if args.check:
            args.opcua_port = args.mqtt = args.watch_pattern = None  # the check touches nothing of the line's
        if args.opcua_port is not None and accounts is None and not args.opcua_insecure:
            raise ValueError("--opcua-port logs PLCs in with the station's accounts: start without --no-login, or "
                             "add --opcua-insecure (commissioning only: no encryption, no login)")
        line = LineLinks(station, args, authenticate=_line_login(accounts) if accounts is not None else None)
    except (RuleError, StoreError, FileNotFoundError, ValueError, MqttConfigError) as error:
        print(f"defect-station: error: {error}", file=sys.stderr)
        return 1
    except StationError as error:
        print(f"defect-station: error: {error.message}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # OpenVINO cannot read or compile a model
        print(f"defect-station: error: cannot load a model: {error}", file=sys.stderr)
        return 1
    try:
        sock = _bind(args.host, args.port)
    except OSError as error:
        print(f"defect-station: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    try:
        _audit_start(store, station, rules, rules_origin, logins=logins, url=f"http://{shown}:{port}/")
    except (StoreError, OSError) as error:
        sock.close()
        store.close()
        print(f"defect-station: error: cannot write the start into the audit trail of {args.db}: {error}",
              file=sys.stderr)
        return 1
    try:  # the line's links are up before the station says it serves (a PLC may call at once)
        line_lines = line.start()
    except (OpcUaError, OSError) as error:
        line.stop()
        sock.close()
        store.close()
        print(f"defect-station: error: {error}", file=sys.stderr)
        return 1
    print(f"defect-station: {'checking' if args.check else 'serving'} http://{shown}:{port}/", flush=True)
    for model in station.models:
        info = model.describe()
        bundle = info["bundle"]
        from_bundle = (f", bundle {bundle['name']} of {bundle['created']} (thresholds {bundle['thresholds']})"
                       if bundle else "")
        print(f"  model {info['name']}: {info['family']}, {info['weights']} weights at {info['precision']}, "
              f"version {info['version']}{from_bundle}", flush=True)
    print(f"  rules: {rules.source} ({rules_origin})", flush=True)
    for note in station.rule_notes:
        print(f"  note: {note}", flush=True)
    hosts = allowed_hosts(host, args.allow_host)
    if not logins and not args.check:
        print("defect-station: WARNING: --no-login: anyone who reaches this page acts as any operator (decisions "
              "carry the name typed on the page, anyone may move thresholds). For a single-user bench only; "
              "create accounts with `defect-station users add` and start without --no-login on a line.",
              file=sys.stderr, flush=True)
    if not is_loopback(host):
        exposure = (f"passwords and session cookies cross the network in clear unless a TLS proxy (https) is in "
                    f"front of port {port}" if logins else
                    f"with no logins (--no-login), anyone who can reach port {port} can inspect, record decisions "
                    f"under any operator name and read the whole history")
        print(f"defect-station: WARNING: listening on {host}, not only on this PC: {exposure}. Host names "
              f"answered: {', '.join(sorted(hosts))}", file=sys.stderr, flush=True)
    app = create_app(station, max_upload_bytes=int(args.max_upload_mb * 1e6), hosts=hosts, accounts=accounts,
                     line=line)
    for text in line_lines:
        print(text, flush=True, file=sys.stderr if text.startswith("WARNING") else sys.stdout)
    if args.check:
        from .check import run_check

        try:
            return run_check(app, sock, f"http://{shown}:{port}/")
        finally:
            store.close()
            scratch.cleanup()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        line.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
