"""Local accounts: scrypt hashes, name and password rules, logins, sessions, the throttle, and their audit entries."""
from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
import time

import pytest

from defect_plugins.station.accounts import (
    DEFAULT_COST,
    AccountError,
    Accounts,
    LoginRefused,
    LoginThrottle,
    ScryptCost,
    hash_password,
    parse_hash,
    verify_password,
)
from defect_plugins.station.audit import entries, verify
from defect_plugins.station.store import Store

FAST = ScryptCost(n=2 ** 14, r=8, p=1)  # a cheaper setting, for tests that are not about the hash's cost


@pytest.fixture
def accounts(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    yield Accounts(store, cost=FAST)
    store.close()


@pytest.fixture
def any_accounts(station_db):
    """Accounts on an SQLite file, then on a PostgreSQL database (tests/fixtures/postgres.py)."""
    store = Store(station_db)
    yield Accounts(store, cost=FAST)
    store.close()


def test_passwords_are_salted_scrypt_in_a_self_describing_format():
    # OWASP Password Storage Cheat Sheet: scrypt N=2^17 r=8 p=1, or one of its equivalents
    assert (DEFAULT_COST.n, DEFAULT_COST.r, DEFAULT_COST.p) in {(2 ** 17, 8, 1), (2 ** 16, 8, 2), (2 ** 15, 8, 3),
                                                                (2 ** 14, 8, 5), (2 ** 13, 8, 10)}
    stored = hash_password("correct horse", FAST)
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert base64.b64decode(digest) == hashlib.scrypt(b"correct horse", salt=base64.b64decode(salt), n=16384, r=8,
                                                      p=1, dklen=32)
    assert hash_password("correct horse", FAST) != stored  # a new salt each time
    assert verify_password("correct horse", stored) and not verify_password("correct horsE", stored)
    for broken in ("", "bcrypt$1$2$3$4$5", stored.replace("$16384$", "$16385$"), stored.replace("$16384$", "$2$0"),
                   "scrypt$4194304$8$1$" + stored.split("$", 4)[4], stored[:-8]):
        assert parse_hash(broken) is None or not verify_password("correct horse", broken), broken


def test_names_roles_and_passwords_are_checked_and_duplicates_refused(any_accounts):
    accounts = any_accounts
    ana = accounts.add_user("Ana", "engineer", "correct horse")
    assert (ana.name, ana.role, ana.disabled) == ("Ana", "engineer", False)
    refused = [
        ("", "operator", "long enough", "1 to 100 characters"),
        ("x" * 101, "operator", "long enough", "1 to 100 characters"),
        ("Eve\x1b[2J", "operator", "long enough", r"U\+001B"),
        ("Eve\u200b", "operator", "long enough", r"U\+200B"),  # zero-width: two names that read alike
        (" Eve", "operator", "long enough", "spaces"),
        ("Station", "operator", "long enough", "reserved"),
        ("Eve", "admin", "long enough", "operator, engineer"),
        ("Eve", "operator", "short", "at least 8"),
        ("Eve", "operator", "x" * 1025, "at most 1024"),
        ("Everetta", "operator", "EVERETTA", "must not be the user name"),
        ("ana", "operator", "long enough", "user 'ana' already exists as 'Ana'"),
        ("Ana", "operator", "long enough", "user 'Ana' already exists"),
    ]
    for name, role, password, message in refused:
        with pytest.raises(AccountError, match=message):
            accounts.add_user(name, role, password)
    ben = accounts.add_user("Be\u0301n", "operator", "another one")  # stored composed (NFC)
    assert ben.name == "Bén" and [u.name for u in accounts.users()] == ["Ana", "Bén"]
    assert accounts.has_engineer()


def test_authenticate_takes_as_long_for_unknown_names_and_refuses_disabled_users(accounts):
    accounts.add_user("Ana", "operator", "correct horse")
    assert accounts.authenticate("Ana", "correct horse").name == "Ana"
    assert accounts.authenticate("Ana", "wrong horse") is None
    timings = {}
    for name in ("Ana", "Nobody"):
        started = time.perf_counter()
        assert accounts.authenticate(name, "wrong horse") is None
        timings[name] = time.perf_counter() - started
    assert timings["Nobody"] > 0.3 * timings["Ana"], timings  # a hash for an unknown name too
    accounts.disable("Ana")
    assert accounts.authenticate("Ana", "correct horse") is None
    with pytest.raises(AccountError, match="no user 'Zed'"):
        accounts.disable("Zed")
    assert not accounts.enable("Ana").disabled  # back, with the password she had
    assert accounts.authenticate("Ana", "correct horse").name == "Ana"
    accounts.disable("Ana")
    assert not accounts.has_engineer()


def test_sessions_keep_only_the_tokens_hash_and_end_at_expiry_logout_disable_and_new_password(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    accounts = Accounts(store, cost=FAST, secret=b"k" * 32)
    accounts.add_user("Ana", "engineer", "correct horse")
    token, session = accounts.login("Ana", "correct horse", client="10.0.0.7")
    assert len(token) >= 43 and session.user.role == "engineer"
    assert session.csrf_token == hmac.new(b"k" * 32, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()
    assert Accounts(store, secret=b"other" * 8).session(token).csrf_token != session.csrf_token
    with sqlite3.connect(store.path) as conn:
        stored = conn.execute("SELECT token_sha256 FROM sessions").fetchall()
        dump = "\n".join(conn.iterdump())
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)] and token not in dump
    assert accounts.session(token) == session
    assert accounts.session("guessed") is None and accounts.session("") is None

    assert accounts.logout(token, client="10.0.0.7") and accounts.session(token) is None
    assert not accounts.logout(token)

    token, _ = accounts.login("Ana", "correct horse")
    accounts.set_password("Ana", "battery staple")
    assert accounts.session(token) is None and accounts.authenticate("Ana", "correct horse") is None
    token, _ = accounts.login("Ana", "battery staple")
    accounts.disable("Ana")
    assert accounts.session(token) is None

    short = Accounts(store, cost=FAST, session_hours=1 / 3600)
    short.add_user("Ben", "operator", "correct horse")
    token, _ = short.login("Ben", "correct horse")
    assert short.session(token) is not None
    time.sleep(1.2)
    assert short.session(token) is None  # the shift is over
    with pytest.raises(AccountError, match="session length"):
        Accounts(store, session_hours=0)
    store.close()


def test_failed_logins_are_generic_throttled_and_audited(any_accounts):
    accounts = any_accounts
    accounts.add_user("Ana", "operator", "correct horse")
    for name in ("Ana", "Nobody", "bad\x00name"):
        with pytest.raises(LoginRefused) as refused:
            accounts.login(name, "wrong horse", client="10.0.0.9")
        assert refused.value.status == 401 and refused.value.message == (
            "wrong user name or password (or the account is disabled)")
    for _ in range(4):  # five failures for Ana in all
        with pytest.raises(LoginRefused):
            accounts.login("Ana", "wrong horse")
    with pytest.raises(LoginRefused) as refused:
        accounts.login("Ana", "correct horse")  # the right password, but the name is locked for a minute
    assert refused.value.status == 429 and 0 < refused.value.retry_after <= 60
    assert "try again in" in refused.value.message
    failed = [(e["actor"], e["detail"]) for e in reversed(entries(accounts.store)) if e["action"] == "login_failed"]
    assert failed[:3] == [("Ana", {"client": "10.0.0.9", "reason": "wrong password"}),
                          ("Nobody", {"client": "10.0.0.9", "reason": "unknown user name"}),
                          ("?", {"client": "10.0.0.9", "reason": "unknown user name", "name": "bad\x00name"})]
    assert failed[3:] == [("Ana", {"client": "", "reason": "wrong password"})] * 4  # the refused 6th is not


def test_the_throttle_locks_a_name_for_a_while_then_forgets():
    now = [1000.0]
    throttle = LoginThrottle(limit=5, window_s=300, lockout_s=60, clock=lambda: now[0], max_names=3)
    for _ in range(4):
        throttle.failed("Ana")
        now[0] += 100  # spread over more than the window: never five within it
    assert throttle.retry_after("Ana") == 0
    for _ in range(5):
        throttle.failed("ana")  # the same name, whatever the case
    assert throttle.retry_after("ANA") == 60 and throttle.retry_after("Ben") == 0
    now[0] += 61
    assert throttle.retry_after("Ana") == 0
    for name in ("a", "b", "c", "d", "e"):  # names sprayed by a guesser: memory stays bounded
        throttle.failed(name)
    assert len(throttle._failures) <= 3


def test_every_account_change_and_login_is_in_the_audit_trail(any_accounts):
    accounts = any_accounts
    accounts.add_user("Ana", "engineer", "correct horse", actor="cli")
    accounts.add_user("Ben", "operator", "correct horse", actor="Ana")
    token, _ = accounts.login("Ben", "correct horse", client="10.0.0.8")
    accounts.logout(token, client="10.0.0.8")
    accounts.set_password("Ben", "battery staple", actor="Ana")
    accounts.disable("Ben", actor="Ana")
    trail = [(e["actor"], e["action"], e["detail"]) for e in reversed(entries(accounts.store))]
    assert [t[:2] for t in trail] == [("cli", "user_added"), ("Ana", "user_added"), ("Ben", "login"),
                                      ("Ben", "logout"), ("Ana", "password_set"), ("Ana", "user_disabled")]
    assert trail[1][2] == {"user": "Ben", "role": "operator"} and trail[2][2]["client"] == "10.0.0.8"
    assert "correct horse" not in str(trail) and verify(accounts.store).ok


def test_a_weaker_stored_hash_is_upgraded_at_the_next_login(tmp_path):
    store = Store(tmp_path / "station.sqlite")
    Accounts(store, cost=FAST).add_user("Ana", "operator", "correct horse")
    strong = Accounts(store)  # today's default cost
    assert strong.authenticate("Ana", "correct horse") is not None
    with sqlite3.connect(store.path) as conn:
        stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    assert parse_hash(stored)[0] == DEFAULT_COST and verify_password("correct horse", stored)
    store.close()


def test_a_plcs_login_has_the_web_logins_throttle_and_audit_but_no_session(accounts):
    accounts.add_user("plc", "operator", "plc-secret-1")
    assert accounts.verify_login("plc", "plc-secret-1", client="opcua").name == "plc"
    for _ in range(5):
        with pytest.raises(LoginRefused) as refused:
            accounts.verify_login("plc", "guess", client="opcua")
        assert refused.value.status == 401
    with pytest.raises(LoginRefused) as refused:  # locked: even the right password waits
        accounts.verify_login("plc", "plc-secret-1", client="opcua")
    assert refused.value.status == 429
    with sqlite3.connect(accounts.store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    actions = [(e["action"], e["detail"].get("client")) for e in entries(accounts.store, limit=20)]
    assert ("login", "opcua") in actions and actions.count(("login_failed", "opcua")) == 5
