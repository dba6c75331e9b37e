"""What the station's server lets in: its own host names, same-origin writes, logged-in users, no framing.

Two layers, both pure ASGI: :class:`StationGuard` (outside) and :class:`LoginGate` (inside it, when
logins are on). The guard holds with or without logins, since a browser adds the operator's
session cookie to requests that other sites' pages make too: any web page open in the operator's
browser can send requests to ``http://127.0.0.1:PORT``. Without this module a plain
HTML form (``enctype="text/plain"``) on another site could post a decision, and a DNS-rebinding
page (``evil.example`` resolving to 127.0.0.1) could read the whole history. The rules follow
OWASP's Cross-Site Request Forgery Prevention Cheat Sheet ("custom request headers",
"verifying origin with standard headers", "Fetch Metadata headers") and the Host check of
Starlette's ``TrustedHostMiddleware`` (``starlette/middleware/trustedhost.py``), which is not used
itself because it splits ``[::1]:8080`` at the first colon:

* ``Host`` must name the station (:func:`allowed_hosts`), on every request: a rebinding page's
  requests carry its own name and get 421;
* a write (any method but GET / HEAD) needs ``X-Requested-With: defect-station``. A cross-origin
  page can only add such a header with a CORS preflight, which the station never answers, and a
  form cannot add it at all. The page, the line's scripts and ``defect-station --check`` send it;
* a write whose ``Origin`` (or, without one, ``Referer``) is another origin, or whose
  ``Sec-Fetch-Site`` says ``cross-site`` / ``same-site``, is refused with 403;
* a write's body type must be the route's: ``application/json``, or an image type /
  ``application/octet-stream`` for uploads (415 otherwise: ``text/plain`` is what a form sends);
* every response carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a
  Content-Security-Policy that allows only the station's own scripts, styles and ``data:`` images
  and no framing (``frame-ancestors 'none'``): the accept / reject buttons cannot be framed.

:class:`LoginGate` then asks for a live session (the ``HttpOnly; SameSite=Strict`` cookie of
:mod:`.accounts`) on every route but the login page, the login call and the static files: without
one, the API answers 401 and a page redirects to ``/login``. Every write must also carry the
session's CSRF token in ``X-CSRF-Token`` (403 otherwise; the page reads it from ``/api/me``), and
writes other than the operator's own (:data:`OPERATOR_WRITES`: inspect, the watched folder,
decide, log out) need the ``engineer`` role: a new route that changes the configuration is an
engineer's unless it is added there.

Standard library only (pure ASGI middlewares).
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

REQUEST_HEADER = ("x-requested-with", "defect-station")
SAFE_METHODS = ("GET", "HEAD")
JSON_TYPES = ("application/json",)
UPLOAD_TYPES = ("application/octet-stream", "image/")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SESSION_COOKIE = "defect_station_session"
CSRF_HEADER = "x-csrf-token"
# Routes open without a session: (method, path); and every GET / HEAD under STATIC_PREFIX
PUBLIC_ROUTES = {("GET", "/login"), ("HEAD", "/login"), ("POST", "/api/login")}
STATIC_PREFIX = "/static/"
# The writes an operator may make; every other write needs the engineer role
OPERATOR_WRITES = {"/api/inspect", "/api/watch", "/api/decision", "/api/logout"}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the station on this PC."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names (without port, lower case) the station answers to.

    Loopback names always; the bound address; for a wildcard bind (``0.0.0.0``) also this PC's
    host name, its fully qualified name and the addresses they resolve to; plus ``extra``
    (``--allow-host``: a DNS name or address other machines use to reach the station).
    """
    names = {*LOOPBACK_NAMES, bind_host.lower()}
    if is_wildcard(bind_host):
        for name in {socket.gethostname(), socket.getfqdn()}:
            names.add(name.lower())
            try:
                names.update(info[4][0].lower() for info in socket.getaddrinfo(name, None))
            except OSError:
                continue
    names.update(name.strip().lower().strip("[]") for name in extra if name.strip())
    names.discard("")
    return names


def host_name(header: str) -> str:
    """The name part of a ``Host`` header: ``[::1]:8080`` -> ``::1``, ``Example:80`` -> ``example``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class StationGuard:
    """ASGI middleware enforcing the module's rules in front of ``app``.

    ``upload_paths`` are the routes whose body is an image; every other write takes JSON.
    """

    def __init__(self, app: Callable, *, hosts: set[str], upload_paths: Iterable[str]) -> None:
        self.app = app
        self.hosts = {name.lower() for name in hosts}
        self.upload_paths = set(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        refusal = self.refusal(scope["method"], scope["path"], headers, scheme=scope.get("scheme", "http"))

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if refusal is not None:
            status, text = refusal
            await send_json(send_with_headers, status, {"error": text})
            return
        await self.app(scope, receive, send_with_headers)

    def refusal(self, method: str, path: str, headers: dict[str, str], *,
                scheme: str = "http") -> tuple[int, str] | None:
        """``(status, message)`` when the request must be refused, else None.

        ``scheme``: the request's (``https`` behind a TLS proxy that uvicorn trusts), the origin of the
        station's own pages.
        """
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return 421, (f"Host {host!r} is not a name of this station (it answers to {sorted(self.hosts)}; "
                         f"add a name with --allow-host)")
        if method in SAFE_METHODS:
            return None
        if headers.get(REQUEST_HEADER[0], "").strip().lower() != REQUEST_HEADER[1]:
            return 403, (f"writes need the request header 'X-Requested-With: {REQUEST_HEADER[1]}' "
                         f"(the station's page sends it; a page of another site cannot)")
        own = f"{'https' if scheme in ('https', 'wss') else 'http'}://{host.strip().lower()}"
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() != own:
            return 403, f"cross-origin write refused: Origin {origin!r} is not the station's own ({own})"
        referer = headers.get("referer")
        if origin is None and referer:
            parts = urlsplit(referer.strip())
            if f"{parts.scheme}://{parts.netloc}".lower() != own:
                return 403, f"cross-origin write refused: Referer {referer!r} is not a page of the station ({own})"
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return 403, f"cross-origin write refused (Sec-Fetch-Site: {site})"
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        expected = UPLOAD_TYPES if path in self.upload_paths else JSON_TYPES
        if not any(kind == allowed or (allowed.endswith("/") and kind.startswith(allowed)) for allowed in expected):
            return 415, (f"{path} takes a body of type "
                         f"{' or '.join(t + '*' if t.endswith('/') else t for t in expected)}"
                         f", got {kind or 'none'!r}")
        return None


async def send_json(send: Send, status: int, payload: dict, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A whole JSON response (never cached) through ``send``."""
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})


def cookie(headers: dict[str, str], name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header (the first one; None when absent)."""
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return None


class LoginGate:
    """ASGI middleware: a live session for every route but :data:`PUBLIC_ROUTES`, CSRF token and role on writes.

    ``lookup(token)`` (awaitable) gives the session of a cookie token, or None; a session has
    ``csrf_token`` and ``user.name`` / ``user.role``. The session goes to the application in
    ``scope["station.session"]``.
    """

    def __init__(self, app: Callable, *, lookup: Callable[[str], Awaitable[Any]]) -> None:
        self.app = app
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if (method, path) in PUBLIC_ROUTES or (method in SAFE_METHODS and path.startswith(STATIC_PREFIX)):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        token = cookie(headers, SESSION_COOKIE)
        session = await self.lookup(token) if token else None
        if session is None:
            if method in SAFE_METHODS and not path.startswith("/api/"):
                # a page: to the login page (which comes back here once logged in)
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", b"/login"), (b"content-length", b"0"),
                                        (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": b""})
                return
            await send_json(send, 401, {"error": "log in first: this station needs a user name and password "
                                                 "(the page is at /login)", "reason": "login"})
            return
        if method not in SAFE_METHODS:
            refusal = self.write_refusal(method, path, headers, session)
            if refusal is not None:
                await send_json(send, 403, refusal)
                return
        await self.app({**scope, "station.session": session}, receive, send)

    @staticmethod
    def write_refusal(method: str, path: str, headers: dict[str, str], session: Any) -> dict[str, str] | None:
        """The 403 answer for a write the session may not make (CSRF token, then role); None when it may."""
        sent = headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf_token.encode("utf-8")):
            return {"error": "writes need this session's token in the X-CSRF-Token header (the page reads it from "
                             "/api/me; reload the page)", "reason": "csrf"}
        if path not in OPERATOR_WRITES and session.user.role != "engineer":
            return {"error": f"{method} {path} needs the engineer role; {session.user.name} is logged in as "
                             f"{session.user.role}", "reason": "role"}
        return None
