"""The Puddle page's FastAPI app, mounted by the API server at ``/puddle``. Read-only.

* ``GET /puddle/``: the page (plain HTML and JavaScript in ``static/``), which polls the JSON.
* ``GET /puddle/api/systems``: per readable ``puddle`` connection, its CU and its systems that are
  not terminated, with cost, status, idle countdown, URL and owning task instance.
* ``GET /puddle/static/...``: the page's script and style (no data).

Authentication is Airflow's: the core API's ``get_user`` dependency reads the JWT from an
``Authorization: Bearer`` header or from the ``_token`` cookie that the Airflow UI sets at login
(scoped to ``[api] base_url``'s path, so the browser sends it to ``/puddle`` too, also from the
UI's iframe). No token: 401; a bad one: 403. What a user sees is filtered by the auth manager.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from airflow_puddle.plugins.access import owners_of, readable_connections, readable_dags
from airflow_puddle.plugins.board import Board
from airflow_puddle.plugins.paths import base_path
from airflow_puddle.plugins.rows import Owner, connection_view

STATIC = Path(__file__).with_name("static")
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # framed only by the Airflow UI (same origin); scripts and styles only from /puddle/static
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
}


async def _owners(system_ids: list[str]) -> dict[str, Owner]:
    return await run_in_threadpool(owners_of, system_ids)


def create_app() -> FastAPI:
    """The app the plugin mounts (built on the first request the API server routes to it)."""
    app = FastAPI(title="Puddle", docs_url=None, redoc_url=None, openapi_url=None)
    board = Board(_owners)
    app.state.board = board
    page = (STATIC / "index.html").read_text()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    async def index(user: GetUserDep) -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/systems")
    async def systems(user: GetUserDep) -> dict[str, Any]:
        conn_ids = await run_in_threadpool(readable_connections, user)
        snaps = await board.snapshots(conn_ids)
        dag_ids = {owner.dag_id for snap in snaps for owner in snap.owners.values()}
        dags = await run_in_threadpool(readable_dags, user, dag_ids)
        now = time.time()
        return {
            "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "poll_interval_s": board.ttl_s,
            "connections": [connection_view(snap, dags, now, base_path()) for snap in snaps],
        }

    return app
