"""How long writers waited for their turn at the database, told to whoever asked (the metrics).

Two waits are measured where they happen: on SQLite, a writer's turn in the queue of writers
(`writer_queue`, `core.store.writers`: SQLite admits one writer at a time, and everything a
writer then reads, the audit chain's head included, is read without waiting); on PostgreSQL, a
change's wait for the head of the audit chain (`audit_chain_head`, `core.store.sql.SqlAudit`),
which every change locks in turn: it is where concurrent confirmations queue. With no observer
the cost is two clock reads.

And how long anyone may wait at all (`Waits`): a Slack request gives up after about 2 s
(`REQUEST_WAITS`, cut further to what is left of its budget: `answering_within`), so the
person is told within Slack's 3 s that planbot is busy (`DatabaseBusy`); the delivery worker and
the operator's commands wait longer (`BACKGROUND_WAITS`).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

__all__ = [
    "BACKGROUND_WAITS",
    "MIN_WAIT",
    "REQUEST_WAITS",
    "Waits",
    "allowed",
    "answer_timeout",
    "answering_within",
    "gave_up",
    "hurried",
    "left",
    "observe_waits",
    "set_waits",
    "waited",
    "waits_of",
]

_observers: list[Callable[[str, float], None]] = []


def observe_waits(callback: Callable[[str, float], None]) -> None:
    """Call `callback(what, seconds)` after each measured wait, in the thread that waited."""
    if callback not in _observers:
        _observers.append(callback)


def waited(what: str, seconds: float) -> None:
    """Tell the observers that a writer waited `seconds` for `what`."""
    for callback in _observers:
        callback(what, seconds)


# --- how long anyone waits for the database -------------------------------------------------


@dataclass(frozen=True)
class Waits:
    """How long a use of the database may wait for it before giving up (`DatabaseBusy`).

    `lock`: for a turn to write (SQLite's busy wait and its writers' queue; PostgreSQL's
    `lock_timeout`) and for a pooled connection; `statement`: PostgreSQL's `statement_timeout`,
    also how long the client waits for any answer (None: no limit); `connect`: PostgreSQL's
    `connect_timeout` (whole seconds, 2 at least: libpq's floor); `pre_ping`: a pooled
    PostgreSQL connection is tried before it is handed out (a failed try is followed by a new
    connection, which may wait `connect` more: more than a request's budget allows, so a
    request finds a dead connection by using it, and is told planbot is busy).
    """

    lock: float
    statement: float | None
    connect: int
    pre_ping: bool = True


#: a Slack request: told within Slack's 3 s that planbot is busy, rather than left waiting
REQUEST_WAITS = Waits(lock=2.0, statement=2.0, connect=2, pre_ping=False)
#: the delivery worker, its sweep and the operator's commands: nobody waits on them at a
#: prompt, so they wait out a long lock or a slow statement rather than fail
BACKGROUND_WAITS = Waits(lock=30.0, statement=300.0, connect=10)
#: the floor of a wait cut short by a request's deadline: enough for a database that answers
MIN_WAIT = 0.05

_deadline: ContextVar[float | None] = ContextVar("planbot_db_deadline", default=None)
#: when a wait for the database last ran out in this process
_gave_up_at = -1e9
_WAITS: weakref.WeakKeyDictionary[Any, Waits] = weakref.WeakKeyDictionary()


def set_waits(engine: Engine, waits: Waits) -> None:
    """Remember the waits an engine was made with (its pool's)."""
    _WAITS[engine.pool] = waits


def waits_of(engine: Engine) -> Waits:
    """The waits of an engine (`REQUEST_WAITS` if it was made elsewhere)."""
    return _WAITS.get(engine.pool, REQUEST_WAITS)


@contextlib.contextmanager
def answering_within(seconds: float, *, since: float | None = None) -> Iterator[None]:
    """Within this block (this thread or task), the database's waits end `seconds` after
    `since` (a `time.monotonic()`, default now): whatever the request waited for before
    (other requests on the event loop) counts, so each is answered within its budget."""
    token = _deadline.set((time.monotonic() if since is None else since) + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def gave_up() -> None:
    """A wait for the database just ran out (see `allowed`). A hurried try that failed does not
    count: the next request after the 2 s waits in full again, so the database's return is
    seen (at most one request every 2 s waits for a database that does not answer)."""
    global _gave_up_at
    now = time.monotonic()
    if now - _gave_up_at >= REQUEST_WAITS.lock:
        _gave_up_at = now


def hurried() -> bool:
    """Whether a request waiting now should not wait at all (see `allowed`)."""
    deadline = _deadline.get()
    if deadline is None:
        return False
    now = time.monotonic()
    return deadline - now < MIN_WAIT or now - _gave_up_at < REQUEST_WAITS.lock


def allowed(longest: float) -> float:
    """How long to wait now: `longest`, cut to what is left of the request's budget (never
    below `MIN_WAIT`); and only `MIN_WAIT` while another request's wait ran out in the last
    2 s: the requests that came in behind it (on the same event loop) would otherwise each wait
    in turn, and the last be answered long after Slack's 3 s. One request waits out a locked
    or silent database; those behind it try once and are told planbot is busy."""
    deadline = _deadline.get()
    if deadline is None:
        return longest
    if hurried():
        return MIN_WAIT
    return max(MIN_WAIT, min(longest, deadline - time.monotonic()))


def left() -> float | None:
    """Seconds left of the request's budget (None: no request is waiting)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def answer_timeout(waits: Waits) -> float | None:
    """How long the client waits for an answer from the database (None: no limit)."""
    if waits.statement is None:
        return None if _deadline.get() is None else allowed(REQUEST_WAITS.statement or 2.0)
    return allowed(waits.statement)
