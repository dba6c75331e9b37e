"""Local accounts of the station: users with a role, slow password hashes, logged-in sessions, a login throttle.

Roles: ``operator`` (inspect, decide, read the history) and ``engineer`` (also moves thresholds and
changes the configuration). Users are never deleted, only disabled: the audit trail and the
decisions keep naming them.

Passwords follow OWASP's Password Storage Cheat Sheet
(https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html): a memory-hard
hash, scrypt (``hashlib.scrypt``), with a 16-byte random salt per password and one of the cheat
sheet's equivalent scrypt settings, N=2^15, r=8, p=3 (32 MiB and about 0.45 s a hash on a
2-core line PC; the sheet's N=2^17, p=1 needs 128 MiB a login). Stored as
``scrypt$N$r$p$salt_b64$hash_b64``, so a later, stronger setting re-hashes each password at its
next login and old hashes keep working. Hashes are compared with ``hmac.compare_digest``. At most
:data:`CONCURRENT_HASHES` hashes run at once, so that a burst of logins cannot take the line PC's
memory.

An unknown name costs the same hash as a known one (a hash of a fixed dummy password), so the
answer time does not say which names exist; the web answer is the same generic message too.
After :data:`LoginThrottle` ``limit`` failures for one name within its window, that name is refused
for a while without checking the password: it slows guessing down to a few tries a minute.

Sessions: a random token (``secrets.token_urlsafe(32)``, 256 bits) goes to the browser as a cookie;
the database keeps only its SHA-256, so a copy of the file lets nobody log in. A session ends at
its expiry (one shift, 12 h by default), at logout, when its user is disabled or gets a new password.
Standard library, and SQLAlchemy for the queries.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import text

from .audit import append
from .store import Store, now, token_hash

ROLES = ("operator", "engineer")
MAX_NAME = 100
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # a longer one only costs hashing time
# Actors the station writes in the audit trail itself: no user may take these names
RESERVED_NAMES = ("station", "cli", "anonymous")
CONCURRENT_HASHES = 2
HASH_WAIT_S = 30.0


class AccountError(ValueError):
    """A refused account change (bad name or password, unknown or duplicate user); the message names it."""


class HashBusy(RuntimeError):
    """Too many password hashes waiting: the station answers 503 rather than queue logins without end."""


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's parameters: CPU/memory cost ``n`` (a power of 2), block size ``r``, parallelism ``p``."""

    n: int = 2 ** 15
    r: int = 8
    p: int = 3

    def work(self) -> int:
        return self.n * self.r * self.p


DEFAULT_COST = ScryptCost()
_LIMITS = ScryptCost(n=2 ** 20, r=32, p=16)  # what a stored hash may ask for: a tampered row cannot take all memory
_hashing = threading.BoundedSemaphore(CONCURRENT_HASHES)


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    # OpenSSL needs about 128 * r * (n + p) bytes; its default ceiling (32 MiB) is just below N=2^15, r=8
    maxmem = 128 * cost.r * (cost.n + cost.p + 2) + (1 << 20)
    if not _hashing.acquire(timeout=HASH_WAIT_S):
        raise HashBusy(f"the station is busy checking other passwords (more than {CONCURRENT_HASHES} at once "
                       f"for {HASH_WAIT_S:g} s); try again")
    try:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=maxmem,
                              dklen=32)
    finally:
        _hashing.release()


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    """``scrypt$N$r$p$salt_b64$hash_b64`` of ``password`` with a new 16-byte random salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost)
    return "$".join(["scrypt", str(cost.n), str(cost.r), str(cost.p), base64.b64encode(salt).decode("ascii"),
                     base64.b64encode(digest).decode("ascii")])


def parse_hash(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    """``(cost, salt, digest)`` of a stored hash; None when it is not one this module wrote (or out of bounds)."""
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part.isascii() and part.isdigit() for part in parts[1:4]):
        return None
    cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
    if not (2 <= cost.n <= _LIMITS.n and cost.n & (cost.n - 1) == 0 and 1 <= cost.r <= _LIMITS.r
            and 1 <= cost.p <= _LIMITS.p):
        return None
    try:
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    return (cost, salt, digest) if salt and len(digest) == 32 else None


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (compared in constant time); False for a malformed hash."""
    parsed = parse_hash(stored)
    if parsed is None or not isinstance(password, str):
        return False
    cost, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, cost), digest)


def check_name(name: Any) -> str:
    """A user name as stored (Unicode NFC), or :class:`AccountError` saying what is wrong with it."""
    if not isinstance(name, str):
        raise AccountError(f"a user name must be text, got {name!r}")
    name = unicodedata.normalize("NFC", name)  # 'é' typed two ways is one name
    if not 1 <= len(name) <= MAX_NAME:
        raise AccountError(f"user name {name[:20]!r}: must be 1 to {MAX_NAME} characters, got {len(name)}")
    bad = next((c for c in name if unicodedata.category(c)[0] == "C"), None)
    if bad is not None:  # control, format (bidi overrides, zero-width), unassigned: names must read as they are
        raise AccountError(f"user name {name!r}: control or invisible character U+{ord(bad):04X} is not allowed")
    if name != name.strip():
        raise AccountError(f"user name {name!r}: must not start or end with spaces")
    if name.casefold() in RESERVED_NAMES:
        raise AccountError(f"user name {name!r}: reserved for the station's own audit entries "
                           f"({', '.join(RESERVED_NAMES)})")
    return name


def check_password(password: Any, name: str = "") -> str:
    """``password`` if it may be set, else :class:`AccountError` (never echoing the password)."""
    if not isinstance(password, str):
        raise AccountError(f"the password of {name!r} must be text")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password of {name!r} is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password of {name!r} is too long: at most {MAX_PASSWORD} characters")
    if name and password.casefold() == name.casefold():
        raise AccountError(f"the password of {name!r} must not be the user name")
    return password


def _check_role(role: Any) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def _utc(moment: datetime) -> str:
    # one fixed format in UTC: expiry times compare as text in SQL too (local times would not across DST)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: str
    disabled: bool = False

    @property
    def is_engineer(self) -> bool:
        return self.role == "engineer"


@dataclass(frozen=True)
class Session:
    """A logged-in session: its user, its expiry (UTC, ISO 8601) and the CSRF token its writes must carry."""

    user: User
    expires_at: str
    csrf_token: str


class LoginThrottle:
    """After ``limit`` failed logins for one name within ``window_s``, refuse that name for ``lockout_s``.

    Keyed by the name as typed (case-folded), known or not, so the throttle says nothing about which
    names exist. In memory: a restart forgets it, which costs a guesser a restart of the station.
    """

    def __init__(self, *, limit: int = 5, window_s: float = 300.0, lockout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_names: int = 10_000) -> None:
        self.limit, self.window_s, self.lockout_s = int(limit), float(window_s), float(lockout_s)
        self.clock, self.max_names = clock, int(max_names)
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return unicodedata.normalize("NFC", str(name)).casefold()[:MAX_NAME + 1]

    def retry_after(self, name: str) -> float:
        """Seconds until ``name`` may try again; 0 when it may now."""
        with self._lock:
            return max(0.0, self._locked_until.get(self._key(name), 0.0) - self.clock())

    def failed(self, name: str) -> None:
        key, moment = self._key(name), self.clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if moment - t < self.window_s] + [moment]
            if len(recent) >= self.limit:
                self._locked_until[key] = moment + self.lockout_s
                recent = []
            self._failures[key] = recent
            if len(self._failures) > self.max_names:  # names sprayed by a guesser: forget the oldest
                self._prune(moment)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(self._key(name), None)

    def _prune(self, moment: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or moment - times[-1] >= self.window_s]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until <= moment]:
            del self._locked_until[key]
        while len(self._failures) > self.max_names:
            del self._failures[next(iter(self._failures))]


class LoginRefused(Exception):
    """A login that did not succeed: ``status`` 401 (wrong name or password) or 429 (throttled)."""

    def __init__(self, status: int, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


GENERIC_FAILURE = "wrong user name or password (or the account is disabled)"


class Accounts:
    """The users and sessions in ``store``; account changes and logins go into its audit trail.

    ``session_hours``: how long a login lasts (one shift). ``secret``: the key the CSRF tokens are
    derived with (random per process when not given).
    """

    def __init__(self, store: Store, *, session_hours: float = 12.0, secret: bytes | None = None,
                 cost: ScryptCost = DEFAULT_COST, throttle: LoginThrottle | None = None) -> None:
        if not 0 < session_hours <= 24 * 31:
            raise AccountError(f"session length must be above 0 and at most 744 hours, got {session_hours}")
        self.store = store
        self.session_hours = float(session_hours)
        # The CSRF token is derived, HMAC-SHA256(secret, session token), not stored: nothing more in the
        # database (a copy of the file gives neither cookies nor CSRF tokens) and no second lookup. The
        # secret lives in this process only; after a restart the page reads its new token from /api/me.
        self.secret = secret if secret is not None else secrets.token_bytes(32)
        self.cost = cost
        self.throttle = throttle or LoginThrottle()
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    # ------------------------------------------------------------------ users

    def add_user(self, name: str, role: str, password: str, *, actor: str = "cli") -> User:
        """Create an enabled user; :class:`AccountError` for a bad name, role or password, or a name taken."""
        name = check_name(name)
        role = _check_role(role)
        password_hash = hash_password(check_password(password, name), self.cost)  # before the write lock
        with self.store.transaction() as conn:
            # one name per person, whatever the case: 'ana' and 'Ana' would be two signatures of one operator
            taken = [row[0] for row in conn.execute(text("SELECT name FROM users"))
                     if row[0].casefold() == name.casefold()]
            if taken:
                raise AccountError(f"user {name!r} already exists{'' if taken[0] == name else f' as {taken[0]!r}'}"
                                   f" in {self.store.path}; use another name")
            created = now()
            conn.execute(text("INSERT INTO users (name, role, password_hash, created_at, disabled) "
                              "VALUES (:name, :role, :hash, :created, 0)"),
                         {"name": name, "role": role, "hash": password_hash, "created": created})
            append(conn, actor, "user_added", {"user": name, "role": role})
        return User(name, role, created)

    def users(self) -> list[User]:
        """Every user, enabled or not, by name."""
        rows = self.store.read("reading the users", lambda conn: conn.execute(
            text("SELECT name, role, created_at, disabled FROM users ORDER BY name")).all())
        return [User(row[0], row[1], row[2], bool(row[3])) for row in rows]

    def user(self, name: str) -> User | None:
        row = self.store.read("reading a user", lambda conn: conn.execute(
            text("SELECT name, role, created_at, disabled FROM users WHERE name = :name"), {"name": name}).first())
        return User(row[0], row[1], row[2], bool(row[3])) if row else None

    def has_engineer(self) -> bool:
        """Whether an enabled engineer exists (someone who can change the configuration)."""
        return self.store.read("reading the users", lambda conn: conn.execute(
            text("SELECT 1 FROM users WHERE role = 'engineer' AND disabled = 0")).first()) is not None

    def _existing(self, conn: Any, name: str) -> Any:
        row = conn.execute(text("SELECT name, role, disabled FROM users WHERE name = :name"), {"name": name}).first()
        if row is None:
            raise AccountError(f"no user {name!r} in {self.store.path}")
        return row

    def disable(self, name: str, *, actor: str = "cli") -> User:
        """Disable ``name`` and end its sessions; it stays in the records. Already disabled: no change."""
        with self.store.transaction() as conn:
            row = self._existing(conn, name)
            if not row.disabled:
                conn.execute(text("UPDATE users SET disabled = 1 WHERE name = :name"), {"name": name})
                conn.execute(text("DELETE FROM sessions WHERE user_name = :name"), {"name": name})
                append(conn, actor, "user_disabled", {"user": name, "role": row.role})
        return self.user(name)

    def enable(self, name: str, *, actor: str = "cli") -> User:
        """Let a disabled ``name`` log in again (with its password as it was). Already enabled: no change."""
        with self.store.transaction() as conn:
            row = self._existing(conn, name)
            if row.disabled:
                conn.execute(text("UPDATE users SET disabled = 0 WHERE name = :name"), {"name": name})
                append(conn, actor, "user_enabled", {"user": name, "role": row.role})
        return self.user(name)

    def set_password(self, name: str, password: str, *, actor: str = "cli") -> None:
        """Give ``name`` a new password; its sessions end (a stolen cookie dies with the old password)."""
        password_hash = hash_password(check_password(password, name), self.cost)
        with self.store.transaction() as conn:
            self._existing(conn, name)
            conn.execute(text("UPDATE users SET password_hash = :hash WHERE name = :name"),
                         {"hash": password_hash, "name": name})
            conn.execute(text("DELETE FROM sessions WHERE user_name = :name"), {"name": name})
            append(conn, actor, "password_set", {"user": name})

    # ------------------------------------------------------------------ logging in

    def _dummy_hash(self) -> str:
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = hash_password(secrets.token_urlsafe(16), self.cost)
            return self._dummy

    def _check(self, name: str, password: str) -> tuple[User | None, str]:
        """The user when ``password`` is theirs and they are enabled, and why not otherwise (for the audit)."""
        try:
            name = check_name(name)
        except AccountError:
            name = ""
        row = self.store.read("reading a user", lambda conn: conn.execute(
            text("SELECT name, role, created_at, disabled, password_hash FROM users WHERE name = :name"),
            {"name": name}).first()) if name else None
        # hash for unknown names too: the time taken does not tell which names exist
        matches = verify_password(password if isinstance(password, str) else "", row[4] if row else self._dummy_hash())
        if row is None:
            return None, "unknown user name"
        if not matches:
            return None, "wrong password"
        if row[3]:
            return None, "account disabled"
        if self._weaker(row[4]):
            self._rehash(row[0], password, row[4])
        return User(row[0], row[1], row[2], False), ""

    def _weaker(self, stored: str) -> bool:
        parsed = parse_hash(stored)
        return parsed is not None and parsed[0].work() < self.cost.work()

    def _rehash(self, name: str, password: str, old: str) -> None:
        # the stored setting is weaker than today's: hash again now that the password is at hand
        new = hash_password(password, self.cost)
        with self.store.transaction() as conn:
            conn.execute(text("UPDATE users SET password_hash = :new WHERE name = :name AND password_hash = :old"),
                         {"new": new, "name": name, "old": old})

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user ``name`` if ``password`` is theirs, else None (as slow for unknown names)."""
        return self._check(name, password)[0]

    def login(self, name: str, password: str, *, client: str = "") -> tuple[str, Session]:
        """Check the password (throttled), start a session; ``(cookie token, session)``. Audited either way.

        :class:`LoginRefused` (401, one generic message) for a wrong name or password or a disabled
        account; 429 while the name is throttled.
        """
        return self.create_session(self._checked_login(name, password, client), client=client)

    def verify_login(self, name: str, password: str, *, client: str = "") -> User:
        """The same checks as :meth:`login` (throttle, audit) without a web session: a PLC's OPC UA login.

        :class:`LoginRefused` as :meth:`login`; a success is audited as ``login`` with its ``client``.
        """
        user = self._checked_login(name, password, client)
        with self.store.transaction() as conn:
            append(conn, user.name, "login", {"client": client, "role": user.role})
        return user

    def _checked_login(self, name: str, password: str, client: str) -> User:
        """The user behind a login attempt, the throttle asked first; a failure is audited and raised."""
        try:
            actor, typed = check_name(name), {}
        except AccountError:  # a name no user can have: the entry keeps what was typed, the actor is '?'
            actor, typed = "?", {"name": str(name)[:MAX_NAME]}
        wait = self.throttle.retry_after(str(name))
        if wait > 0:
            raise LoginRefused(429, f"too many failed logins for this user name: try again in {wait:.0f} s",
                               retry_after=wait)
        user, reason = self._check(name, password)
        if user is None:
            self.throttle.failed(str(name))
            with self.store.transaction() as conn:
                append(conn, actor, "login_failed", {"client": client, "reason": reason, **typed})
            raise LoginRefused(401, GENERIC_FAILURE)
        self.throttle.succeeded(user.name)
        return user

    def create_session(self, user: User, *, client: str = "") -> tuple[str, Session]:
        """A new session of ``user``: ``(token for the cookie, session)``; only the token's SHA-256 is stored."""
        token = secrets.token_urlsafe(32)
        started = datetime.now(timezone.utc)
        expires = _utc(started + timedelta(hours=self.session_hours))
        with self.store.transaction() as conn:
            conn.execute(text("DELETE FROM sessions WHERE expires_at <= :now"), {"now": _utc(started)})  # ended shifts
            conn.execute(text("INSERT INTO sessions (token_sha256, user_name, created_at, expires_at) "
                              "VALUES (:token, :user, :created, :expires)"),
                         {"token": token_hash(token), "user": user.name, "created": now(), "expires": expires})
            append(conn, user.name, "login", {"client": client, "role": user.role, "expires_at": expires})
        return token, Session(user, expires, self.csrf_token(token))

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie token; None when unknown, expired or its user is disabled."""
        if not token or not isinstance(token, str) or len(token) > 200:
            return None
        row = self.store.read("reading a session", lambda conn: conn.execute(text(
            "SELECT u.name, u.role, u.created_at, u.disabled, s.expires_at FROM sessions AS s "
            "JOIN users AS u ON u.name = s.user_name WHERE s.token_sha256 = :token"),
            {"token": token_hash(token)}).first())
        if row is None or row[3] or row[4] <= _utc(datetime.now(timezone.utc)):
            return None
        return Session(User(row[0], row[1], row[2], False), row[4], self.csrf_token(token))

    def logout(self, token: str | None, *, client: str = "") -> bool:
        """End the session of ``token`` (audited); whether there was one."""
        if not token or not isinstance(token, str):
            return False
        with self.store.transaction() as conn:
            row = conn.execute(text("SELECT user_name FROM sessions WHERE token_sha256 = :token"),
                               {"token": token_hash(token)}).first()
            if row is None:
                return False
            conn.execute(text("DELETE FROM sessions WHERE token_sha256 = :token"), {"token": token_hash(token)})
            append(conn, row[0], "logout", {"client": client})
        return True

    def csrf_token(self, token: str) -> str:
        """The CSRF token of the session whose cookie token is ``token``."""
        return hmac.new(self.secret, b"csrf:" + token.encode("utf-8"), hashlib.sha256).hexdigest()
