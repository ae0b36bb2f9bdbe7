"""One policy, two ways through it: random requests and clicks decided by the fast unit of work
(compiled statements, guarded writes) and by the locking one end the same way and write the same
rows, row for row.

Both databases start from the same apps and grants; each scenario is a few requests and clicks by
people of different roles at moving times (some past a request's expiry, some on requests that
need peers), replayed on each database with the same clock and the same ids.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from core import (
    AccessPolicy,
    Actor,
    ApprovalRule,
    ChangeRequest,
    Click,
    CoreConfig,
    Grant,
    Operation,
    Plan,
    PlanError,
    PlanService,
    Role,
    SqlStore,
    load_catalog,
    make_engine,
    upgrade_schema,
)
from core.changes import Changes
from core.store.sql import SqlUnitOfWork
from tests.conftest import SHANGHAI, Clock, utc
from tests.support.fake_store import FakeStore

SEED = "\n".join(
    [
        "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at",
        "1400000001,dev-chat,developer,2026-11-01,,active,CTEAM,2026-12-01,",
        "1400000002,std-chat,standard,2026-01-15,,active,CTEAM,,",
        "1400000003,off-chat,premium,2026-01-15,,disabled,CTEAM,,2026-11-01T00:00:00Z",
        "1400000004,old-chat,standard,2021-06-01,,active,CTEAM,,",
        "1400000005,sleepy-chat,developer,2026-09-01,,suspended,COTHER,2026-10-01,",
    ]
)
APPS = ("1400000001", "1400000002", "1400000003", "1400000004", "1400000005", "1499999999")
ADA = Actor("UADA", "Ada")  # configured admin
BOB = Actor("UBOB", "Bob")  # configured admin
OTTO = Actor("UOTTO", "Otto")  # operator
TINA = Actor("UTINA", "Tina")  # operator for CTEAM only
VERA = Actor("UVERA", "Vera")  # viewer (the default role)
PEOPLE = (ADA, BOB, OTTO, TINA, VERA)
NOW = utc(2026, 11, 10, 4)
DATABASES = itertools.count()
TABLES = (
    "app",
    "plan_history",
    "pending_request",
    "approval",
    "audit_event",
    "audit_head",
    "outbox",
)

changes = st.one_of(
    st.builds(
        ChangeRequest,
        st.just(Operation.UPGRADE),
        app=st.sampled_from(APPS),
        plan=st.sampled_from([Plan.STANDARD, Plan.PREMIUM, Plan.DEVELOPER]),
    ),
    st.builds(
        ChangeRequest,
        st.just(Operation.CONFIGURE),
        app=st.sampled_from(APPS),
        plan=st.sampled_from([None, Plan.STANDARD, Plan.PREMIUM]),
        addons=st.sampled_from([{}, {"history_retention": "90d"}, {"history_retention": "plan"}]),
    ),
    st.builds(
        ChangeRequest,
        st.sampled_from([Operation.EXTEND, Operation.DISABLE, Operation.ENABLE, Operation.MIGRATE]),
        app=st.sampled_from(APPS),
    ),
    st.builds(
        ChangeRequest, st.just(Operation.CREATE), name=st.sampled_from(["new-chat", "dev-chat"])
    ),
)
asks = st.tuples(st.just("ask"), changes, st.sampled_from(PEOPLE), st.integers(0, 20))
presses = st.tuples(
    st.just("press"),
    st.sampled_from([Click.CONFIRM, Click.CONFIRM, Click.APPROVE, Click.REJECT, Click.WITHDRAW]),
    st.integers(0, 5),  # which request (of those made so far)
    st.one_of(st.none(), st.sampled_from(PEOPLE)),  # None: the one who asked
    st.integers(0, 20),  # minutes later (a request expires after 15)
)
scenarios = st.lists(st.one_of(asks, presses), min_size=1, max_size=7)


class LockingOnly:
    """The store, but every unit of work takes the locking runner."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.dialect = store.dialect

    def unit_of_work(self, **options: Any) -> SqlUnitOfWork:
        return self.store.unit_of_work(**{**options, "fast": False})

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        return self.store.exclusive(name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the apps and grants every scenario starts from."""
    path = tmp_path_factory.mktemp("policy") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    service = PlanService(engine=engine, config=config(), clock=Clock(NOW))
    service.imports.from_csv(SEED, actor=Actor("cli", "importer"))
    service.grant(Grant("user", OTTO.user_id, Role.OPERATOR), label="otto", actor=ADA)
    service.grant(Grant("user", TINA.user_id, Role.OPERATOR, "CTEAM"), label="tina", actor=ADA)
    service.close()  # every connection closed: the log is copied back into the file
    return path


def config() -> CoreConfig:
    return CoreConfig(
        catalog=load_catalog(),
        billing_tz=SHANGHAI,
        audit_channel="CAUDIT",
        access=AccessPolicy(
            admins=frozenset({ADA.user_id, BOB.user_id}),
            approvals={"disable": ApprovalRule("peer", 1), "migrate": ApprovalRule("peer", 2)},
        ),
    )


def counter(prefix: str) -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"{prefix}{n:08d}"


def play(
    engine: Engine | None, scenario: list[Any], *, locking: bool = False, fake: Any = None
) -> list[Any]:
    """Replay a scenario; what each step gave (an outcome, or the refusal's kind and words)."""
    clock = Clock(NOW + timedelta(hours=1))
    service = PlanService(engine=engine, store=fake, config=config(), clock=clock)
    store = LockingOnly(service.store) if locking else service.store  # type: ignore[arg-type]
    request_ids, app_ids = counter("r"), counter("14")
    service.changes = Changes(
        store=store,  # type: ignore[arg-type]
        config=service.config,
        roles=service.roles,
        clock=clock,
        request_ids=lambda: next(request_ids),
        app_ids=lambda: next(app_ids),
    )
    made: list[tuple[str, Actor]] = []
    said: list[Any] = []
    for step in scenario:
        try:
            if step[0] == "ask":
                _, change, person, minutes = step
                clock.advance(minutes=minutes)
                pending = service.changes.request(change, actor=person, channel_id="CTEAM")
                made.append((pending.id, person))
                said.append(("asked", pending.id, pending.preview))
            else:
                _, click, index, person, minutes = step
                clock.advance(minutes=minutes)
                request_id, asker = made[index % len(made)] if made else ("r-none", ADA)
                said.append(service.changes.click(click, request_id, actor=person or asker))
        except PlanError as err:
            said.append((type(err).__name__, err.message))
    return said


def rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        return {
            table: [
                dict(r._mapping)
                for r in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1"))
            ]
            for table in TABLES
        }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
@example(  # the common case: asked, then confirmed by the one who asked
    scenario=[
        ("ask", ChangeRequest(Operation.UPGRADE, app=APPS[0], plan=Plan.PREMIUM), OTTO, 0),
        ("press", Click.CONFIRM, 0, None, 1),
        ("press", Click.CONFIRM, 0, None, 1),
    ]
)
@example(  # a peer's approval, a second click on it, a create
    scenario=[
        ("ask", ChangeRequest(Operation.DISABLE, app=APPS[1]), ADA, 0),
        ("press", Click.APPROVE, 0, BOB, 1),
        ("ask", ChangeRequest(Operation.CREATE, name="new-chat"), TINA, 0),
        ("press", Click.CONFIRM, 1, None, 1),
        ("press", Click.APPROVE, 0, BOB, 1),
    ]
)
def test_the_fast_and_the_locking_way_decide_and_write_alike(
    template: Path, tmp_path: Path, scenario: list[Any]
) -> None:
    results, written = [], []
    for locking in (False, True):
        path = tmp_path / f"db{next(DATABASES)}.sqlite3"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        try:
            results.append(play(engine, scenario, locking=locking))
            written.append(rows(engine))
        finally:
            SqlStore(engine).close()
            engine.dispose()
    assert results[0] == results[1]
    assert written[0] == written[1]
    # the store in memory that the unit tests use decides alike too
    assert play(None, scenario, fake=seeded_fake()) == results[0]


def seeded_fake() -> FakeStore:
    """The template's apps and grants, in memory."""
    store = FakeStore()
    service = PlanService(store=store, config=config(), clock=Clock(NOW))
    service.imports.from_csv(SEED, actor=Actor("cli", "importer"))
    service.grant(Grant("user", OTTO.user_id, Role.OPERATOR), label="otto", actor=ADA)
    service.grant(Grant("user", TINA.user_id, Role.OPERATOR, "CTEAM"), label="tina", actor=ADA)
    return store
