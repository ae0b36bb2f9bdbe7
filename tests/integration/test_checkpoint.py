"""SQLite's write-ahead log is copied back by `checkpoint`, not by the commits of the acks."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable

from sqlalchemy.engine import Engine

from core import ChangeRequest, Checkpointer, Operation, Plan, PlanService, checkpoint
from core.store.db import WAL_BACKSTOP_PAGES
from tests.integration.conftest import ADA
from tests.support.waiting import eventually

SEED = "app_id,name,plan,created_at\n" + "\n".join(
    f"14000000{n:02d},dev-{n},developer,2026-11-01" for n in range(30)
)


def plan_in_database_file(database: str, app_id: str) -> str | None:
    """The app's plan as the database file alone holds it (a copy, without the log)."""
    copy = f"{database}.copy"
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    try:
        row = connection.execute("SELECT plan FROM app WHERE app_id = ?", (app_id,)).fetchone()
    finally:
        connection.close()
    return str(row[0]) if row else None


def test_confirmations_leave_the_log_for_the_checkpoint_to_copy(
    engine: Engine, service: PlanService, seed: Callable[..., int]
) -> None:
    seed(SEED)
    for n in range(30):
        change = ChangeRequest(Operation.UPGRADE, app=f"14000000{n:02d}", plan=Plan.PREMIUM)
        pending = service.request(change, actor=ADA)
        assert service.confirm(pending.id, actor=ADA).state == "applied"
    if engine.dialect.name != "sqlite":
        checkpoint(engine)  # nothing to do on PostgreSQL
        return
    database = str(engine.url.database)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == (
            WAL_BACKSTOP_PAGES
        )
    assert plan_in_database_file(database, "1400000029") is None  # all still in the log
    checkpoint(engine)
    assert plan_in_database_file(database, "1400000029") == "premium"  # copied back
    assert service.status("1400000029", actor=ADA).app.plan is Plan.PREMIUM


def test_the_checkpointer_copies_the_log_back_on_its_timer(
    engine: Engine, service: PlanService, seed: Callable[..., int]
) -> None:
    checkpointer = Checkpointer(engine, every=0.05)
    checkpointer.start()
    try:
        seed(SEED)
        if engine.dialect.name != "sqlite":
            return  # nothing to copy on PostgreSQL: no thread was started
        database = str(engine.url.database)
        eventually(
            lambda: plan_in_database_file(database, "1400000029") is not None,
            5,
            "the log copied back into the database file",
        )
    finally:
        checkpointer.stop()
