"""HTTP mode: Slack's requests at POST /slack/events, health at GET /healthz, under uvicorn.

Bolt's own Starlette adapter runs the synchronous `App.dispatch` on the event loop, one request at
a time; here each request is dispatched in a worker thread, so requests are served concurrently
while the event loop keeps accepting connections.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator

import uvicorn
from slack_bolt.request import BoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Planbot

__all__ = ["Ticker", "create_asgi", "serve"]

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # Slack's payloads are far smaller; anything bigger is not from Slack


class Ticker:
    """Runs the lifecycle sweep every `interval` seconds in a background thread."""

    def __init__(self, planbot: Planbot, interval: float) -> None:
        self.planbot = planbot
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep", daemon=True)

    def start(self) -> None:
        """Start ticking (the first sweep runs at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.planbot.lifecycle.sweep()
            except Exception:  # keep ticking; the next sweep catches up
                log.exception("lifecycle sweep failed")
            self.planbot.dispatcher.wake()
            self._stop.wait(self.interval)


def create_asgi(planbot: Planbot, *, tick: bool = True) -> Starlette:
    """The ASGI app serving Slack's requests with the given bot."""

    async def events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        bolt_request = BoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=str(request.query_params),
            headers={k: request.headers.getlist(k) for k in request.headers},
        )
        result = await run_in_threadpool(planbot.app.dispatch, bolt_request)
        return Response(
            content=result.body,
            status_code=result.status,
            headers={k: v[0] for k, v in result.headers.items() if v},
        )

    async def healthz(request: Request) -> Response:
        def probe() -> None:
            with planbot.service.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(probe)
        except Exception as err:
            return JSONResponse({"ok": False, "database": str(err)[:200]}, status_code=503)
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ticker = Ticker(planbot, planbot.settings.sweep_interval)
        planbot.dispatcher.start()
        if tick:
            ticker.start()
        try:
            yield
        finally:
            if tick:
                ticker.stop()
            planbot.close()

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def serve(planbot: Planbot, *, host: str, port: int) -> None:
    """Serve HTTP mode until SIGINT/SIGTERM (in-flight requests finish first)."""
    uvicorn.run(
        create_asgi(planbot),
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=8,
        backlog=2048,
    )
