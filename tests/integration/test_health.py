"""What the operator's tools read: the outbox's backlog, the owners' channels, database waits.

The backlog and the owners' channels are read through the store's port, so they are checked on
SQLite, on PostgreSQL and on the store in memory alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core import (
    ChangeRequest,
    CoreConfig,
    DatabaseBusy,
    DeliveryError,
    Operation,
    OutboxDispatcher,
    Plan,
    PlanService,
    SqlStore,
    Store,
    make_engine,
    observe_waits,
    outbox_backlog,
    owner_channels,
)
from core.audit import AuditRecord
from core.store import waits
from core.store.ports import OutboxEntry
from tests.conftest import Clock
from tests.integration.conftest import ADA, CLI
from tests.integration.test_outbox import Entry, FakeNotifier, FakeProvisioner
from tests.support.fake_store import FakeStore

APPS = (
    "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at\n"
    "1400000001,dev-one,developer,2026-11-01,,active,CTEAM,2026-12-01,\n"
    "1400000002,dev-two,developer,2026-11-01,,active,CTEAM,2026-12-01,\n"
    "1400000003,std-other,standard,2025-01-01,,active,COTHER,,\n"
    "1400000004,nobody-s,developer,2026-11-01,,active,,2026-12-01,\n"
    "1400000005,long-gone,standard,2025-01-01,,disabled,CGONE,,2026-01-02\n"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def store(request: pytest.FixtureRequest) -> Store:
    """The store on each database, and in memory."""
    if request.param == "memory":
        return FakeStore()
    return SqlStore(request.getfixturevalue(f"{request.param}_engine"))


def enqueue(store: Store, now: datetime, *entries: Entry) -> None:
    with store.unit_of_work() as uow:
        for app_id, destination, number in entries:
            uow.outbox.add(
                OutboxEntry(
                    kind="message",
                    topic="audit",
                    destination=destination,
                    app_id=app_id,
                    payload={"n": number},
                    created_at=now,
                )
            )
        uow.commit()


def test_an_empty_outbox_has_no_backlog(store: Store, clock: Clock) -> None:
    backlog = outbox_backlog(store)
    assert (backlog.pending, backlog.oldest, backlog.dead) == (0, None, 0)
    assert backlog.oldest_age(clock()) == 0.0


def test_the_backlog_counts_what_waits_and_dates_the_oldest(store: Store, clock: Clock) -> None:
    first = clock()
    enqueue(store, first, ("A", "CAUDIT", 0), ("A", "CTEAM", 1))
    enqueue(store, clock.advance(seconds=30), ("B", "CAUDIT", 2))
    backlog = outbox_backlog(store)
    assert backlog.pending == 3 and backlog.dead == 0
    assert backlog.oldest == first
    assert backlog.oldest_age(clock.advance(seconds=15)) == pytest.approx(45.0)


def test_delivered_entries_leave_the_backlog_and_dead_ones_are_counted_apart(
    store: Store, clock: Clock
) -> None:
    enqueue(store, clock(), ("A", "CGONE", 0), ("B", "CAUDIT", 1), ("C", "CAUDIT", 2))
    notifier = FakeNotifier()
    notifier.failures[0].append(DeliveryError("channel_not_found", permanent=True))
    notifier.failures[1].append(DeliveryError("Slack answered 500"))
    dispatcher = OutboxDispatcher(
        store=store, notifier=notifier, provisioner=FakeProvisioner(), clock=clock
    )
    dispatcher.deliver_due()
    backlog = outbox_backlog(store)
    assert (backlog.pending, backlog.dead) == (1, 1)  # the retried one waits; the dead one not
    assert backlog.oldest == clock()
    clock.advance(minutes=5)
    dispatcher.deliver_due()
    assert outbox_backlog(store).pending == 0
    assert outbox_backlog(store).dead == 1
    with store.unit_of_work(write=False) as uow:
        # the backlog's counts leave the delivered out; all the counts have them
        assert uow.outbox.counts(("pending", "dead")) == {"dead": 1}
        assert uow.outbox.counts() == {"delivered": 2, "dead": 1}


def test_owner_channels_are_listed_once_each_without_purged_apps(
    store: Store, clock: Clock, config: CoreConfig
) -> None:
    service = PlanService(store=store, config=config, clock=clock)
    service.imports.from_csv(APPS, actor=CLI, now=clock())
    assert owner_channels(store) == ["CGONE", "COTHER", "CTEAM"]
    # a purged app's channel is no longer one the bot needs to post in
    service.lifecycle.sweep(clock() + timedelta(days=400))
    assert owner_channels(store) == ["COTHER", "CTEAM"]


def test_the_store_answers_a_ping(store: Store) -> None:
    store.ping()  # returns: the database answers


def test_a_store_whose_database_is_gone_does_not_answer_a_ping() -> None:
    store = SqlStore(make_engine("postgresql+psycopg://planbot@127.0.0.1:9/gone"))  # nobody there
    try:
        with pytest.raises(DatabaseBusy):  # (the reason is logged, never shown)
            store.ping()
    finally:
        store.close()


@pytest.fixture
def seen_waits() -> Iterator[list[tuple[str, float]]]:
    seen: list[tuple[str, float]] = []

    def record(what: str, seconds: float) -> None:
        seen.append((what, seconds))

    observe_waits(record)
    yield seen
    waits._observers.remove(record)


@pytest.mark.parametrize("fast", [False, True], ids=["locking", "compiled"])
def test_a_confirmation_reports_its_waits_for_the_database(
    engine: Engine, seed: Any, clock: Clock, config: CoreConfig, seen_waits: list[Any], fast: bool
) -> None:
    seed(APPS)
    service = PlanService(engine=engine, config=config, clock=clock)
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.PREMIUM), actor=ADA
    )
    seen_waits.clear()
    if fast:
        service.confirm(pending.id, actor=ADA)  # the click's path: compiled statements
    else:
        with service.store.unit_of_work() as uow:  # a locking unit of work appending a record
            uow.audit.append(AuditRecord(at=clock(), actor_id="cli", action="test", outcome="ok"))
            uow.commit()
    kinds = {what for what, _ in seen_waits}
    if engine.dialect.name == "sqlite":
        # SQLite's writers queue for their turn; the chain's head is then read without a wait
        assert kinds == {"writer_queue"}
    else:
        # PostgreSQL's writers don't queue; each change waits for the chain's head in turn
        assert kinds == {"audit_chain_head"}
    assert all(0 <= seconds < 10 for _, seconds in seen_waits)
