"""Exactly once: many threads (or processes) confirming one request change the app once."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    AccessPolicy,
    Actor,
    ApprovalRule,
    Catalog,
    ChangeRequest,
    CoreConfig,
    Operation,
    Plan,
    PlanError,
    PlanService,
    SqlStore,
    errors,
    load_catalog,
    make_engine,
    verify_chain,
)
from tests.conftest import SHANGHAI, Clock, utc
from tests.integration.conftest import ADA
from tests.support.records import audit_log, history, request_state

APP = "1400000001"
NOW = utc(2026, 11, 10, 4)


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` in n threads released together; each result or the exception raised."""
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        try:
            return action(i)
        except Exception as err:  # collected and asserted on by the caller
            return err

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def facts(engine: Engine, request_id: str) -> dict[str, Any]:
    with SqlStore(engine).unit_of_work(write=False) as uow:
        app = uow.apps.get(APP)
        assert app is not None
        records = list(uow.audit.records())
        events = [SimpleNamespace(**e) for e in records if e["request_id"] == request_id]
        entries = tuple(uow.run.query(sa.text("SELECT count(*) FROM outbox"))[0].values())
        seq, digest = uow.audit.head()
        head = SimpleNamespace(seq=seq, hash=digest)
        return {
            "plan": app.plan,
            "version": app.version,
            "audit": [(e.action, e.outcome) for e in events],
            "outbox": int(entries[0]),
            "history": len(uow.history.of(APP, limit=1000)),
            "chain": verify_chain(records, head_seq=head.seq, head_hash=head.hash).ok,
        }


def one_request(service: PlanService, seed: Callable[..., int]) -> str:
    seed(f"app_id,name,plan,created_at,owner_channel\n{APP},race-chat,developer,2026-11-01,CTEAM\n")
    change = ChangeRequest(Operation.UPGRADE, app=APP, plan=Plan.PREMIUM)
    return service.request(change, actor=ADA, channel_id="CTEAM").id


def test_twenty_threads_confirming_one_request_apply_it_once(
    service: PlanService, engine: Engine, seed: Callable[..., int]
) -> None:
    request_id = one_request(service, seed)
    results = race(20, lambda _: service.confirm(request_id, actor=ADA))

    kinds = Counter(type(r).__name__ for r in results)
    assert kinds == {"Outcome": 1, "RequestAlreadyDecided": 19}, results
    assert all("already done" in r.message for r in results if isinstance(r, PlanError))
    after = facts(engine, request_id)
    assert (after["plan"], after["version"]) == ("premium", 2)
    assert after["audit"] == [("upgrade", "applied")]
    assert after["outbox"] == 4  # audit channel, owner channel, provisioning, home tabs
    assert after["history"] == 2  # the import, the upgrade
    assert after["chain"]


def test_fifty_threads_confirming_fifty_requests_all_apply(
    service: PlanService, engine: Engine, seed: Callable[..., int]
) -> None:
    rows = [f"14000001{n:02d},app-{n},developer,2026-11-01,CTEAM" for n in range(50)]
    seed("app_id,name,plan,created_at,owner_channel\n" + "\n".join(rows) + "\n")
    requests = [
        service.request(
            ChangeRequest(Operation.UPGRADE, app=f"14000001{n:02d}", plan=Plan.STANDARD),
            actor=ADA,
        ).id
        for n in range(50)
    ]
    results = race(50, lambda i: service.confirm(requests[i], actor=ADA))

    assert [getattr(r, "state", r) for r in results] == ["applied"] * 50
    with engine.connect() as connection:
        plans = Counter(connection.execute(sa.text("SELECT plan, version FROM app")).all())
    assert plans == {("standard", 2): 50}
    with SqlStore(engine).unit_of_work(write=False) as uow:
        seq, digest = uow.audit.head()
        head = SimpleNamespace(seq=seq, hash=digest)
        records = list(uow.audit.records())
    assert [r["seq"] for r in records] == list(range(1, 52))  # the import and 50 changes
    assert sorted(r["request_id"] for r in records[1:]) == sorted(requests)
    assert verify_chain(records, head_seq=head.seq, head_hash=head.hash).ok


# --- two processes on PostgreSQL -------------------------------------------------------------


def confirm_in_a_process(url: str, request_id: str, start: Any, results: Any) -> None:
    """A replica: its own engine and service, confirming when the other one does."""
    engine = make_engine(url)
    service = PlanService(
        engine=engine,
        config=CoreConfig(
            catalog=load_catalog(),
            billing_tz=SHANGHAI,
            audit_channel="CAUDIT",
            access=AccessPolicy(admins=frozenset({ADA.user_id})),
        ),
        clock=Clock(NOW),
    )
    start.wait(timeout=60)
    try:
        results.put(service.confirm(request_id, actor=ADA).state)
    except Exception as err:  # reported to the parent, which asserts on it
        results.put(f"{type(err).__name__}: {err}")
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_two_processes_confirming_one_request_apply_it_once(
    service: PlanService, engine: Engine, seed: Callable[..., int], postgres_url: str
) -> None:
    request_id = one_request(service, seed)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=confirm_in_a_process, args=(postgres_url, request_id, start, results)
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = sorted((results.get(timeout=120) for _ in workers), key=lambda o: o != "applied")
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    assert outcomes[0] == "applied", outcomes
    assert outcomes[1].startswith("RequestAlreadyDecided") and "already done" in outcomes[1]
    after = facts(engine, request_id)
    assert (after["plan"], after["version"]) == ("premium", 2)
    assert after["audit"] == [("upgrade", "applied")]
    assert after["outbox"] == 4  # audit channel, owner channel, provisioning, home tabs
    assert after["chain"]


# --- peers approving at once ---------------------------------------------------------------------

PEER_SEED = (
    "app_id,name,plan,created_at,billing_mode,status,owner_channel\n"
    "1400000002,std-chat,standard,2026-01-15,,active,CTEAM\n"
    "1400000004,old-chat,standard,2021-06-01,,active,CTEAM\n"
)
BOB, CY = Actor("UBOB", "Bob"), Actor("UCY", "Cy")


@pytest.fixture
def peers(engine: Engine, catalog: Catalog, clock: Clock) -> PlanService:
    """disable needs one peer, migrate two; Ada, Bob and Cy are admins."""
    config = CoreConfig(
        catalog=catalog,
        billing_tz=SHANGHAI,
        audit_channel="CAUDIT",
        access=AccessPolicy(
            admins=frozenset({ADA.user_id, BOB.user_id, CY.user_id}),
            approvals={"disable": ApprovalRule("peer", 1), "migrate": ApprovalRule("peer", 2)},
        ),
    )
    service = PlanService(engine=engine, config=config, clock=clock)
    service.imports.from_csv(PEER_SEED, actor=Actor("cli", "importer"))
    return service


def test_two_admins_approving_at_once_apply_it_once(peers: PlanService, engine: Engine) -> None:
    pending = peers.request(ChangeRequest(Operation.DISABLE, app="1400000002"), actor=ADA)
    results = race(2, lambda i: peers.approve(pending.id, actor=(BOB, CY)[i]))
    applied = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert [o.state for o in applied] == ["applied"], results
    assert [type(r) for r in refused] == [errors.RequestAlreadyDecided], results
    assert [h.operation for h in history(engine, "1400000002")].count("disable") == 1
    assert [e["outcome"] for e in audit_log(engine) if e["request_id"] == pending.id] == ["applied"]


def test_two_approvals_at_once_complete_a_two_person_rule(
    peers: PlanService, engine: Engine
) -> None:
    pending = peers.request(ChangeRequest(Operation.MIGRATE, app="1400000004"), actor=ADA)
    results = race(2, lambda i: peers.approve(pending.id, actor=(BOB, CY)[i]))
    assert sorted(r.state for r in results) == ["applied", "approved"], results
    state = peers.status("1400000004", actor=ADA).app
    assert state.billing_mode == "current"
    assert [h.operation for h in history(engine, "1400000004")].count("migrate") == 1
    assert request_state(engine, pending.id) == "applied"
