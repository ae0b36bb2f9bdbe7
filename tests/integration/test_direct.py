"""The direct statements read and write what the units of work do, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import ChangeRequest, Grant, NotYourRequest, Operation, Plan, PlanService, Role
from core.store.direct import Direct, StaleWrite
from core.store.tables import AuditHeadRow, OutboxRow
from core.store.uow import UnitOfWork
from tests.conftest import Clock
from tests.integration.conftest import ADA, BOB

HEADER = "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at"
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


def test_reads_equal_the_unit_of_work_reads(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    service.grant(Grant("user", "UBOB", Role.OPERATOR, "CTEAM"), label="bob", actor=ADA)
    direct = Direct(engine)
    until = clock() + timedelta(days=1)
    with UnitOfWork(engine, write=False) as uow:
        for app_id in IDS:
            assert direct.state(app_id) == uow.apps.state(app_id)
            assert direct.segments(app_id, until=until) == uow.history.segments(app_id, until=until)
            assert direct.state_and_segments(app_id, until=until) == (
                uow.apps.state(app_id),
                uow.history.segments(app_id, until=until),
            )
        assert direct.states_by_name("std-chat") == uow.apps.states_by_name("std-chat")
        assert [g.model_dump() for g in direct.grants.all()] == [
            g.model_dump() for g in uow.grants.all()
        ]
    assert direct.state("1499999999") is None
    assert direct.state_and_segments("1499999999", until=clock()) is None
    assert direct.states_by_name("nope") == []
    state = direct.state("1400000003")
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
    direct = Direct(engine)
    for until, plans in (
        (clock() - timedelta(seconds=1), [Plan.DEVELOPER]),
        (clock() + timedelta(seconds=1), [Plan.DEVELOPER, Plan.STANDARD]),
    ):
        found = direct.state_and_segments("1400000001", until=until)
        assert found is not None
        state, segments = found
        assert state.plan is Plan.STANDARD and state.version == 2
        assert [s.plan for s in segments] == plans


def test_a_transaction_left_without_commit_writes_nothing(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    direct = Direct(engine)
    before = direct.state("1400000002")
    assert before is not None
    with direct.transaction() as tx:
        tx.save(before, before.__class__(**{**before.__dict__, "name": "renamed"}), clock())
        tx.append(at=clock(), actor_id="UX", action="test", outcome="applied")
    assert direct.state("1400000002") == before
    with UnitOfWork(engine, write=False) as uow:
        assert uow.audit.head().seq == 1  # only the import's record


def test_guarded_writes_refuse_a_row_changed_since_it_was_read(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    direct = Direct(engine)
    read = direct.state("1400000001")
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    service.confirm(pending.id, actor=ADA)  # the app moves on after `read`
    renamed = read.__class__(**{**read.__dict__, "name": "renamed", "version": read.version + 1})
    with pytest.raises(StaleWrite), direct.transaction() as tx:  # at once, or at the commit
        tx.save(read, renamed, clock())
        tx.append(at=clock(), actor_id="UX", action="test", outcome="applied")
        tx.commit()
    with pytest.raises(StaleWrite), direct.transaction() as tx:
        tx.decide(pending.id, {"state": "cancelled", "decided_at": clock()})  # decided already
        tx.commit()
    after = direct.state("1400000001")
    assert after is not None and after.plan is Plan.STANDARD and after.name == read.name
    record = direct.request(pending.id)
    assert record is not None and record.state == "applied"
    with UnitOfWork(engine, write=False) as uow:
        assert [r.action for r in uow.audit.iterate()][-1] == "upgrade"  # "test" rolled back


def test_a_failed_transaction_leaves_the_connection_usable(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    direct = Direct(engine)
    with pytest.raises(engine.dialect.loaded_dbapi.IntegrityError), direct.transaction() as tx:
        tx.insert(AuditHeadRow.__table__, {"id": 1, "seq": 99, "hash": "x"})  # type: ignore[attr-defined]
        tx.commit()
    assert direct.state("1400000001") is not None
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    assert service.confirm(pending.id, actor=ADA).state == "applied"
    with UnitOfWork(engine, write=False) as uow:
        assert uow.audit.head().seq == 2


def test_several_rows_are_updated_in_one_transaction(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    for name in ("a-chat", "b-chat", "c-chat"):
        service.reply(f"https://hooks.slack.test/{name}", {"text": name})
    with UnitOfWork(engine, write=False) as uow:
        ids = [
            r.id for r in uow.session.exec(sa.select(OutboxRow.id).where(OutboxRow.kind == "reply"))
        ]
    direct = Direct(engine)
    direct.update_many(
        OutboxRow.__table__,  # type: ignore[attr-defined]
        [
            (entry_id, {"status": "delivered", "receipt": {"n": n}})
            for n, entry_id in enumerate(ids)
        ],
    )
    with UnitOfWork(engine, write=False) as uow:
        rows = [uow.outbox.get(entry_id) for entry_id in ids]
    assert [(r.status, r.receipt) for r in rows if r] == [
        ("delivered", {"n": n}) for n in range(len(ids))
    ]


def test_a_plain_confirmation_and_a_refused_one_leave_one_intact_chain(
    engine: Engine, service: PlanService
) -> None:
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    with pytest.raises(NotYourRequest):
        service.confirm(pending.id, actor=BOB)  # someone else's: the full path refuses, audited
    outcome = service.confirm(pending.id, actor=ADA)
    assert outcome.state == "applied"
    state = service.direct.state("1400000001")
    assert state is not None and state.plan is Plan.STANDARD and state.version == 2
    with UnitOfWork(engine, write=False) as uow:
        actions = [(r.seq, r.action, r.outcome) for r in uow.audit.iterate()]
        assert uow.audit.head().seq == len(actions)
    assert actions[1:] == [(2, "upgrade", "refused"), (3, "upgrade", "applied")]
