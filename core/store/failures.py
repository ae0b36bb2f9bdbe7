"""What a database's failure means to the rest of core: busy (try again), or a name taken.

Drivers and SQLAlchemy raise their own exceptions; the unit of work turns the ones core has a
word for into core's: a wait that ran out (SQLite's lock, PostgreSQL's lock_timeout or
statement_timeout, a connection that could not be made or that stopped answering, no pooled
connection free) into `DatabaseBusy`; the unique index on app names into `DuplicateName`.
Anything else is left as it is (a bug, a full disk: the error handler's and the operator's).
"""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy as sa

from core.errors import DatabaseBusy
from core.store.runners import DuplicateName
from core.store.waits import gave_up

__all__ = ["NAME_INDEX", "translated"]

#: the unique index on app names (migration 0006_names)
NAME_INDEX = "ux_app_name_key"


def translated(err: BaseException, waited: float) -> BaseException | None:
    """Core's exception for a driver's `err` (None: none; leave it as it is)."""
    better = _translated(err, waited)
    if isinstance(better, DatabaseBusy):
        gave_up()
    return better


def _translated(err: BaseException, waited: float) -> BaseException | None:
    if isinstance(err, DatabaseBusy | DuplicateName):
        return None
    if isinstance(err, sa.exc.TimeoutError):  # no pooled connection came free in time
        return DatabaseBusy(waited, "pool")
    cause = err.orig if isinstance(err, sa.exc.DBAPIError) else err
    if isinstance(cause, sqlite3.IntegrityError):
        text = str(cause)
        return DuplicateName("app") if "app.name_key" in text else None
    if isinstance(cause, psycopg.errors.UniqueViolation):
        return DuplicateName("app") if cause.diag.constraint_name == NAME_INDEX else None
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause)
        return DatabaseBusy(waited, "lock") if "locked" in text or "busy" in text else None
    if isinstance(cause, psycopg.OperationalError):
        # lock_timeout, statement_timeout, a connection refused, timed out or gone silent
        return DatabaseBusy(waited, type(cause).__name__)
    return None
