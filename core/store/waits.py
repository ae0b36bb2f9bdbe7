"""How long writers waited for their turn at the database, told to whoever asked (the metrics).

Two waits are measured where they happen: on SQLite, a writer's turn in the queue of writers
(`writer_queue`, `core.store.writers`: SQLite admits one writer at a time, and everything a
writer then reads, the audit chain's head included, is read without waiting); on PostgreSQL, a
change's wait for the head of the audit chain (`audit_chain_head`, `core.store.sql.SqlAudit`),
which every change locks in turn: it is where concurrent confirmations queue. With no observer
the cost is two clock reads.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["observe_waits", "waited"]

_observers: list[Callable[[str, float], None]] = []


def observe_waits(callback: Callable[[str, float], None]) -> None:
    """Call `callback(what, seconds)` after each measured wait, in the thread that waited."""
    if callback not in _observers:
        _observers.append(callback)


def waited(what: str, seconds: float) -> None:
    """Tell the observers that a writer waited `seconds` for `what`."""
    for callback in _observers:
        callback(what, seconds)
