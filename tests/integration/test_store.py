"""The store's two runners read and write alike, on both backends.

A unit of work runs on compiled statements (fast, optimistic: guarded writes) or on a pooled
connection (locking); the repositories are the same code on both, and these tests hold them to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    AccessPolicy,
    AppNotFound,
    Catalog,
    ChangeRequest,
    CoreConfig,
    Grant,
    NotYourRequest,
    Operation,
    Plan,
    PlanService,
    Rendered,
    RequestState,
    Role,
    SqlStore,
)
from core.audit import AuditRecord
from core.queries import nearest_names
from core.store.runners import StaleWrite
from core.store.statements import HEAD_INSERT, HEAD_READ, OUTBOX
from tests.conftest import SHANGHAI, Clock
from tests.integration.conftest import ADA, BOB
from tests.support.csvs import HEADER
from tests.support.records import audit_log

SEED = "\n".join(
    [
        HEADER,
        "1400000001,dev-chat,developer,2026-11-01,,active,CTEAM,2026-12-01,",
        "1400000002,std-chat,standard,2026-01-15,,active,,,",
        "1400000003,off-chat,premium,2021-01-15,legacy,disabled,CTEAM,,2026-11-01T00:00:00Z",
    ]
)
IDS = ("1400000001", "1400000002", "1400000003")


@pytest.fixture(autouse=True)
def apps(seed: Callable[..., int]) -> None:
    assert seed(SEED) == 3


def test_both_runners_read_the_same(engine: Engine, service: PlanService, clock: Clock) -> None:
    service.grant(Grant("user", "UBOB", Role.OPERATOR, "CTEAM"), label="bob", actor=ADA)
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    store = SqlStore(engine)
    until = clock() + timedelta(days=1)
    with store.unit_of_work(fast=True) as fast, store.unit_of_work(write=False) as locking:
        for app_id in IDS:
            assert fast.apps.get(app_id) == locking.apps.get(app_id)
            assert fast.history.segments(app_id, until=until) == locking.history.segments(
                app_id, until=until
            )
            assert fast.apps.with_segments(app_id, until=until) == (
                locking.apps.get(app_id),
                locking.history.segments(app_id, until=until),
            )
            assert fast.history.of(app_id, limit=10) == locking.history.of(app_id, limit=10)
        assert fast.apps.by_name("STD-chat") == locking.apps.by_name("std-chat")
        assert fast.grants.all() == locking.grants.all()
        assert fast.requests.get(pending.id) == locking.requests.get(pending.id)
        assert fast.audit.head() == locking.audit.head()
        assert fast.apps.get("1499999999") is None
        assert fast.apps.with_segments("1499999999", until=clock()) is None
        assert fast.apps.by_name("nope") == []
        state = fast.apps.get("1400000003")
    assert state is not None and state.disabled_at is not None
    assert state.disabled_at.utcoffset() == timedelta(0)  # an aware UTC datetime, as stored


def test_an_app_is_read_with_the_segments_started_before_a_moment(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    clock.advance(minutes=1)
    service.confirm(pending.id, actor=ADA)
    for fast in (True, False):
        for until, plans in (
            (clock() - timedelta(seconds=1), [Plan.DEVELOPER]),
            (clock() + timedelta(seconds=1), [Plan.DEVELOPER, Plan.STANDARD]),
        ):
            with SqlStore(engine).unit_of_work(fast=fast, write=False) as uow:
                found = uow.apps.with_segments("1400000001", until=until)
            assert found is not None
            state, segments = found
            assert state.plan is Plan.STANDARD and state.version == 2
            assert [s.plan for s in segments] == plans


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "locking"])
def test_a_unit_of_work_left_without_commit_writes_nothing(
    engine: Engine, service: PlanService, clock: Clock, fast: bool
) -> None:
    store = SqlStore(engine)
    with store.unit_of_work(fast=fast) as uow:
        before = uow.apps.get("1400000002")
        assert before is not None
        uow.apps.save(before, replace(before, name="renamed", version=2), clock())
        uow.audit.append(AuditRecord(at=clock(), actor_id="UX", action="test", outcome="applied"))
    with store.unit_of_work(fast=True) as uow:
        assert uow.apps.get("1400000002") == before
        assert uow.audit.head()[0] == 1  # only the import's record


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "locking"])
def test_guarded_writes_refuse_a_row_changed_since_it_was_read(
    engine: Engine, service: PlanService, clock: Clock, fast: bool
) -> None:
    store = SqlStore(engine)
    with store.unit_of_work(fast=True) as uow:
        read = uow.apps.get("1400000001")
    assert read is not None
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    with store.unit_of_work(fast=True) as uow:
        asked = uow.requests.get(pending.id)
    assert asked is not None
    service.confirm(pending.id, actor=ADA)  # the app and the request move on after the reads
    renamed = replace(read, name="renamed", version=read.version + 1)
    with pytest.raises(StaleWrite), store.unit_of_work(fast=fast) as uow:  # at once, or at commit
        uow.apps.save(read, renamed, clock())
        uow.audit.append(AuditRecord(at=clock(), actor_id="UX", action="test", outcome="applied"))
        uow.commit()
    with pytest.raises(StaleWrite), store.unit_of_work(fast=fast) as uow:
        uow.requests.decide(asked, asked.closed(RequestState.CANCELLED, ADA, clock()))
        uow.commit()
    with store.unit_of_work(fast=True) as uow:
        after = uow.apps.get("1400000001")
        stored = uow.requests.get(pending.id)
    assert after is not None and after.plan is Plan.STANDARD and after.name == read.name
    assert stored is not None and stored.state is RequestState.APPLIED
    assert audit_log(engine)[-1]["action"] == "upgrade"  # "test" rolled back


@pytest.mark.parametrize("reported", ["at_commit", "at_the_next_statement"])
def test_a_failed_transaction_leaves_the_connection_usable(
    engine: Engine, service: PlanService, clock: Clock, reported: str
) -> None:
    """Its error reported at the commit, or at the next statement (PostgreSQL's pipeline reads
    the answers that arrived meanwhile, before its sync): either way it rolls back, and the next
    unit of work on this thread's connection is not told its transaction is aborted."""
    store = service.store
    with (
        pytest.raises(engine.dialect.loaded_dbapi.IntegrityError),
        store.unit_of_work(fast=True) as uow,
    ):
        uow.audit.append(AuditRecord(at=clock(), actor_id="UX", action="test", outcome="applied"))
        uow.run.write(HEAD_INSERT, {"id": 1, "seq": 99, "hash": "x"})  # the head exists
        if reported == "at_the_next_statement":
            time.sleep(0.2)  # the server's answer to it arrives
            uow.run.rows(HEAD_READ)
        uow.commit()
    with store.unit_of_work(fast=True) as uow:
        assert uow.apps.get("1400000001") is not None
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    assert service.confirm(pending.id, actor=ADA).state == "applied"
    with store.unit_of_work(fast=True) as uow:
        assert uow.audit.head()[0] == 2


def test_several_entries_are_updated_in_one_transaction(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    for name in ("a-chat", "b-chat", "c-chat"):
        service.reply(f"https://hooks.slack.test/{name}", Rendered(message={"text": name}))
    with engine.connect() as connection:
        ids = list(
            connection.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.kind == "reply")).scalars()
        )
    with service.store.unit_of_work(fast=True, durable=False) as uow:
        uow.outbox.update_many(
            [
                (entry_id, {"status": "delivered", "receipt": {"n": n}})
                for n, entry_id in enumerate(ids)
            ]
        )
        uow.commit()
    with service.store.unit_of_work(fast=True) as uow:
        rows = [uow.outbox.get(entry_id) for entry_id in ids]
    assert [(r.status, dict(r.receipt)) for r in rows if r] == [
        ("delivered", {"n": n}) for n in range(len(ids))
    ]


def test_a_plain_confirmation_and_a_refused_one_leave_one_intact_chain(
    engine: Engine, service: PlanService
) -> None:
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    with pytest.raises(NotYourRequest):
        service.confirm(pending.id, actor=BOB)  # someone else's: refused, audited
    outcome = service.confirm(pending.id, actor=ADA)
    assert outcome.state == "applied"
    with service.store.unit_of_work(fast=True) as uow:
        state = uow.apps.get("1400000001")
        head = uow.audit.head()
    assert state is not None and state.plan is Plan.STANDARD and state.version == 2
    actions = [(r["seq"], r["action"], r["outcome"]) for r in audit_log(engine)]
    assert head[0] == len(actions)
    assert actions[1:] == [(2, "upgrade", "refused"), (3, "upgrade", "applied")]


def test_names_match_in_any_case_and_a_near_miss_finds_the_nearest(
    engine: Engine, service: PlanService
) -> None:
    assert service.status("DEV-CHAT", actor=ADA).app.app_id == "1400000001"
    with pytest.raises(AppNotFound) as missed:
        service.status("dev-chta", actor=ADA)
    assert missed.value.suggestions == ("dev-chat",)
    with SqlStore(engine).unit_of_work(fast=True) as uow:
        assert uow.apps.names_starting("STD", limit=5) == ["std-chat"]
        assert uow.apps.names_starting("d", lengths=(8, 8), limit=5) == ["dev-chat"]
        assert uow.apps.names_starting("d", lengths=(1, 7), limit=5) == []
        assert uow.apps.names_starting("o", teams=["CTEAM"], limit=5) == ["off-chat"]
        assert uow.apps.names_starting("o", teams=["COTHER"], limit=5) == []
        assert nearest_names(uow, "of-chat") == ["off-chat"]
        assert nearest_names(uow, "zzz") == [] and nearest_names(uow, "1400000009") == []
        # the last code point before the surrogates: the range after it still reads
        assert nearest_names(uow, "\ud7ff") == []
        assert uow.apps.names_starting("st\ud7ff", limit=5) == []
    with pytest.raises(AppNotFound):
        service.status("STATS \ud7ff", actor=ADA)


def test_a_near_miss_never_names_an_app_the_person_may_not_see(
    engine: Engine, catalog: Catalog, clock: Clock
) -> None:
    config = CoreConfig(
        catalog=catalog,
        billing_tz=SHANGHAI,
        access=AccessPolicy(admins=frozenset({ADA.user_id}), default_role=Role.NOBODY),
    )
    service = PlanService(engine=engine, config=config, clock=clock)
    service.grant(Grant("user", BOB.user_id, Role.VIEWER, "CTEAM"), label="bob", actor=ADA)
    with pytest.raises(AppNotFound) as missed:
        service.status("std-chta", actor=BOB)  # std-chat has no owner team: not Bob's to see
    assert missed.value.suggestions == ()
    with pytest.raises(AppNotFound) as near:
        service.status("dev-chta", actor=BOB)
    assert near.value.suggestions == ("dev-chat",)
