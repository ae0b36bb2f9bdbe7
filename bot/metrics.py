"""planbot's Prometheus metrics: what it answered, how fast, what waits to be delivered.

Requests are observed at the server edge (`observed`, around the Slack endpoint): one counter
increment and one histogram observation per request, with the kind and outcome the listeners
noted (`bot.observe`). Deliveries and sweeps are observed in the delivery worker (`instrument`
wraps its Slack, response_url and provisioning ports and its sweep). Database waits are reported
by the store (`core.observe_waits`). The outbox's backlog is read through the store when
`/metrics` is scraped (`BacklogCollector`, `core.outbox_backlog`): it is the same for every
process, it is right even when no worker runs (which is when it matters), and it costs a few
indexed reads per scrape rather than a write per delivery.

With `PROMETHEUS_MULTIPROC_DIR` set (`bot.metricsdir`, done by `planbot serve` and `planbot
deliver`), every process writes its figures to files there and a scrape of any of them adds all
of them up; a process that ended is marked dead (`process_ended`) so that its live gauges go.

No label carries user data: kinds, outcomes, destinations and results are fixed words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hmac
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bot import observe
from bot.metricsdir import VARIABLE
from core import DeliveryError, Store, SweepReport, observe_waits, outbox_backlog, utcnow

if TYPE_CHECKING:
    from bot.app import Planbot

__all__ = [
    "BacklogCollector",
    "Exporter",
    "authorized",
    "endpoint",
    "instrument",
    "observed",
    "process_ended",
    "serve_metrics",
]

log = logging.getLogger(__name__)
requests_log = logging.getLogger("planbot.requests")

#: Slack shows an error after 3 s without an ack
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SWEEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "planbot_requests",
    "Slack requests answered, by kind (command:<word>, action:<button>) and outcome",
    ["kind", "outcome"],
)
ACK_SECONDS = Histogram(
    "planbot_ack_seconds",
    "Time from a Slack request's arrival to its answer (the ack), by kind",
    ["kind"],
    buckets=ACK_BUCKETS,
)
DELIVERIES = Counter(
    "planbot_deliveries",
    "Outbox deliveries tried, by destination kind and result (delivered, retry, dead)",
    ["destination", "result"],
)
DELIVERY_SECONDS = Histogram(
    "planbot_delivery_seconds",
    "Time one outbox delivery took (Slack, a response_url or the provisioner answering)",
    ["destination"],
    buckets=DELIVERY_BUCKETS,
)
SWEEPS = Counter("planbot_sweeps", "Lifecycle sweeps, by result (ok, failed)", ["result"])
SWEEP_SECONDS = Histogram(
    "planbot_sweep_seconds", "Time one lifecycle sweep took", buckets=SWEEP_BUCKETS
)
SWEEP_ACTIONS = Counter(
    "planbot_sweep_actions", "What the lifecycle sweeps did, by action", ["action"]
)
SWEEP_FAILURES = Counter("planbot_sweep_failures", "Lifecycle jobs that failed, by job", ["job"])
DB_WAIT_SECONDS = Histogram(
    "planbot_db_wait_seconds",
    "Time a write waited for its turn at the database: writer_queue (SQLite's writers, every "
    "process) or audit_chain_head (PostgreSQL: the lock every change takes in turn)",
    ["what"],
    buckets=WAIT_BUCKETS,
)
PROCESSES = Gauge(
    "planbot_processes",
    "planbot processes running, by role (server, deliver, socket)",
    ["role"],
    multiprocess_mode="livesum",
)

Endpoint = Callable[[Request], Awaitable[Response]]


# --- the server edge -------------------------------------------------------------------------


def observed(events: Endpoint) -> Endpoint:
    """The Slack endpoint, counted: each request by kind and outcome, with its ack time.

    A request the listeners described is counted as they said; one turned away before them
    (bad signature, malformed, too large) by its HTTP status. One line per request goes to the
    `planbot.requests` log: at INFO for button presses and anything not `ok`, else at DEBUG.
    """
    children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def count(info: observe.RequestInfo, status: int) -> None:
        outcome = info.finish(status)
        seconds = time.perf_counter() - info.started
        key = (info.kind, outcome)
        pair = children.get(key)
        if pair is None:
            pair = children[key] = (REQUESTS.labels(*key), ACK_SECONDS.labels(info.kind))
        pair[0].inc()
        pair[1].observe(seconds)
        level = logging.INFO if outcome != "ok" or info.kind[:7] == "action:" else logging.DEBUG
        if requests_log.isEnabledFor(level):
            _log_request(level, info, seconds)

    async def observed_events(request: Request) -> Response:
        info, token = observe.begin()
        try:
            response = await events(request)
        except BaseException:
            count(info, 500)
            raise
        finally:
            observe.end(token)
        count(info, response.status_code)
        return response

    return observed_events


def _log_request(level: int, info: observe.RequestInfo, seconds: float) -> None:
    milliseconds = round(seconds * 1000, 2)
    who = f" by {info.user}" if info.user else ""
    about = f" on {info.app}" if info.app else ""
    requests_log.log(
        level,
        "request %s: %s%s%s: %s in %.1f ms",
        info.id,
        info.kind,
        who,
        about,
        info.outcome,
        milliseconds,
        extra={"request": info, "duration_ms": milliseconds},
    )


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an Authorization header carries the bearer token (always, when there is none).

    Compared in constant time, so the answer's timing says nothing of how much matched.
    """
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    expected = token.encode("utf-8")
    offered = given.strip().encode("utf-8", errors="replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered, expected)


def endpoint(planbot: Planbot, *, role: str = "server") -> Endpoint:
    """`GET /metrics` of a server process (which this counts as running, with its waits)."""
    exporter = Exporter(planbot.service.store)
    token = planbot.settings.metrics_token
    _count_process(role)

    async def metrics(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), token):
            return Response(
                "a bearer token is required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="planbot metrics"'},
                media_type="text/plain",
            )
        body = await run_in_threadpool(exporter.render)  # files and a database read
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


# --- rendering -------------------------------------------------------------------------------


class BacklogCollector:
    """The outbox's backlog and whether the database answered, read at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """planbot_database_up, and when it is up the outbox gauges."""
        try:
            backlog = outbox_backlog(self.store)
        except Exception as err:  # a scrape must still answer: say the database is down
            log.warning("metrics: could not read the outbox: %s", str(err).splitlines()[0][:200])
            yield GaugeMetricFamily(
                "planbot_database_up", "1 when the database answered this scrape", value=0
            )
            return
        yield GaugeMetricFamily(
            "planbot_database_up", "1 when the database answered this scrape", value=1
        )
        yield GaugeMetricFamily(
            "planbot_outbox_pending",
            "Outbox entries (audit messages, card replacements, provisioning calls) not yet "
            "delivered",
            value=backlog.pending,
        )
        yield GaugeMetricFamily(
            "planbot_outbox_oldest_seconds",
            "Seconds the oldest undelivered outbox entry has waited (0 when none waits)",
            value=backlog.oldest_age(utcnow()),
        )
        yield GaugeMetricFamily(
            "planbot_outbox_dead",
            "Outbox entries given up (a permanent failure, such as a channel the bot is not in)",
            value=backlog.dead,
        )


class _EveryProcess:
    """Every process's figures, from the files of the metrics directory.

    A process creates its file when it first counts something of a type, and the file is empty
    for an instant before it is sized: read then, prometheus-client's own collector fails the
    whole scrape. An empty file holds nothing yet, so it is left out.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        files = []
        for path in glob.glob(os.path.join(self.directory, "*.db")):
            with contextlib.suppress(FileNotFoundError):  # a dead process's live gauges, gone
                if os.path.getsize(path) > 0:
                    files.append(path)
        return iter(MultiProcessCollector.merge(files, accumulate=True))


class _ThisProcess:
    """The default registry's metrics (this process alone), when not in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


class Exporter:
    """Renders every process's metrics (or this one's) and the backlog, in the text format."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        directory = os.environ.get(VARIABLE)
        if directory:
            self.registry.register(_EveryProcess(directory))
        else:
            self.registry.register(_ThisProcess())
        self.registry.register(BacklogCollector(store))

    def render(self) -> bytes:
        """The exposition."""
        return generate_latest(self.registry)


# --- the delivery worker ---------------------------------------------------------------------


def _observe_delivery(destination: str, send: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = "delivered"
    try:
        return send()
    except DeliveryError as err:
        result = "dead" if err.permanent else "retry"
        raise
    except Exception:  # the dispatcher retries what it did not expect
        result = "retry"
        raise
    finally:
        DELIVERY_SECONDS.labels(destination).observe(time.perf_counter() - started)
        DELIVERIES.labels(destination, result).inc()


class _ObservedNotifier:
    """A channel notifier, counted by destination kind: the audit or approvals channel, another
    channel, a person (a requester told how their request ended), or home tabs (drawn)."""

    def __init__(self, inner: Any, channels: Mapping[str, str]) -> None:
        self.inner = inner
        self.channels = channels

    def send(
        self, destination: str, payload: Mapping[str, Any], **options: Any
    ) -> Mapping[str, Any] | None:
        kind = self.channels.get(destination) or _destination_kind(destination)
        return _observe_delivery(kind, lambda: self.inner.send(destination, payload, **options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _destination_kind(destination: str) -> str:
    if destination == "home" or destination.startswith("home:"):
        return "home"
    return "person" if destination[:1] in ("U", "W") else "channel"


class _ObservedReplier:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        _observe_delivery("response_url", lambda: self.inner.reply(url, message))


class _ObservedProvisioner:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def provision(self, change: Mapping[str, Any]) -> None:
        _observe_delivery("provisioner", lambda: self.inner.provision(change))


def _observe_sweep(report: SweepReport, seconds: float) -> None:
    SWEEP_SECONDS.observe(seconds)
    SWEEPS.labels("failed" if report.failed else "ok").inc()
    for field in dataclasses.fields(report):
        value = getattr(report, field.name)
        if isinstance(value, int) and value:
            SWEEP_ACTIONS.labels(field.name).inc(value)
    for job in report.failed:
        SWEEP_FAILURES.labels(job).inc()


def instrument(planbot: Planbot, *, role: str) -> None:
    """Count this process's deliveries, sweeps and database waits (the worker; Socket Mode)."""
    dispatcher = planbot.dispatcher
    settings = planbot.settings
    channels = {}
    if settings.approvals_channel:
        channels[settings.approvals_channel] = "approvals_channel"
    if settings.audit_channel:
        channels[settings.audit_channel] = "audit_channel"
    if not isinstance(dispatcher.notifier, _ObservedNotifier):
        dispatcher.notifier = _ObservedNotifier(dispatcher.notifier, channels)
        dispatcher.provisioner = _ObservedProvisioner(dispatcher.provisioner)
        if dispatcher.replier is not None:
            dispatcher.replier = _ObservedReplier(dispatcher.replier)
        lifecycle = planbot.lifecycle
        sweep = lifecycle.sweep

        def timed_sweep(now: Any = None) -> SweepReport:
            started = time.perf_counter()
            report = sweep(now)
            _observe_sweep(report, time.perf_counter() - started)
            return report

        # its timer (and `planbot tick`) call self.sweep: this one, on this instance
        lifecycle.sweep = timed_sweep  # type: ignore[method-assign]
    _count_process(role)


def _count_process(role: str) -> None:
    PROCESSES.labels(role).set(1)
    observe_waits(_observe_wait)


_WAITS: dict[str, Any] = {}


def _observe_wait(what: str, seconds: float) -> None:
    histogram = _WAITS.get(what)
    if histogram is None:
        histogram = _WAITS[what] = DB_WAIT_SECONDS.labels(what)
    histogram.observe(seconds)


def process_ended(pid: int) -> None:
    """A child process ended: its live gauges go (its counts stay, as counts should)."""
    directory = os.environ.get(VARIABLE)
    if directory:
        mark_process_dead(pid, directory)


# --- a metrics port of its own (the delivery worker run apart) --------------------------------


def serve_metrics(planbot: Planbot, *, host: str, port: int) -> ThreadingHTTPServer:
    """Serve `GET /metrics` and `GET /healthz` on a port of their own, from a thread.

    For `planbot deliver` (and Socket Mode) run on their own, which have no HTTP server: the
    orchestrator probes /healthz (the database answers) and Prometheus scrapes /metrics.
    """
    store = planbot.service.store
    exporter = Exporter(store)
    token = planbot.settings.metrics_token

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes and probes are not worth a line each."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                if not authorized(self.headers.get("Authorization"), token):
                    self._send(401, b"a bearer token is required\n", "text/plain")
                    return
                self._send(200, exporter.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                try:
                    store.ping(min_free_bytes=planbot.settings.health_min_free_mb << 20)
                except Exception as err:
                    log.warning("health check failed: %s: %s", type(err).__name__, err)
                    self._send(503, b'{"ok": false}', "application/json")
                    return
                self._send(200, b'{"ok": true}', "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="planbot metrics"')
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
