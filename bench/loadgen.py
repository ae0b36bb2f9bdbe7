"""An asyncio load generator for signed Slack requests: bounded in count and time, loopback only.

`run_load` sends `count` POST requests built by a callable (so every body can differ and carry a
fresh signature) over `concurrency` keep-alive connections, and returns throughput and latency.
It speaks minimal HTTP/1.1 over raw asyncio streams (on uvloop when installed): on this 2-core
machine the client shares the CPU with the server under test, and this costs it several times less
CPU per request than ``httpx.AsyncClient`` (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

__all__ = ["LoadResult", "Request", "check_loopback", "run", "run_load", "summary"]

LATE_AFTER_S = 3.0  # Slack shows the user an error when an ack takes longer than this
MAX_COUNT = 200_000  # hard bound on the requests of one run
MAX_SECONDS = 600.0  # hard bound on the duration of one run

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One HTTP POST to send: its body and headers (Content-Length and Host are added)."""

    body: bytes
    headers: Mapping[str, str]


@dataclass
class LoadResult:
    """What a load run measured; latencies in milliseconds, sorted."""

    concurrency: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    late: int = 0
    bodies: list[bytes | None] | None = None

    @property
    def count(self) -> int:
        """Requests that completed, whatever their outcome."""
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        """Completed requests per second of wall time."""
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def non_200(self) -> int:
        """Requests that did not end in HTTP 200, connection errors and timeouts included."""
        return self.count - self.statuses.get(200, 0)

    def percentile(self, q: float) -> float:
        """The nearest-rank `q` quantile (0 < q <= 1) of the latencies, in ms."""
        if not self.latencies_ms:
            return math.nan
        rank = max(1, math.ceil(q * len(self.latencies_ms)))
        return self.latencies_ms[min(rank, len(self.latencies_ms)) - 1]

    @property
    def p50(self) -> float:
        """Median latency, ms."""
        return self.percentile(0.50)

    @property
    def p90(self) -> float:
        """90th percentile latency, ms."""
        return self.percentile(0.90)

    @property
    def p99(self) -> float:
        """99th percentile latency, ms."""
        return self.percentile(0.99)

    @property
    def max(self) -> float:
        """Slowest request, ms."""
        return self.latencies_ms[-1] if self.latencies_ms else math.nan


class _ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as this client understands it."""


def check_loopback(url: str) -> tuple[str, int, str]:
    """Split an http URL into (host, port, path); refuse any host that is not loopback."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only plain http URLs are supported: {url!r}")
    port = parts.port or 80
    for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise ValueError(f"refusing to send load to a non-loopback address: {url!r}")
    return parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _encode(request: Request, host: str, port: int, path: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(request.body)}",
    ]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "content-length"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Read one response: (status, body, keep the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as err:
        raise _ProtocolError(lines[0]) from err
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), keep_alive
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep_alive


async def run_load(
    url: str,
    build: Callable[[int], Request],
    *,
    count: int,
    concurrency: int,
    time_limit: float = 60.0,
    timeout: float = 10.0,
    collect_bodies: bool = False,
) -> LoadResult:
    """Send up to `count` requests, `build(i)` for i in 0..count-1, `concurrency` at a time.

    All requests are built, and all connections opened, before the clock starts. No request is
    started after `time_limit` seconds; those in flight are awaited (each for `timeout` at most).
    """
    if not 0 < count <= MAX_COUNT or not 0 < concurrency <= count:
        raise ValueError(f"need 0 < concurrency ({concurrency}) <= count ({count}) <= {MAX_COUNT}")
    time_limit = min(time_limit, MAX_SECONDS)
    host, port, path = check_loopback(url)
    payloads = [_encode(build(i), host, port, path) for i in range(count)]

    result = LoadResult(concurrency=concurrency, seconds=0.0, latencies_ms=[])
    bodies: list[bytes | None] = [None] * count
    next_index = 0
    deadline = 0.0

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        with contextlib.suppress(OSError):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        nonlocal next_index
        while next_index < count and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            status = 0
            try:
                if conn is None:
                    conn = await connect()
                reader, writer = conn
                writer.write(payloads[i])
                status, body, keep_alive = await asyncio.wait_for(_read_response(reader), timeout)
                if collect_bodies:
                    bodies[i] = body
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                _ProtocolError,
                TimeoutError,
            ):
                keep_alive = False
                result.errors += 1
            elapsed = time.perf_counter() - started
            result.latencies_ms.append(elapsed * 1000.0)
            result.statuses[status] += 1
            if elapsed > LATE_AFTER_S:
                result.late += 1
            if not keep_alive and conn is not None:
                conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    opened = await asyncio.gather(*(connect() for _ in range(concurrency)), return_exceptions=True)
    conns = [c if isinstance(c, tuple) else None for c in opened]
    start = time.perf_counter()
    deadline = start + time_limit
    await asyncio.gather(*(worker(c) for c in conns))
    result.seconds = time.perf_counter() - start
    result.latencies_ms.sort()
    if collect_bodies:
        result.bodies = bodies
    return result


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a planbot dependency on POSIX
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def summary(result: LoadResult) -> str:
    """One line: count, req/s, latency percentiles, failures."""
    return (
        f"n={result.count} {result.rps:.0f} req/s p50={result.p50:.1f} p90={result.p90:.1f} "
        f"p99={result.p99:.1f} max={result.max:.1f} ms non200={result.non_200} late={result.late}"
    )
