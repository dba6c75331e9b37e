"""The plant page's web application: the page, its JSON and its CSV, behind the station's guard and logins.

Read-only for everyone: the only writes are logging in and out. Every route but the login page needs a
session when logins are on (operators and engineers alike), as on a station (:mod:`..guard`).

=====================  =====================================================================
``GET /``              the page (``static/plant.html``)
``GET /api/plant``     ``?line=&from=YYYY-MM-DD&to=YYYY-MM-DD&grade=``: per-line figures
                       (:func:`.figures.line_figures`), the lines known, the newest 500 inspections
``GET /api/plant.csv`` the same filters, every inspection, as a CSV download
=====================  =====================================================================
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..accounts import Accounts
from ..errors import StationError
from ..guard import LoginGate, StationGuard, allowed_hosts
from ..store import Store, StoreError
from ..web_login import login_routes
from .figures import NO_LINE, PlantFilters, inspection_rows, line_figures, rows_csv

STATIC = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger("defect_plugins.station.plant")


def plant_figures(store: Store, filters: PlantFilters, *, limit: int = 500) -> dict[str, Any]:
    """What ``/api/plant`` answers, read in one snapshot."""
    def work(conn: Any) -> dict[str, Any]:  # noqa: ANN401
        from sqlalchemy import text

        lines = [row[0] for row in conn.execute(text(
            "SELECT DISTINCT COALESCE(line, :no_line) FROM inspections ORDER BY 1"), {"no_line": NO_LINE})]
        grades = [row[0] for row in conn.execute(text("SELECT DISTINCT grade FROM inspections ORDER BY 1"))]
        return {"lines": line_figures(conn, filters), "known_lines": lines, "grades": grades,
                "rows": inspection_rows(conn, filters, limit=limit), "database": store.name,
                "filters": {"line": filters.line, "from": filters.date_from, "to": filters.date_to,
                            "grade": filters.grade}}
    return store.read("reading the plant's figures", work)


def create_plant_app(store: Store, *, accounts: Accounts | None, hosts: set[str] | None = None) -> StationGuard:
    """The plant page over ``store`` (``accounts`` None: no logins)."""

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "plant.html", headers={"Cache-Control": "no-store"})

    async def figures(request: Request) -> Response:
        filters = PlantFilters.from_query(request.query_params)
        return JSONResponse(await run_in_threadpool(plant_figures, store, filters),
                            headers={"Cache-Control": "no-store"})

    async def figures_csv(request: Request) -> Response:
        filters = PlantFilters.from_query(request.query_params)
        rows = await run_in_threadpool(
            lambda: store.read("reading the plant's inspections", lambda conn: inspection_rows(conn, filters,
                                                                                              limit=None)))
        return Response(rows_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="plant-inspections.csv"'})

    async def station_error(request: Request, error: StationError) -> Response:
        return JSONResponse({"error": error.message}, status_code=error.status)

    async def store_error(request: Request, error: StoreError) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}: {error})"}, status_code=500)

    routes = [*login_routes(accounts), Route("/", page), Route("/api/plant", figures),
              Route("/api/plant.csv", figures_csv), Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes, exception_handlers={StationError: station_error, StoreError: store_error,
                                                       Exception: unexpected})
    if accounts is not None:
        app = LoginGate(app, lookup=lambda token: run_in_threadpool(accounts.session, token))
    return StationGuard(app, hosts=hosts or allowed_hosts("127.0.0.1"), upload_paths=())
