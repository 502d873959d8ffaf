"""The controller's HTTP server: `/healthz`, `/readyz`, `/metrics`, and the dashboard at `/`.

Owns the Starlette app and running uvicorn in a background thread. `/readyz` is 200 once the
policy cache has synced (a standby is ready too: it can take over at once). Imports starlette,
uvicorn and prometheus-client; no metric source or scaler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route


def create_ops_app(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    details: Callable[[], dict[str, Any]],
    dashboard: Any | None = None,
) -> Starlette:
    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        body = details()
        if ready():
            return JSONResponse({"ready": True, **body})
        return JSONResponse({"ready": False, **body}, status_code=503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes: list[Route | Mount] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if dashboard is not None:
        routes.append(Mount("/", app=dashboard))
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn in a daemon thread (signals stay with the main thread)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start (port in use?)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("not started")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
