"""The station's web application: one static page and a small JSON API over :class:`.engine.Station`.

Server library: Starlette (ASGI) served by uvicorn. Why these and not Gradio: the station runs on
the runtime-only install of a line PC, often offline. Starlette and uvicorn are a few pure-Python
packages (with h11, anyio, click), import no torch or data-science stack, and serve a page whose
HTML, JavaScript and CSS ship inside this package (no CDN, no telemetry, nothing fetched at run
time). Gradio brings FastAPI, pandas, a hub client and a large front end, and its layout
components would have to be bent to show the paper's views, the geometry table and the decision
buttons as one screen. Uploads are the raw request body (``fetch(file)``), so no multipart parser
is needed either.

Routes (JSON unless said; errors are ``{"error": message}`` with a 4xx/5xx status, and the
server keeps serving). With logins on (the default), every route but the first three needs a
session (401, or a redirect to ``/login`` for the page); role: *op* = operators and engineers,
*eng* = engineers only (403 for an operator):

=========================  =====================================================================
``GET /login``             the login page (``static/login.html``); without logins: to ``/``
``POST /api/login``        ``{"name", "password"}``: a session; its cookie (``HttpOnly``,
                           ``SameSite=Strict``, ``Secure`` over https) and ``csrf_token``
``GET /static/*``          the page's script and style
``POST /api/logout``       end this session (op)
``GET /api/me``            ``{"login": bool, "user", "role", "csrf_token", "expires_at"}``
``GET /``                  the page (``static/index.html``)
``GET /line``              the operator's line page (``static/line.html``)
``GET /api/line``          the line: shift counters and reject rate, the last 20 parts, the links' state
``GET /api/part/ID``       one inspection as the line page shows it (verdict, part id, the defects
                           outlined while it is kept; a line part's view token, to decide it)
``GET /api/status``        models (name, family, version, precision, median latency), rules, limits
``POST /api/inspect``      raw image bytes, ``?name=FILE``: inspect with every model, store, results
``GET /api/watch``         the watched folder's newest images
``POST /api/watch``        ``{"name": FILE}`` (optional): inspect that file, or the newest one
``POST /api/threshold``    ``{"inspection_id", "token", "model", "threshold"}``: re-threshold the kept
                           map (eng; audited as ``threshold_moved``)
``POST /api/decision``     ``{"inspection_id", "token", "operator", "decision", "grade"?, "comment"?,
                           "thresholds"?}``: append it (op; ``thresholds``: what the page shows,
                           checked; with logins the operator is the logged-in user)
``GET /api/history``       ``?grade=&class=&decision=&from=YYYY-MM-DD&to=YYYY-MM-DD``: rows
``GET /api/history.csv``   the same filters, every row, as a CSV download
``GET /api/models``        the slots (active, previous, shadow: name, version, bundle) and the
                           bundles of ``--bundles`` (eng)
``POST /api/models/...``   ``shadow`` ``{"slot", "bundle"}``, ``shadow/stop`` ``{"slot"}``,
                           ``activate`` ``{"slot", "bundle"?}`` (none: the shadow), ``rollback``
                           ``{"slot"}``: switch a slot's model version (eng; audited, :mod:`.versions`)
``GET /api/models/``       ``comparison?slot=N[&shadow=NAME]``: the shadow against the active model
``comparison``             (agreement, the parts that differ, false-reject rates; eng)
=========================  =====================================================================

Every request passes :class:`.guard.StationGuard` first (own host names, same-origin writes with
the ``X-Requested-With: defect-station`` header, JSON or image bodies, no framing), then, with
logins on, :class:`.guard.LoginGate` (a live session; on writes its ``X-CSRF-Token`` and the role).
Accounts, sessions and the login throttle are :mod:`.accounts`; logins, logouts, failed logins,
threshold moves and decisions go into the audit trail (:mod:`.audit`). With ``--no-login`` the
operator's name is typed on the page and anyone who reaches it acts as any operator. An
inspection's payload carries a ``token``; re-thresholding and deciding need it, so only the client
that was shown an inspection can change or decide it. Every malformed request gets a 4xx with a message.

CPU work (decoding, inference, the database) runs in Starlette's thread pool, so one slow image
does not stop the page of another operator from loading.
"""
from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .accounts import Accounts, HashBusy
from .audit import append
from .engine import Station, StationError
from .guard import LoginGate, StationGuard, allowed_hosts
from .line.links import LineLinks
from .line.shift import DEFAULT_SHIFTS, line_summary, parse_shifts
from .web_login import login_routes, session_of
from .store import StoreError, StoreUnavailable, check_id

STATIC = Path(__file__).with_name("static")
MAX_JSON_BYTES = 64 * 1024
DRAIN_BYTES = 64 * 1024 * 1024  # read and drop this much of an oversized upload before giving up on it
log = logging.getLogger("defect_plugins.station")


async def _read_body(request: Request, limit: int, what: str, limit_name: str) -> bytes:
    """The request body; 413 when it passes ``limit`` bytes (``limit_name`` says which limit).

    Nothing beyond the limit is kept. The rest of an oversized body is still read and dropped (up
    to :data:`DRAIN_BYTES` more): a server that answers and closes while the client is still
    sending makes the client see "connection reset" instead of the message.
    """
    declared = request.headers.get("content-length")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + DRAIN_BYTES:
            break
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        total = int(declared) if declared and declared.isascii() and declared.isdigit() else size
        raise StationError(413, f"{what} is {total / 1e6:.1f} MB, above the station's limit of {limit / 1e6:g} MB "
                                f"({limit_name})")
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    body = await _read_body(request, MAX_JSON_BYTES, "the request", f"{MAX_JSON_BYTES // 1024} KiB for JSON bodies")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StationError(400, f"the request body is not JSON: {error}") from error
    except RecursionError:
        raise StationError(400, "the request body is JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise StationError(400, "the request body must be a JSON object")
    return data


def _index(data: dict, key: str) -> int:
    """A non-negative integer (a model index), ASCII digits only."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not (
            isinstance(value, int) or (value.isascii() and value.isdigit())) or not 0 <= int(value) < 10_000:
        raise StationError(400, f"'{key}' must be an integer from 0, got {value!r}")
    return int(value)


def _text(data: dict, key: str) -> str:
    value = data.get(key) or ""
    if not isinstance(value, str):
        raise StationError(400, f"'{key}' must be text, got {value!r}")
    return value


def upload_name(raw: str | None) -> str:
    """A file name fit for records and CSV: the last path part, control and format characters dropped."""
    name = Path(raw or "upload").name
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")[:200].strip()
    return name or "upload"


def _filters(request: Request) -> dict[str, str | None]:
    query = request.query_params
    return {"grade": query.get("grade") or None, "class_name": query.get("class") or None,
            "decision": query.get("decision") or None, "date_from": query.get("from") or None,
            "date_to": query.get("to") or None}


NO_LOGIN_ACTOR = "anonymous"  # the audit's actor for what nobody logged in did (--no-login)


async def _credentials(request: Request) -> tuple[str, str]:
    """A login's ``(name, password)`` from its JSON body (the station's body limits and messages)."""
    data = await _json(request)
    name, password = data.get("name"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise StationError(400, "a login needs 'name' and 'password', both text")
    return name, password


def create_app(station: Station, *, max_upload_bytes: int = 20_000_000, hosts: set[str] | None = None,
               accounts: Accounts | None = None, line: LineLinks | None = None) -> StationGuard:
    """The ASGI application serving ``station`` behind :class:`.guard.StationGuard`.

    ``hosts``: the names the station answers to (:func:`.guard.allowed_hosts`; default: loopback).
    ``accounts``: logins on, through :class:`.guard.LoginGate`; None: no logins (``--no-login``).
    ``line``: the line's links (:mod:`.line.links`): their state and shift counters on the line page.
    """
    shifts = line.shifts if line is not None else parse_shifts(DEFAULT_SHIFTS)

    async def line_page(request: Request) -> Response:
        return FileResponse(STATIC / "line.html", headers={"Cache-Control": "no-store"})

    def _line_state() -> dict[str, Any]:
        summary = line_summary(station.store, shifts)
        inspector = line.inspector.state() if line is not None else {}
        return {"line": line.line if line is not None else "", **summary,
                "links": line.state() if line is not None else {},
                "last_store_error": inspector.get("last_store_error"),
                "models": [{"name": m.name, "version": m.version} for m in station.models],
                "drift": station.drift.state(),
                "model_notices": list(station.slots.notices)}

    async def line_state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(_line_state), headers={"Cache-Control": "no-store"})

    async def part(request: Request) -> Response:
        inspection_id = check_id(request.path_params["inspection_id"])
        return JSONResponse(await run_in_threadpool(station.part_view, inspection_id),
                            headers={"Cache-Control": "no-store"})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def status(request: Request) -> Response:
        return JSONResponse({**station.status(), "max_upload_bytes": max_upload_bytes})

    async def inspect(request: Request) -> Response:
        name = upload_name(request.query_params.get("name"))
        data = await _read_body(request, max_upload_bytes, name, "--max-upload-mb")
        return JSONResponse(await run_in_threadpool(station.inspect, data, name))

    async def watch_list(request: Request) -> Response:
        files = await run_in_threadpool(station.watch_files)
        return JSONResponse({"folder": str(station.watch), "files": [path.name for path in files[:20]]})

    async def watch_inspect(request: Request) -> Response:
        data = await _json(request)
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise StationError(400, f"'name' must be a file name, got {name!r}")
        return JSONResponse(await run_in_threadpool(station.inspect_watch, name or None))

    def _moved(actor: str, inspection_id: int, value: float, answer: dict[str, Any]) -> None:
        with station.store.transaction() as conn:
            append(conn, actor, "threshold_moved", {"inspection_id": inspection_id, "model": answer["model"]["name"],
                                                    "threshold": value, "grade": answer["grade"]})

    async def threshold(request: Request) -> Response:
        data = await _json(request)
        value = data.get("threshold")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StationError(400, f"'threshold' must be a number, got {value!r}")
        inspection_id = check_id(data.get("inspection_id"))
        answer = await run_in_threadpool(station.rethreshold, inspection_id, _index(data, "model"), float(value),
                                         token=_text(data, "token"))
        session = session_of(request)
        await run_in_threadpool(_moved, session.user.name if session else NO_LOGIN_ACTOR, inspection_id,
                                float(value), answer)
        return JSONResponse(answer)

    async def decision(request: Request) -> Response:
        data = await _json(request)
        shown = data.get("thresholds")
        if shown is not None and (not isinstance(shown, dict) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in shown.values())):
            raise StationError(400, "'thresholds' must map model names to numbers (or null)")
        inspection_id = check_id(data.get("inspection_id"))
        operator = _text(data, "operator")
        session = session_of(request)
        if session is not None:  # a decision is signed by who is logged in, never by a typed name
            if operator.strip() not in ("", session.user.name):
                raise StationError(403, f"decisions are signed with the logged-in user's name, "
                                        f"{session.user.name!r}; this one names {operator.strip()!r}")
            operator = session.user.name
        return JSONResponse(await run_in_threadpool(
            lambda: station.decide(inspection_id, str(data.get("decision")), operator=operator,
                                   token=_text(data, "token"), grade=data.get("grade") or None,
                                   comment=_text(data, "comment").strip(), shown_thresholds=shown)))

    async def history(request: Request) -> Response:
        rows = await run_in_threadpool(lambda: station.store.history(**_filters(request), limit=500))
        for row in rows:
            for key in ("models", "results", "thresholds"):
                row[key] = json.loads(row[key]) if row.get(key) else None
            for decided in row["decisions"]:
                decided["thresholds"] = json.loads(decided["thresholds"])
        return JSONResponse({"rows": rows, "classes": await run_in_threadpool(station.store.classes),
                             "grades": list(station.rules.grades)})

    async def history_csv(request: Request) -> Response:
        text = await run_in_threadpool(lambda: station.store.history_csv(**_filters(request)))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="station-history.csv"'})

    def _engineer(request: Request) -> str:
        """The actor of a model route; 403 for an operator (LoginGate checks writes only; reads are gated here)."""
        session = session_of(request)
        if session is None:
            return NO_LOGIN_ACTOR
        if session.user.role != "engineer":
            raise StationError(403, f"{request.method} {request.url.path} needs the engineer role; "
                                    f"{session.user.name} is logged in as {session.user.role}")
        return session.user.name

    async def models_list(request: Request) -> Response:
        _engineer(request)
        return JSONResponse(await run_in_threadpool(station.slots.describe), headers={"Cache-Control": "no-store"})

    def _switch(name: str) -> Any:  # noqa: ANN401
        async def handler(request: Request) -> Response:
            actor = _engineer(request)
            data = await _json(request)
            if "slot" not in data:
                raise StationError(400, "'slot' is missing: the slot's index (0 for the first --model)")
            slots = station.slots
            if name == "shadow":
                done = await run_in_threadpool(lambda: slots.shadow(data["slot"], data.get("bundle"), actor=actor))
            elif name == "stop":
                done = await run_in_threadpool(lambda: slots.stop_shadow(data["slot"], actor=actor))
            elif name == "activate":
                done = await run_in_threadpool(lambda: slots.activate(data["slot"], data.get("bundle"), actor=actor))
            else:
                done = await run_in_threadpool(lambda: slots.rollback(data["slot"], actor=actor))
            return JSONResponse(done.describe())
        return handler

    async def models_comparison(request: Request) -> Response:
        _engineer(request)
        slot = request.query_params.get("slot")
        if slot is None:
            raise StationError(400, "give ?slot=N (the slot's index)")
        shadow = request.query_params.get("shadow") or None
        return JSONResponse(await run_in_threadpool(station.comparison, slot, shadow),
                            headers={"Cache-Control": "no-store"})

    async def station_error(request: Request, error: StationError) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def store_error(request: Request, error: StoreError) -> Response:
        if isinstance(error, StoreUnavailable):  # the database server is away (a restart): try again shortly
            return JSONResponse({"error": str(error)}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"error": str(error)}, status_code=400)

    async def busy(request: Request, error: HashBusy) -> Response:
        return JSONResponse({"error": str(error)}, status_code=503, headers={"Retry-After": "5"})

    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}: {error}); the station goes on"},
                            status_code=500)

    routes = [
        *login_routes(accounts, read_credentials=_credentials),
        Route("/", index),
        Route("/line", line_page),
        Route("/api/line", line_state),
        Route("/api/part/{inspection_id}", part),
        Route("/api/status", status),
        Route("/api/inspect", inspect, methods=["POST"]),
        Route("/api/watch", watch_list, methods=["GET"]),
        Route("/api/watch", watch_inspect, methods=["POST"]),
        Route("/api/threshold", threshold, methods=["POST"]),
        Route("/api/decision", decision, methods=["POST"]),
        Route("/api/history", history),
        Route("/api/history.csv", history_csv),
        Route("/api/models", models_list),
        Route("/api/models/shadow", _switch("shadow"), methods=["POST"]),
        Route("/api/models/shadow/stop", _switch("stop"), methods=["POST"]),
        Route("/api/models/activate", _switch("activate"), methods=["POST"]),
        Route("/api/models/rollback", _switch("rollback"), methods=["POST"]),
        Route("/api/models/comparison", models_comparison),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={StationError: station_error, StoreError: store_error,
                                                       HashBusy: busy, Exception: unexpected})
    if accounts is not None:
        app = LoginGate(app, lookup=lambda token: run_in_threadpool(accounts.session, token))
    return StationGuard(app, hosts=hosts or allowed_hosts("127.0.0.1"), upload_paths={"/api/inspect"})
