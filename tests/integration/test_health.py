"""What the operator's tools read: the outbox's backlog, the owners' channels, database waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core import (
    ChangeRequest,
    CoreConfig,
    DeliveryError,
    Lifecycle,
    Operation,
    OutboxDispatcher,
    Plan,
    PlanService,
    observe_waits,
    outbox_backlog,
    owner_channels,
)
from core.store import waits
from tests.conftest import Clock
from tests.integration.conftest import ADA
from tests.integration.test_outbox import FakeNotifier, FakeProvisioner, enqueue

APPS = (
    "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at\n"
    "1400000001,dev-one,developer,2026-11-01,,active,CTEAM,2026-12-01,\n"
    "1400000002,dev-two,developer,2026-11-01,,active,CTEAM,2026-12-01,\n"
    "1400000003,std-other,standard,2025-01-01,,active,COTHER,,\n"
    "1400000004,nobody-s,developer,2026-11-01,,active,,2026-12-01,\n"
    "1400000005,long-gone,standard,2025-01-01,,disabled,CGONE,,2026-01-02\n"
)


def test_an_empty_outbox_has_no_backlog(engine: Engine, clock: Clock) -> None:
    backlog = outbox_backlog(engine)
    assert (backlog.pending, backlog.oldest, backlog.dead) == (0, None, 0)
    assert backlog.oldest_age(clock()) == 0.0


def test_the_backlog_counts_what_waits_and_dates_the_oldest(engine: Engine, clock: Clock) -> None:
    first = clock()
    enqueue(engine, first, ("A", "CAUDIT", 0), ("A", "CTEAM", 1))
    enqueue(engine, clock.advance(seconds=30), ("B", "CAUDIT", 2))
    backlog = outbox_backlog(engine)
    assert backlog.pending == 3 and backlog.dead == 0
    assert backlog.oldest == first
    assert backlog.oldest_age(clock.advance(seconds=15)) == pytest.approx(45.0)


def test_delivered_entries_leave_the_backlog_and_dead_ones_are_counted_apart(
    engine: Engine, clock: Clock
) -> None:
    enqueue(engine, clock(), ("A", "CGONE", 0), ("B", "CAUDIT", 1), ("C", "CAUDIT", 2))
    notifier = FakeNotifier()
    notifier.failures[0].append(DeliveryError("channel_not_found", permanent=True))
    notifier.failures[1].append(DeliveryError("Slack answered 500"))
    dispatcher = OutboxDispatcher(
        engine=engine, notifier=notifier, provisioner=FakeProvisioner(), clock=clock
    )
    dispatcher.deliver_due()
    backlog = outbox_backlog(engine)
    assert (backlog.pending, backlog.dead) == (1, 1)  # the retried one waits; the dead one not
    assert backlog.oldest == clock()
    clock.advance(minutes=5)
    dispatcher.deliver_due()
    assert outbox_backlog(engine).pending == 0
    assert outbox_backlog(engine).dead == 1


def test_owner_channels_are_listed_once_each_without_purged_apps(
    engine: Engine, seed: Any, clock: Clock, config: CoreConfig
) -> None:
    seed(APPS)
    assert owner_channels(engine) == ["CGONE", "COTHER", "CTEAM"]
    # a purged app's channel is no longer one the bot needs to post in
    service = PlanService(engine=engine, config=config, clock=clock)
    Lifecycle(engine=engine, service=service, clock=clock).sweep(clock() + timedelta(days=400))
    assert owner_channels(engine) == ["COTHER", "CTEAM"]


@pytest.fixture
def seen_waits() -> Iterator[list[tuple[str, float]]]:
    seen: list[tuple[str, float]] = []

    def record(what: str, seconds: float) -> None:
        seen.append((what, seconds))

    observe_waits(record)
    yield seen
    waits._observers.remove(record)


def test_a_confirmation_reports_its_waits_for_the_database(
    engine: Engine, seed: Any, clock: Clock, config: CoreConfig, seen_waits: list[Any]
) -> None:
    seed(APPS)
    service = PlanService(engine=engine, config=config, clock=clock)
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.PREMIUM), actor=ADA
    )
    seen_waits.clear()
    service.confirm(pending.id, actor=ADA)
    kinds = {what for what, _ in seen_waits}
    assert "audit_chain_head" in kinds
    if engine.dialect.name == "sqlite":
        assert "writer_queue" in kinds  # SQLite's writers queue; PostgreSQL's don't
    else:
        assert "writer_queue" not in kinds
    assert all(0 <= seconds < 10 for _, seconds in seen_waits)
