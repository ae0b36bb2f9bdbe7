"""HTTP mode: Slack's requests at POST /slack/events, health at GET /healthz, under uvicorn.

Each request is dispatched to Bolt on the event loop itself, with `process_before_response` on, so
the ack is the HTTP response and nothing waits on a background thread's poll. Acking is CPU-bound
work of a millisecond or less: the listeners read and write a local database and never call Slack
(Slack calls go through the outbox, delivered by another process; group memberships are looked up
in the background). Handing each request to a thread would only add switches of the GIL between
threads, which cost more than the work itself (measured: status 870 req/s with one dispatch thread,
1,400 req/s on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import parse_qs, parse_qsl

import uvicorn
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.app import Planbot
from bot.worker import ChildProcess, DeliveryChild, stop_when_orphaned
from core import HEALTH_WAIT, REQUEST_WAITS, Store, answering_within

__all__ = ["create_asgi", "serve", "serve_workers"]

log = logging.getLogger(__name__)

#: in-flight requests get 8 s to finish on SIGTERM; a deep backlog absorbs bursts of connections
UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "log_config": None,  # uvicorn's lines go through planbot's logging (text, or JSON)
    "log_level": "info",
    "timeout_graceful_shutdown": 8,
    "backlog": 2048,
}
#: on SIGTERM, requests keep being answered until none arrived for DRAIN_IDLE s (DRAIN_MAX at most)
DRAIN_IDLE = 0.3
DRAIN_MAX = 5.0
MAX_BODY = 1 << 20  # Slack's payloads are far smaller; anything bigger is not from Slack


def _signed(secret: str | None, body: str, request: Request) -> bool:
    """Whether Slack signed this request, checked before anything reads the body.

    Bolt checks again, but its check raises (and so reaches the error handler, which answers the
    unverified request's response_url) on a timestamp that is not a number or a signature that is
    not ASCII. Slack's ssl_check pings are left to Bolt, which answers them and does nothing else.
    """
    if secret is None or ("ssl_check" in body and parse_qs(body).get("ssl_check")):
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
        headers=_headers(request),
    )
    form = bolt_request.content_type != "application/json" and not body.startswith("{")
    interaction = body.startswith("payload=")
    if form and not interaction and "payload" in body and "payload" not in parse_qs(body):
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


def _headers(request: Request) -> dict[str, str | Sequence[str]]:
    """Every header's values by lower-case name, in one pass over the raw headers."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return cast(dict[str, str | Sequence[str]], headers)


class Activity:
    """When the last request was seen (for draining on shutdown)."""

    last = 0.0

    def touch(self) -> None:
        """A request arrived or was answered."""
        self.last = time.monotonic()


class DrainingServer(uvicorn.Server):
    """uvicorn, but SIGTERM first drains: whatever already reached the socket is answered.

    Requests are answered one after another on the event loop, so at any moment some may wait in
    the socket's queue, not yet read; stopping at once would reset them. After SIGTERM the server
    goes on until no request arrived for `DRAIN_IDLE` seconds (`DRAIN_MAX` at most), then stops
    as uvicorn does. SIGINT stops at once.
    """

    def __init__(self, config: uvicorn.Config, activity: Activity) -> None:
        super().__init__(config)
        self.activity = activity
        self.draining_since: float | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        """Start draining on the first SIGTERM; otherwise uvicorn's own handling."""
        if sig == signal.SIGTERM and self.draining_since is None:
            log.info("SIGTERM: answering what has arrived, then stopping")
            self.draining_since = time.monotonic()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """Each 0.1 s: end the drain once the socket has been quiet."""
        if self.draining_since is not None and not self.should_exit:
            now = time.monotonic()
            quiet = now - max(self.activity.last, self.draining_since) >= DRAIN_IDLE
            if quiet or now - self.draining_since >= DRAIN_MAX:
                self.should_exit = True
        return await super().on_tick(counter)


def create_asgi(planbot: Planbot, activity: Activity | None = None) -> Starlette:
    """The ASGI app serving Slack's requests with the given bot.

    It delivers nothing itself: the outbox and the sweep are the delivery worker's
    (`planbot deliver`, which `serve` starts beside it).
    """

    seen = activity or Activity()

    async def events(request: Request) -> Response:
        arrived = time.monotonic()
        seen.touch()
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
        # the database is waited for no longer than what is left of the request's budget (the
        # other requests it waited behind on this loop included): then the person is told
        # that planbot is busy, within Slack's 3 s
        with answering_within(REQUEST_WAITS.lock, since=arrived):
            result = planbot.app.dispatch(bolt_request)
        seen.touch()
        return Response(
            content=result.body,
            status_code=result.status,
            headers={k: v[0] for k, v in result.headers.items() if v},
        )

    healthz = health_endpoint(
        planbot.service.store, min_free_bytes=planbot.settings.health_min_free_mb << 20
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        planbot.start(deliver=False, sweep=False)
        # What was loaded to start (modules, the app, the catalog) lives as long as the process:
        # out of the collector's sight, full collections no longer walk it under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            planbot.close()

    return Starlette(
        routes=[
            Route("/slack/events", metrics.observed(events), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics.endpoint(planbot), methods=["GET"]),
        ],
        lifespan=lifespan,
    )


#: the health check's own threads: a probe that hangs holds one, never a request's
_PROBES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthz")


def health_endpoint(
    store: Store, *, min_free_bytes: int
) -> Callable[[Request], Awaitable[Response]]:
    """`GET /healthz`: 200 `{"ok": true}` when the database takes a small write within
    `HEALTH_WAIT` seconds (`Store.ping`, in a thread of its own, so neither the event loop nor
    the requests wait for it), else 503 `{"ok": false}`. Why it failed is logged, never shown:
    the error text names hosts and ports."""

    async def healthz(request: Request) -> Response:
        loop = asyncio.get_running_loop()
        try:
            probe = loop.run_in_executor(
                _PROBES,
                functools.partial(store.ping, timeout=HEALTH_WAIT, min_free_bytes=min_free_bytes),
            )
            await asyncio.wait_for(probe, timeout=HEALTH_WAIT + 0.5)
        except Exception as err:
            reason = "no answer in time" if isinstance(err, TimeoutError) else err
            log.warning("health check failed: %s: %s", type(err).__name__, _one_line(reason))
            return JSONResponse({"ok": False}, status_code=503)
        return JSONResponse({"ok": True})

    return healthz


def _one_line(reason: object) -> str:
    return " ".join(str(reason).split())[:300]


def serve(
    planbot: Planbot,
    *,
    host: str,
    port: int,
    delivery: DeliveryChild | None,
    shared_port: bool = False,
    parent: int | None = None,
) -> None:
    """Serve HTTP mode until SIGINT/SIGTERM (what has arrived is answered first).

    `delivery` is the worker started beside the server and stopped after it (None when the
    operator runs `planbot deliver` apart). `shared_port`: bind with SO_REUSEPORT, as one of the
    processes of `serve_workers`; `parent`: stop (draining) when that process is gone.
    """
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with this
    # handler a SIGTERM ends in exit status 0 rather than death by signal (-15).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if delivery is not None:
        delivery.start()
    if parent is not None:
        stop_when_orphaned(parent, lambda: os.kill(os.getpid(), signal.SIGTERM))
    activity = Activity()
    config = uvicorn.Config(create_asgi(planbot, activity), host=host, port=port, **UVICORN_OPTIONS)
    sockets = [_shared_socket(host, port)] if shared_port else None
    try:
        DrainingServer(config, activity).run(sockets=sockets)
    finally:
        if delivery is not None:
            delivery.stop()


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket several processes bind at once; the kernel spreads connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(int(UVICORN_OPTIONS["backlog"]))
    return sock


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve_workers(
    *,
    host: str,
    port: int,
    workers: int,
    delivery: DeliveryChild | None,
) -> None:
    """Serve with `workers` processes on one port, each a whole `planbot serve` of its own.

    Each binds the port with SO_REUSEPORT, so the kernel spreads new connections evenly among
    them (a shared listening socket would let whichever process is idle at that instant take
    them all). One process here watches them: one that dies is started again; on SIGTERM or SIGINT
    each is sent SIGTERM and drains as a single server does; the delivery worker runs once, beside
    them.
    """
    argv = [
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-delivery",
        "--shared-port",
        "--parent",
        str(os.getpid()),
    ]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    if delivery is not None:
        delivery.start()
    servers = [ChildProcess(argv, name="server process") for _ in range(workers)]
    for server in servers:
        server.start()
    log.info("serving with %d processes on port %d", workers, port)
    try:
        stopping.wait()
    finally:
        for server in servers:  # all drain at once
            server.terminate()
        deadline = time.monotonic() + 15
        for server in servers:
            server.wait(deadline - time.monotonic())
        if delivery is not None:
            delivery.stop()
