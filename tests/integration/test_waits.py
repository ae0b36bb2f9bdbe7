"""How long the store waits for a database that does not answer, and what it says then."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core import (
    REQUEST_WAITS,
    ChangeRequest,
    CoreConfig,
    DatabaseBusy,
    Operation,
    PlanService,
    SqlStore,
    StoreUnwritable,
    answering_within,
    make_engine,
    upgrade_schema,
)
from tests.conftest import Clock
from tests.integration.conftest import ADA

APPS = "app_id,name,plan,created_at\n1400000001,dev-one,developer,2026-11-01\n"


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'planbot.sqlite3'}", waits=REQUEST_WAITS)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def locked(sqlite_file: Engine) -> Iterator[None]:
    """SQLite's write lock held by another connection (as another process would)."""
    holder = sqlite3.connect(str(sqlite_file.url.database), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


def test_a_request_waits_for_a_locked_database_only_its_budget(
    sqlite_file: Engine, config: CoreConfig, clock: Clock, tmp_path: Path
) -> None:
    service = PlanService(engine=sqlite_file, config=config, clock=clock)
    service.imports.from_csv(APPS, actor=ADA, now=clock())
    holder = sqlite3.connect(str(sqlite_file.url.database), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseBusy), answering_within(0.5):
            service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=ADA)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reader = sqlite3.connect(str(sqlite_file.url.database))
    assert reader.execute("SELECT count(*) FROM pending_request").fetchone() == (0,)
    reader.close()
    # the lock gone, the same request goes through (after the hurried moment has passed)
    time.sleep(REQUEST_WAITS.lock)
    with answering_within(2.0):
        service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=ADA)


def test_the_health_check_fails_on_a_locked_database_within_its_budget(
    sqlite_file: Engine, locked: None
) -> None:
    with pytest.raises(DatabaseBusy):
        SqlStore(sqlite_file).ping(timeout=0.5)


def test_the_health_check_fails_on_a_nearly_full_disk(sqlite_file: Engine) -> None:
    store = SqlStore(sqlite_file)
    store.ping(timeout=1.0, min_free_bytes=0)
    with pytest.raises(StoreUnwritable):
        store.ping(timeout=1.0, min_free_bytes=1 << 62)
