"""HTTP mode: Slack's requests at POST /slack/events, health at GET /healthz, under uvicorn.

Bolt's own Starlette adapter runs the synchronous `App.dispatch` on the event loop, one request at
a time; here each request is dispatched in a worker thread, so requests are served concurrently
while the event loop keeps accepting connections.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import anyio
import anyio.to_thread
import uvicorn
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import Planbot

__all__ = ["create_asgi", "serve", "serve_workers"]

log = logging.getLogger(__name__)

DISPATCH_THREADS = 8
#: in-flight requests get 8 s to finish on SIGTERM; a deep backlog absorbs bursts of connections
UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "log_level": "info",
    "timeout_graceful_shutdown": 8,
    "backlog": 2048,
}
MAX_BODY = 1 << 20  # Slack's payloads are far smaller; anything bigger is not from Slack


def _signed(secret: str | None, body: str, request: Request) -> bool:
    """Whether Slack signed this request, checked before anything reads the body.

    Bolt checks again, but its check raises (and so reaches the error handler, which answers the
    unverified request's response_url) on a timestamp that is not a number or a signature that is
    not ASCII. Slack's ssl_check pings are left to Bolt, which answers them and does nothing else.
    """
    if secret is None or parse_qs(body).get("ssl_check"):
        return True
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    return SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)


def _bolt_request(body: str, request: Request) -> BoltRequest:
    """Bolt's request for a signed body; ValueError, TypeError or AttributeError if no Slack's."""
    bolt_request = BoltRequest(
        body=body,
        query=str(request.query_params),
        headers={k: request.headers.getlist(k) for k in request.headers},
    )
    form = bolt_request.content_type != "application/json" and not body.startswith("{")
    if form and "payload" in body and "payload" not in parse_qs(body):
        # Bolt takes any form body that merely contains the word "payload" (say,
        # `/plan create payload-api`) for an interaction, and finds nothing in it: a 404.
        bolt_request.body = dict(parse_qsl(body, keep_blank_values=True))
        bolt_request.context = build_context(BoltContext(), bolt_request.body)
    if bolt_request.body.get("type") == "block_actions":
        # Bolt's own error handling fails on these (a 500): refuse them here.
        actions = bolt_request.body.get("actions")
        if not isinstance(actions, list) or not actions:
            raise ValueError("block_actions without actions")
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            raise ValueError("block_actions with an action that has no action_id")
    return bolt_request


def create_asgi(planbot: Planbot, *, tick: bool = True) -> Starlette:
    """The ASGI app serving Slack's requests with the given bot."""

    # A few threads keep both the GIL and SQLite's single writer busy without queueing on them.
    limiter = anyio.CapacityLimiter(DISPATCH_THREADS)

    async def events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        decoded = body.decode("utf-8", errors="replace")
        if not _signed(planbot.settings.signing_secret, decoded, request):
            client = request.client.host if request.client else "?"
            log.warning("refused a request from %s: missing, bad or stale Slack signature", client)
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            bolt_request = _bolt_request(decoded, request)
        except (ValueError, TypeError, AttributeError):  # signed, but not a Slack payload
            log.warning("refused a signed request whose body is not a Slack payload")
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        result = await anyio.to_thread.run_sync(planbot.app.dispatch, bolt_request, limiter=limiter)
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
        planbot.start(sweep=tick)
        try:
            yield
        finally:
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
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with this
    # handler a SIGTERM ends in exit status 0 rather than death by signal (-15).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(create_asgi(planbot), host=host, port=port, **UVICORN_OPTIONS)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve_workers(factory: str, *, host: str, port: int, workers: int) -> None:
    """Serve with several worker processes, each building its own bot from `factory`."""
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **UVICORN_OPTIONS)
