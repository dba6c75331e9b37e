"""The login routes every page of the station's servers shares: ``/login``, ``/api/login``, ``/api/logout``,
``/api/me``.

One place for what a login answers (a session cookie that script cannot read and no other site's request
carries, the CSRF token for writes) so the station's own page and the plant page (:mod:`.plant.app`)
log in the same way. ``accounts`` None means logins are off (``--no-login``): ``/login`` goes to ``/`` and
``/api/me`` says so.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .accounts import Accounts, LoginRefused, Session
from .errors import StationError
from .guard import SESSION_COOKIE

LOGIN_PAGE = Path(__file__).with_name("static") / "login.html"
MAX_LOGIN_BYTES = 16 * 1024


def session_of(request: Request) -> Session | None:
    """The session :class:`.guard.LoginGate` found for this request (None without logins)."""
    return request.scope.get("station.session")


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def session_cookie(token: str, max_age: int, *, secure: bool) -> str:
    """The ``Set-Cookie`` value: script cannot read it, no other site's request carries it, whole server."""
    return (f"{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max(0, int(max_age))}"
            + ("; Secure" if secure else ""))


def me(accounts: Accounts | None, session: Session | None) -> dict[str, Any]:
    """What ``/api/me`` answers: logins on or off, the user and role, the CSRF token for writes."""
    if session is None:
        return {"login": accounts is not None, "user": None, "role": None, "csrf_token": None, "expires_at": None}
    return {"login": True, "user": session.user.name, "role": session.user.role, "csrf_token": session.csrf_token,
            "expires_at": session.expires_at}


async def _credentials(request: Request) -> tuple[str, str]:
    body = await request.body()
    if len(body) > MAX_LOGIN_BYTES:
        raise StationError(413, f"a login is at most {MAX_LOGIN_BYTES // 1024} KiB")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StationError(400, f"the request body is not JSON: {error}") from error
    name, password = (data.get("name"), data.get("password")) if isinstance(data, dict) else (None, None)
    if not isinstance(name, str) or not isinstance(password, str):
        raise StationError(400, "a login needs 'name' and 'password', both text")
    return name, password


def login_routes(accounts: Accounts | None, *,
                 read_credentials: Callable[[Request], Any] = _credentials) -> list[Route]:
    """The four routes, for ``accounts`` (None: logins off). ``read_credentials(request)`` (awaitable) gives
    ``(name, password)`` from the body; the station's page passes its own JSON reader."""

    async def login_page(request: Request) -> Response:
        if accounts is None:
            return RedirectResponse("/", status_code=303)
        return FileResponse(LOGIN_PAGE, headers={"Cache-Control": "no-store"})

    async def login(request: Request) -> Response:
        if accounts is None:
            raise StationError(400, "logins are off on this server (started with --no-login)")
        name, password = await read_credentials(request)
        try:
            token, session = await run_in_threadpool(accounts.login, name, password, client=client_of(request))
        except LoginRefused as refused:
            headers = {"Retry-After": str(int(refused.retry_after) + 1)} if refused.status == 429 else {}
            return JSONResponse({"error": refused.message}, status_code=refused.status, headers=headers)
        response = JSONResponse(me(accounts, session))
        response.headers.append("set-cookie", session_cookie(token, int(accounts.session_hours * 3600),
                                                             secure=request.url.scheme == "https"))
        return response

    async def logout(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if accounts is not None:
            await run_in_threadpool(accounts.logout, token, client=client_of(request))
        response = JSONResponse({"logged_out": True})
        response.headers.append("set-cookie", session_cookie("", 0, secure=request.url.scheme == "https"))
        return response

    async def who(request: Request) -> Response:
        return JSONResponse(me(accounts, session_of(request)), headers={"Cache-Control": "no-store"})

    return [Route("/login", login_page), Route("/api/login", login, methods=["POST"]),
            Route("/api/logout", logout, methods=["POST"]), Route("/api/me", who)]
