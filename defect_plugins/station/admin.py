"""``defect-station users ...`` and ``defect-station audit ...``: accounts and the audit trail, on the station PC.

    defect-station users add NAME --role operator|engineer --db FILE [--password-stdin]
    defect-station users list --db FILE
    defect-station users disable NAME --db FILE
    defect-station users enable NAME --db FILE
    defect-station users set-password NAME --db FILE [--password-stdin]
    defect-station audit verify --db FILE        # exit 0: intact; exit 1: names the first bad entry
    defect-station audit export --db FILE --out audit.csv

``--db`` is the station's SQLite file, or the plant's PostgreSQL database (``postgresql://user@host/name``).

Passwords are asked twice on the terminal (not echoed); ``--password-stdin`` reads one line for
scripts (``printf '%s\\n' "$PW" | defect-station users add ...``), never from the command line,
where other users of the PC could read it in the process list. Account changes go into the audit
trail with the actor ``cli``. Every command but ``users add`` needs an existing database: a
mistyped ``--db`` must not report an empty, intact trail of a new file.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path

from .accounts import ROLES, AccountError, Accounts, check_password
from .audit import AuditError, export_csv, verify
from .store import Store, StoreError, db_value

COMMANDS = ("users", "audit")
PROG = "defect-station"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    groups = parser.add_subparsers(dest="group", required=True)

    def command(group: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
        sub = group.add_parser(name, help=text, description=text)
        sub.add_argument("--db", type=db_value, default=Path("station.sqlite"),
                         help="the station's SQLite file (default station.sqlite), or postgresql://user@host/name")
        return sub

    users = groups.add_parser("users", help="the station's accounts").add_subparsers(dest="action", required=True)
    add = command(users, "add", "add a user (the password is asked twice)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True,
                     help="operator: inspect, decide, history; engineer: also thresholds and configuration")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    command(users, "list", "list the users, their role and whether they are disabled")
    disable = command(users, "disable", "disable a user (kept in the records) and end their sessions")
    disable.add_argument("name")
    enable = command(users, "enable", "let a disabled user log in again (the password they had)")
    enable.add_argument("name")
    password = command(users, "set-password", "give a user a new password and end their sessions")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")

    audit = groups.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    command(audit, "verify", "check the hash chain; exit 1 naming the first bad entry")
    export = command(audit, "export", "write every audit entry, hashes included, to a CSV file")
    export.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    return parser


class CommandError(Exception):
    """A one-line error for the terminal."""


def read_password(name: str, from_stdin: bool) -> str:
    """The new password of ``name``: one stdin line, or asked twice on the terminal; checked."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise CommandError("--password-stdin: stdin gave no password line")
    else:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask the password on: give it on one line of stdin with "
                               "--password-stdin")
        password = getpass.getpass(f"password for {name}: ")
        check_password(password, name)  # say what is wrong before asking again
        if getpass.getpass(f"password for {name} (again): ") != password:
            raise CommandError(f"the two passwords for {name!r} differ; nothing changed")
    return check_password(password, name)


def run(args: argparse.Namespace) -> int:
    db: Path | str = args.db
    is_file = isinstance(db, Path)
    if is_file and not (args.group == "users" and args.action == "add") and not db.is_file():
        raise CommandError(f"{db}: no such database (give --db the station's SQLite file)")
    created = is_file and not db.exists()
    store = Store(db)
    try:
        accounts = Accounts(store)
        if args.group == "users":
            return _users(args, accounts, created)
        return _audit(args, store)
    finally:
        store.close()


def _users(args: argparse.Namespace, accounts: Accounts, created: bool) -> int:
    db = accounts.store.path
    if args.action == "add":
        password = read_password(args.name, args.password_stdin)
        user = accounts.add_user(args.name, args.role, password, actor="cli")
        print(f"user {user.name} added ({user.role}) to {db}{' (a new database)' if created else ''}")
    elif args.action == "list":
        users = accounts.users()
        if not users:
            print(f"no users in {db}: add one with `{PROG} users add NAME --role engineer --db {db}`")
        width = max([len(user.name) for user in users] + [4])
        for user in users:
            print(f"{user.name:<{width}}  {user.role:<8}  {'disabled' if user.disabled else 'active  '}  "
                  f"added {user.created_at}")
    elif args.action == "enable":
        accounts.enable(args.name, actor="cli")
        print(f"user {args.name} enabled in {db}")
    elif args.action == "disable":
        accounts.disable(args.name, actor="cli")
        print(f"user {args.name} disabled in {db}; their sessions ended")
    else:
        if accounts.user(args.name) is None:  # before asking for a password nobody will use
            raise CommandError(f"no user {args.name!r} in {db}")
        accounts.set_password(args.name, read_password(args.name, args.password_stdin), actor="cli")
        print(f"new password set for {args.name} in {db}; their sessions ended")
    return 0


def _audit(args: argparse.Namespace, store: Store) -> int:
    if args.action == "verify":
        report = verify(store)
        print(report.message)
        if report.ok and report.last_id is not None:
            print(f"newest entry {report.last_id}: hash {report.last_hash} (write it down: a later check that no "
                  f"longer finds it means entries were removed or changed)")
        return 0 if report.ok else 1
    count = export_csv(store, args.out)
    print(f"{count} audit entries written to {args.out}")
    return 0


def main(argv: Sequence[str]) -> int:
    """Run ``users ...`` / ``audit ...`` (``argv`` without the program name); the exit status."""
    args = build_parser().parse_args(list(argv))
    try:
        return run(args)
    except (CommandError, AccountError, AuditError, StoreError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing changed", file=sys.stderr)
        return 130
