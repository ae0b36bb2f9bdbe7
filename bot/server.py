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
import resource
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import parse_qs, parse_qsl

import uvicorn
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.app import Planbot
from bot.edge import BodyTimeout, BodyTooLarge, read_body, signature_problem, ssl_check_ping
from bot.worker import ChildProcess, DeliveryChild, stop_when_orphaned
from core import HEALTH_WAIT, REQUEST_WAITS, Store, answering_within

__all__ = ["create_asgi", "serve", "serve_workers"]

log = logging.getLogger(__name__)

#: seconds a connection may take to send a request's headers (from its opening, or from the
#: answer to its last request): a client that trickles them is cut off
HEADER_TIMEOUT = 5.0
#: at most this many connections of a process wait for a request's headers; past it, the one
#: that has waited longest is closed (new connections are never refused for it)
MAX_WAITING = 2048
#: the most bytes of headers a request may send
MAX_HEADER_BYTES = 64 * 1024
#: in-flight requests get 8 s to finish on SIGTERM; a deep backlog absorbs bursts of connections;
#: past `limit_concurrency` connections (or requests in hand) a process answers 503; an idle
#: keep-alive connection is closed after `timeout_keep_alive` seconds
UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "log_config": None,  # uvicorn's lines go through planbot's logging (text, or JSON)
    "log_level": "info",
    "timeout_graceful_shutdown": 8,
    "backlog": 2048,
    "limit_concurrency": 4096,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
}
#: on SIGTERM, requests keep being answered until none arrived for DRAIN_IDLE s (DRAIN_MAX at most)
DRAIN_IDLE = 0.3
DRAIN_MAX = 5.0
MAX_BODY = 1 << 20  # Slack's payloads are far smaller; anything bigger is not from Slack
#: seconds a request's body may take to arrive once its headers have (Slack sends it at once)
BODY_TIMEOUT = 10.0
#: what a request turned away at the door is answered (and the connection closed: its body is
#: not read further)
CLOSE = {"connection": "close"}


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


def _refused(planbot: Planbot, bolt_request: BoltRequest) -> Response | None:
    """The answer to a signed request from another workspace or app (None: it is ours). Its
    response_urls that may not be posted to are dropped here, before anything can queue them."""
    body = bolt_request.body
    context = bolt_request.context
    answer = planbot.foreign(body, context)
    if answer is not None:
        return JSONResponse(answer) if answer else Response(status_code=200)
    dropped = planbot.response_urls.keep_allowed(body)
    if dropped:
        context.pop("response_url", None)
        log.warning(
            "ignored a response_url on %s, which is not in PLANBOT_RESPONSE_URL_HOSTS",
            ", ".join(dropped),
        )
    return None


def _headers(request: Request) -> dict[str, str | Sequence[str]]:
    """Every header's values by lower-case name, in one pass over the raw headers."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.raw:
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return cast(dict[str, str | Sequence[str]], headers)


class _Cuts:
    """Connections closed before their headers, by reason: one log line per 10 s at most."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.since = time.monotonic()

    def note(self, why: str) -> None:
        self.counts[why] = self.counts.get(why, 0) + 1
        now = time.monotonic()
        if now - self.since >= 10:
            said = ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts.items()))
            log.warning("closed connections before a request: %s", said)
            self.counts, self.since = {}, now


_cuts = _Cuts()


def _guarded(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, with a deadline for each request's headers and a bound on the
    connections waiting for them (uvicorn itself waits for headers for ever).

    A connection must send a request's headers within `HEADER_TIMEOUT` of opening (or of the
    answer to its previous request), in at most `MAX_HEADER_BYTES`, or it is closed. At most
    `MAX_WAITING` connections of a process wait so at once: a new one closes the one that has
    waited longest, so a flood of connections that never finish their headers can't crowd out
    requests that do. What is read after the headers (the body) has its own deadline, in the
    route (`BODY_TIMEOUT`).
    """

    waiting: OrderedDict[Any, None] = OrderedDict()

    class Guarded(base):  # type: ignore[misc, valid-type]
        _timer: asyncio.TimerHandle | None = None
        _armed: Any = None
        _header_bytes = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            awaiting = self._timer is not None and self.cycle is self._armed
            super().data_received(data)
            if awaiting and self.cycle is self._armed:  # still no complete headers
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._cut("headers too large")

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            self._disarm()
            self._armed = self.cycle
            self._header_bytes = 0
            self._timer = self.loop.call_later(HEADER_TIMEOUT, self._late)
            waiting[self] = None
            while len(waiting) > MAX_WAITING:
                oldest, _ = waiting.popitem(last=False)
                if oldest.cycle is oldest._armed and oldest._timer is not None:
                    oldest._cut("too many connections waiting for their headers")

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            waiting.pop(self, None)

        def _late(self) -> None:
            self._timer = None
            waiting.pop(self, None)
            if self.cycle is self._armed:
                self._cut("headers not received in time")

        def _cut(self, why: str) -> None:
            self._disarm()
            if not self.transport.is_closing():
                _cuts.note(why)
                self.transport.close()

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


def _http_protocol() -> type[asyncio.Protocol]:
    """httptools' protocol where it is installed (as uvicorn's "auto" picks), else h11's."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return _guarded(HttpToolsProtocol)
    except ImportError:  # pragma: no cover - httptools is a dependency where it builds
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return _guarded(H11Protocol)


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
        client = request.client.host if request.client else "?"
        try:
            body = await read_body(request, limit=MAX_BODY, timeout=BODY_TIMEOUT)
        except BodyTooLarge as err:
            log.warning("refused a request from %s: body too large (%s)", client, err)
            return JSONResponse({"error": "payload too large"}, status_code=413, headers=CLOSE)
        except BodyTimeout as err:
            log.warning("refused a request from %s: body too slow (%s)", client, err)
            return JSONResponse({"error": "request timeout"}, status_code=408, headers=CLOSE)
        decoded = body.decode("utf-8", errors="replace")
        if ssl_check_ping(decoded):  # Slack checking the certificate: nothing to act on
            return Response(status_code=200)
        secret = planbot.settings.signing_secret
        problem = "no signing secret set" if secret is None else None
        problem = problem or signature_problem(cast(str, secret), decoded, request.headers)
        if problem is not None:
            log.warning("refused a request from %s: no valid Slack signature (%s)", client, problem)
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            bolt_request = _bolt_request(decoded, request)
        except (ValueError, TypeError, AttributeError):  # signed, but not a Slack payload
            log.warning("refused a signed request whose body is not a Slack payload")
            return JSONResponse({"error": "malformed payload"}, status_code=400)
        refused = _refused(planbot, bolt_request)
        if refused is not None:
            return refused
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
        if planbot.installation is not None:
            # auth.test, before serving (in a thread: the loop stays free), then in the
            # background until Slack answers: which workspace this is
            await run_in_threadpool(planbot.installation.learn)
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
    _enough_file_descriptors()
    activity = Activity()
    config = uvicorn.Config(
        create_asgi(planbot, activity),
        host=host,
        port=port,
        http=_http_protocol(),
        **UVICORN_OPTIONS,
    )
    sockets = [_shared_socket(host, port)] if shared_port else None
    try:
        DrainingServer(config, activity).run(sockets=sockets)
    finally:
        if delivery is not None:
            delivery.stop()


def _enough_file_descriptors() -> None:
    """Room for the connections the server may hold (`limit_concurrency`), where the hard
    limit allows: many systems start processes with a soft limit of 1,024."""
    want = int(UVICORN_OPTIONS["limit_concurrency"]) + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


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
