"""The queue SQLite's writers wait in, across threads and processes."""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy.engine import Engine

from core.store.waits import waited

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: threads still queue, processes poll
    fcntl = None  # type: ignore[assignment]

__all__ = ["WriterQueue", "writer_queue"]


class WriterQueue:
    """The queue SQLite's writers wait in: a lock per process, and a file lock across them.

    SQLite admits one writer at a time and makes the others poll with sleeps of up to 100 ms;
    under a burst that convoy turns milliseconds of work into seconds of latency, and a server
    answering on its event loop would stall meanwhile. Writers queue here instead and start the
    moment the writer before them commits: threads of one process on a lock, processes (the
    server, its delivery worker, replicas) on an advisory lock of a file beside the database,
    which the kernel hands over without polling. Other programs still meet SQLite's own lock.
    """

    def __init__(self, database: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        if database and database != ":memory:" and fcntl is not None:
            self._fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        """Wait for the turn of this thread (re-entrant within a thread)."""
        asked = time.perf_counter()
        self._lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._lock.release()
                raise
        if self._depth == 1:
            waited("writer_queue", time.perf_counter() - asked)

    def release(self) -> None:
        """Let the next writer in."""
        if self._depth == 1 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._depth -= 1
        self._lock.release()


_WRITER_QUEUES: weakref.WeakKeyDictionary[Any, WriterQueue] = weakref.WeakKeyDictionary()
_WRITER_QUEUES_GUARD = threading.Lock()


def writer_queue(engine: Engine) -> WriterQueue | None:
    """On SQLite, the queue its writers wait in (None on other databases)."""
    if engine.dialect.name != "sqlite":
        return None
    with _WRITER_QUEUES_GUARD:
        queue = _WRITER_QUEUES.get(engine.pool)
        if queue is None:
            queue = _WRITER_QUEUES[engine.pool] = WriterQueue(engine.url.database)
        return queue
