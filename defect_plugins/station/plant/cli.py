"""``defect-station plant``: serve the plant page over a database the stations write to.

    defect-station plant --db postgresql://quality@db-host/plant --host 0.0.0.0 --port 8090
    defect-station plant --db station.sqlite                      # one station's file works too

Logins as on a station (the accounts in the same database; ``defect-station users add ... --db``), read-only
for every role; ``--no-login`` for a bench, with a warning. Runs in the runtime-only install.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="defect-station plant", description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="the stations' database: postgresql://... or an SQLite file")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this PC only)")
    parser.add_argument("--port", type=int, default=8090, help="port (default 8090; 0: any free port)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another host name the page is reached by (repeatable)")
    parser.add_argument("--no-login", action="store_true", help="serve without logins (a bench only)")
    parser.add_argument("--session-hours", type=float, default=12.0, help="how long a login lasts (default 12)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    import uvicorn

    from ..accounts import Accounts
    from ..cli import _bind
    from ..guard import allowed_hosts
    from ..store import Store, StoreError, db_value
    from .app import create_plant_app

    if not 0 <= args.port <= 65535:
        print(f"defect-station plant: error: --port must be 0 to 65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        store = Store(db_value(args.db), station="plant-page")
    except (StoreError, ValueError) as error:
        print(f"defect-station plant: error: {error}", file=sys.stderr)
        return 1
    accounts = None if args.no_login else Accounts(store, session_hours=args.session_hours)
    if accounts is not None and not accounts.users():
        store.close()
        print(f"defect-station plant: error: {store.name} has no accounts and logins are on: create one with "
              f"`defect-station users add NAME --role operator --db {args.db}` (or --no-login on a bench)",
              file=sys.stderr)
        return 1
    try:
        sock = _bind(args.host, args.port)
    except OSError as error:
        store.close()
        print(f"defect-station plant: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"defect-station plant: serving http://{shown}:{port}/ over {store.name}", flush=True)
    if accounts is None:
        print("defect-station plant: WARNING: --no-login: anyone who reaches this page reads every line's records",
              file=sys.stderr, flush=True)
    app = create_plant_app(store, accounts=accounts, hosts=allowed_hosts(host, args.allow_host))
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    finally:
        store.close()
    return 0
