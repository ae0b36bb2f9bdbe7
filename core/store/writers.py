"""The queue SQLite's writers wait in, across threads and processes."""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import DatabaseBusy
from core.store.waits import REQUEST_WAITS, Waits, allowed, gave_up, waited, waits_of

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

    A writer waits no longer than the engine's waits allow (`core.store.waits`): past that,
    `DatabaseBusy`. When the file lock is not free at once, it is waited for by a helper thread
    on a descriptor of its own, so the kernel still hands it over, and a writer that gave up
    leaves it to the helper to let go of as soon as it gets it.
    """

    def __init__(self, database: str | None, waits: Waits = REQUEST_WAITS) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._waits = waits
        self._path = f"{database}-writer.lock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._holding: int | None = None  # the descriptor holding the file lock
        if self._path is not None and fcntl is not None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        """Wait for the turn of this thread (re-entrant within a thread); DatabaseBusy when
        it does not come within the wait allowed."""
        asked = time.perf_counter()
        longest = allowed(self._waits.lock)
        if not self._lock.acquire(timeout=longest):
            gave_up()
            raise DatabaseBusy(longest, "writer_queue")
        self._depth += 1
        if self._depth == 1 and self._fd is not None:
            try:
                self._holding = self._file_lock(longest - (time.perf_counter() - asked))
            except BaseException:
                self._depth -= 1
                self._lock.release()
                raise
        if self._depth == 1:
            waited("writer_queue", time.perf_counter() - asked)

    def _file_lock(self, timeout: float) -> int:
        """The descriptor that now holds the file lock (DatabaseBusy after `timeout`)."""
        assert self._fd is not None and self._path is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self._fd
        except BlockingIOError:
            pass
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        got = threading.Event()
        guard = threading.Lock()
        abandoned = False

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                os.close(fd)
                return
            with guard:
                if abandoned:
                    os.close(fd)  # closing lets go of the lock
                    return
                got.set()

        threading.Thread(target=wait, name="writer-queue", daemon=True).start()
        if got.wait(max(0.0, timeout)):
            return fd
        with guard:
            if got.is_set():
                return fd
            abandoned = True
        gave_up()
        raise DatabaseBusy(self._waits.lock, "writer_queue")

    def release(self) -> None:
        """Let the next writer in."""
        if self._depth == 1 and self._holding is not None:
            holding, self._holding = self._holding, None
            fcntl.flock(holding, fcntl.LOCK_UN)
            if holding != self._fd:
                os.close(holding)
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
            queue = _WRITER_QUEUES[engine.pool] = WriterQueue(engine.url.database, waits_of(engine))
        return queue
