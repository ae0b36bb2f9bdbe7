"""The lifecycle sweep on a real database, with a hand-moved clock: each event on time, and once.

Expiry, reminders, purge warnings, purge, monthly statements and expired requests; month ends and
February 2028; the billing time zone's 1st; a week of downtime; concurrent sweeps (threads on both
backends, two processes on PostgreSQL); and a sweep with nothing due never scanning the app table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.kit import plain_dates
from bot.notices import render
from core import (
    AccessPolicy,
    Actor,
    ApprovalCardUpdate,
    ApprovalRule,
    ChangeApplied,
    ChangeRequest,
    CoreConfig,
    DevExpiryReminder,
    Lifecycle,
    Operation,
    Plan,
    PlanService,
    PurgeWarning,
    SqlStore,
    StatementIssued,
    Status,
    SweepReport,
    billing_window,
    errors,
    load_catalog,
    load_message,
)
from tests.conftest import SHANGHAI, Clock, utc
from tests.integration.conftest import ADA, BOB
from tests.support.csvs import apps_csv
from tests.support.records import audit_log, chain_report, english, outbox, request_state
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
WORDS = english(CoreConfig(catalog=load_catalog(), billing_tz=SHANGHAI))


def period(notice: Any) -> str:
    statement = notice.message.statement
    return f"{statement.year:04d}-{statement.month:02d}"


def late(notice: Any) -> bool:
    statement = notice.message.statement
    return bool(notice.message.issued_on > billing_window(statement.year, statement.month)[0])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The shared fixture's empty database, with the lifecycle's marks emptied too."""
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM lifecycle_mark"))
    return engine


@pytest.fixture
def lifecycle(service: PlanService) -> Lifecycle:
    return service.lifecycle


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    """An outbox message entry and the message it holds."""

    id: int
    key: str | None
    destination: str
    app_id: str | None
    message: Any


def notices(engine: Engine, kind: type | None = None) -> list[Posted]:
    """Outbox messages in order, optionally only those of one message type."""
    found = [
        Posted(e["id"], e["key"], e["destination"], e["app_id"], load_message(e["payload"]))
        for e in outbox(engine)
        if e["kind"] == "message"
    ]
    return [n for n in found if kind is None or isinstance(n.message, kind)]


def text_of(notice: Posted) -> str:
    """Everything the rendered message says."""
    return json.dumps(render(notice.message, WORDS), ensure_ascii=False)


def audit_events(engine: Engine, action: str) -> list[Any]:
    return [SimpleNamespace(**r) for r in audit_log(engine) if r["action"] == action]


def state(engine: Engine, app_id: str) -> Any:
    with SqlStore(engine).unit_of_work(write=False) as uow:
        found = uow.apps.get(app_id)
        assert found is not None
        return found


def chain_ok(engine: Engine) -> bool:
    return chain_report(engine).ok


def days_left(message: Any, until: datetime) -> int:
    return (until - message.at) // timedelta(days=1)


def sweep_every(
    lifecycle: Lifecycle, clock: Clock, start: datetime, end: datetime, step: timedelta
) -> list[SweepReport]:
    """Sweep at start, start + step, ... up to end, as a timer would."""
    reports = []
    moment = start
    while moment <= end:
        clock.set(moment)
        report = lifecycle.sweep()
        assert report.failed == ()
        reports.append(report)
        moment += step
    return reports


def local(moment: datetime) -> str:
    """The billing-zone 'YYYY-MM-DD HH:MM' of a moment."""
    return f"{moment.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"


# --- developer expiry: reminders and suspension ------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expires", "reminded"),
    [
        pytest.param(
            "1400000001,dev-chat,developer,2027-12-31,,active,CTEAM,2028-01-31,",
            "2028-01-31 00:00",
            ["2028-01-24 00:00", "2028-01-30 00:00"],
            id="expiry-jan-31",
        ),
        pytest.param(
            "1400000001,dev-chat,developer,2028-01-31,,active,CTEAM,,",
            "2028-02-29 00:00",
            ["2028-02-22 00:00", "2028-02-28 00:00"],
            id="created-jan-31-expires-feb-29-leap",
        ),
    ],
)
def test_reminders_7_and_1_days_before_expiry_then_suspension_once(
    engine: Engine,
    lifecycle: Lifecycle,
    clock: Clock,
    seed: Callable[..., int],
    row: str,
    expires: str,
    reminded: list[str],
) -> None:
    clock.set(utc(2028, 2, 1) if "2028-01-31,,active" in row else utc(2028, 1, 1))
    seed(apps_csv(row))
    expiry = state(engine, "1400000001").dev_expires_at
    assert f"{expiry.astimezone(SHANGHAI):%Y-%m-%d %H:%M}" == expires
    # a timer every 6 hours, on the billing zone's midnights, from 10 days before to 2 days after
    start = expiry - timedelta(days=10)
    reports = sweep_every(lifecycle, clock, start, expiry + timedelta(days=2), timedelta(hours=6))

    sent = notices(engine, DevExpiryReminder)
    assert [local(n.message.at) for n in sent] == reminded
    assert [n.message.notice_days for n in sent] == [7, 1]
    assert [days_left(n.message, n.message.expires_at) for n in sent] == [7, 1]
    assert {n.destination for n in sent} == {"CTEAM"}
    assert all(n.message.app_name == "dev-chat" for n in sent)
    assert sum(r.reminders for r in reports) == 2

    # suspended by the first sweep at the expiry (the validity ends at that instant), once
    assert sum(r.suspended for r in reports) == 1
    after = state(engine, "1400000001")
    assert after.status is Status.SUSPENDED
    [suspension] = audit_events(engine, "suspend")
    assert suspension.at == expiry
    assert suspension.actor_id == "planbot" and suspension.outcome == "applied"
    assert f"ended on {expires}" in suspension.detail
    changes = [n for n in notices(engine, ChangeApplied) if n.message.operation == "suspend"]
    assert sorted(n.destination for n in changes) == ["CAUDIT", "CTEAM"]
    assert all(f"ended on {expires}" in plain_dates(text_of(n)) for n in changes)
    assert chain_ok(engine)

    # and nothing ever again, however often it runs
    clock.advance(days=1)
    for _ in range(3):
        assert lifecycle.sweep().total == 0


def test_extension_after_a_reminder_moves_the_next_reminders(
    engine: Engine,
    lifecycle: Lifecycle,
    service: PlanService,
    clock: Clock,
    seed: Callable[..., int],
) -> None:
    clock.set(utc(2028, 3, 1))
    seed(apps_csv("1400000001,dev-chat,developer,2028-03-01,,active,CTEAM,2028-03-20,"))
    expiry = state(engine, "1400000001").dev_expires_at
    sweep_every(lifecycle, clock, utc(2028, 3, 10), expiry - timedelta(days=3), timedelta(hours=6))
    assert [n.message.notice_days for n in notices(engine, DevExpiryReminder)] == [7]

    pending = service.request(ChangeRequest(Operation.EXTEND, app="1400000001"), actor=ADA)
    service.confirm(pending.id, actor=ADA)
    new_expiry = state(engine, "1400000001").dev_expires_at
    assert new_expiry.astimezone(SHANGHAI).date().isoformat() == "2028-04-20"

    reports = sweep_every(
        lifecycle,
        clock,
        clock() + timedelta(hours=6),
        new_expiry + timedelta(hours=6),
        timedelta(hours=6),
    )
    sent = notices(engine, DevExpiryReminder)
    assert [(n.message.notice_days, n.message.expires_at.date().isoformat()) for n in sent] == [
        (7, "2028-03-19"),  # 2028-03-20 00:00 in UTC+8
        (7, "2028-04-19"),
        (1, "2028-04-19"),
    ]
    assert sum(r.suspended for r in reports) == 1  # at the new expiry, not the old one


def test_the_timer_sweeps_in_the_background(
    engine: Engine, lifecycle: Lifecycle, clock: Clock, seed: Callable[..., int]
) -> None:
    clock.set(utc(2028, 3, 1))
    seed(apps_csv("1400000001,dev-chat,developer,2028-01-01,,active,CTEAM,2028-02-01,"))
    lifecycle.start(interval=0.05)
    try:
        eventually(
            lambda: state(engine, "1400000001").status is Status.SUSPENDED, 30, "the timer's sweep"
        )
    finally:
        lifecycle.stop()
    assert len(audit_events(engine, "suspend")) == 1


# --- disabled apps: purge warnings and purge ---------------------------------------------------


def test_purge_warnings_30_7_1_days_before_then_purge_once(
    engine: Engine, lifecycle: Lifecycle, clock: Clock, seed: Callable[..., int]
) -> None:
    clock.set(utc(2028, 2, 20))
    seed(apps_csv("1400000003,off-chat,premium,2027-01-01,,disabled,CTEAM,,2028-01-01T00:00:00Z"))
    purge_at = utc(2028, 3, 31)  # 90 days after 2028-01-01 00:00 UTC (29 days in February)
    assert state(engine, "1400000003").purge_at == purge_at

    reports = sweep_every(lifecycle, clock, utc(2028, 2, 25), utc(2028, 4, 2), timedelta(hours=6))
    warned = notices(engine, PurgeWarning)
    assert [(n.message.notice_days, n.message.at.isoformat()[:16]) for n in warned] == [
        (30, "2028-03-01T00:00"),
        (7, "2028-03-24T00:00"),
        (1, "2028-03-30T00:00"),
    ]
    assert [days_left(n.message, n.message.purge_at) for n in warned] == [30, 7, 1]
    assert all(n.destination == "CTEAM" for n in warned)
    assert warned[0].message.purge_at == purge_at

    # "after more than 90 days": the sweep at exactly the deadline leaves it; the next purges it
    [purge] = audit_events(engine, "purge")
    assert purge.at == purge_at + timedelta(hours=6)
    assert "can no longer be recovered" in purge.detail
    assert "Disabled on 2028-01-01 08:00" in purge.detail
    assert state(engine, "1400000003").status is Status.PURGED
    assert sum(r.purged for r in reports) == 1
    assert sum(r.purge_warnings for r in reports) == 3
    assert chain_ok(engine)


def test_re_enabled_app_is_neither_warned_nor_purged(
    engine: Engine,
    lifecycle: Lifecycle,
    service: PlanService,
    clock: Clock,
    seed: Callable[..., int],
) -> None:
    clock.set(utc(2028, 2, 20))
    seed(apps_csv("1400000003,off-chat,premium,2027-01-01,,disabled,CTEAM,,2028-01-01T00:00:00Z"))
    sweep_every(lifecycle, clock, utc(2028, 3, 1), utc(2028, 3, 2), timedelta(hours=6))
    assert len(notices(engine, PurgeWarning)) == 1
    pending = service.request(ChangeRequest(Operation.ENABLE, app="1400000003"), actor=ADA)
    service.confirm(pending.id, actor=ADA)
    sweep_every(lifecycle, clock, utc(2028, 3, 2, 6), utc(2028, 4, 5), timedelta(hours=12))
    assert len(notices(engine, PurgeWarning)) == 1
    assert audit_events(engine, "purge") == []
    assert state(engine, "1400000003").status is Status.ACTIVE


# --- monthly statements ------------------------------------------------------------------------


def test_statement_for_february_2028_on_march_1st_in_the_billing_zone(
    engine: Engine,
    lifecycle: Lifecycle,
    service: PlanService,
    clock: Clock,
    seed: Callable[..., int],
) -> None:
    clock.set(utc(2028, 2, 20, 4))
    # known to planbot since January (its statements for January are planbot's to post) ...
    seed(
        apps_csv(
            "1400000002,std-chat,standard,2027-06-01,,active,CTEAM,,",
            "1400000004,old-chat,standard,2021-06-01,,active,CTEAM,,",
            "1400000006,lone-chat,standard,2027-01-01,,active,,,",
        ),
        now=utc(2028, 1, 15),
    )
    # ... and since February
    seed(
        apps_csv(
            "1400000005,new-premium,premium,2028-02-10,,active,CTEAM,,",
            "1400000001,dev-chat,developer,2028-02-01,,active,CTEAM,,",
            "1400000007,free-only,developer,2028-02-01,,active,COTHER,,",
        )
    )
    first = lifecycle.sweep()  # January's statements, late (CTEAM: std-chat; unowned: lone-chat)
    assert first.statements == 2
    january = notices(engine, StatementIssued)
    assert {period(n) for n in january} == {"2028-01"}
    assert all(late(n) for n in january)

    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.PREMIUM), actor=ADA
    )
    service.confirm(pending.id, actor=ADA)

    # 23:59:59 on 29 February in UTC+8: still February, nothing due
    clock.set(utc(2028, 2, 29, 15, 59, 59))
    assert lifecycle.sweep().statements == 0
    # midnight, 1 March in UTC+8 (still 29 February in UTC): February's statements are due
    clock.set(utc(2028, 2, 29, 16))
    assert lifecycle.sweep().statements == 2
    for _ in range(3):
        clock.advance(hours=7)
        assert lifecycle.sweep().statements == 0

    posted = {n.message.statement.team: n for n in notices(engine, StatementIssued)[2:]}
    assert set(posted) == {"CTEAM", None}
    team = posted["CTEAM"]
    assert team.destination == "CTEAM"
    assert posted[None].destination == "CAUDIT"
    issued = team.message
    assert period(team) == "2028-02" and "Statement for February 2028" in text_of(team)
    assert not late(team) and not issued.statement.projected
    assert "billed on 2028-03-01 to 2028-03-03" in text_of(team)
    listed = {a.app_id: a for a in issued.statement.apps}
    # the developer app upgraded on the 20th is listed; the legacy and free apps are not
    assert set(listed) == {"1400000001", "1400000002", "1400000005"}
    assert "COTHER" not in {n.message.statement.team for n in notices(engine, StatementIssued)}
    # the same numbers `/plan bill <app> 2028-02` gives
    total = Decimal(0)
    for app_id, line in listed.items():
        _, bill = service.statement(app_id, actor=ADA, year=2028, month=2)
        assert line.total == bill.total
        assert sum(p.amount for p in line.periods) == bill.total
        assert sum(p.days for p in line.periods) == len(bill.days)
        total += bill.total
    assert issued.total == total
    assert [(p.label, p.days) for p in listed["1400000002"].periods] == [("standard", 29)]
    # a whole month costs exactly the monthly price (29 days of 399/29 rounded each: $399.04)
    assert listed["1400000002"].total == Decimal("399.00")
    assert [(p.label, str(p.first), str(p.last)) for p in listed["1400000001"].periods] == [
        ("developer", "2028-02-01", "2028-02-19"),
        ("premium", "2028-02-20", "2028-02-29"),
    ]
    assert str(listed["1400000005"].periods[0].first) == "2028-02-10"

    # `/plan bill` for a team shares the computation
    shared = lifecycle.team_statement("CTEAM", year=2028, month=2, actor=ADA)
    assert shared.total == total
    assert shared.apps == issued.statement.apps


def test_team_statement_needs_the_viewer_role(
    engine: Engine, catalog: Any, clock: Clock, seed: Callable[..., int]
) -> None:
    from core import Role

    config = CoreConfig(
        catalog=catalog,
        billing_tz=SHANGHAI,
        audit_channel="CAUDIT",
        access=AccessPolicy(admins=frozenset({ADA.user_id}), default_role=Role.NOBODY),
    )
    service = PlanService(engine=engine, config=config, clock=clock)
    lifecycle = service.lifecycle
    with pytest.raises(errors.PermissionDenied):
        lifecycle.team_statement("CTEAM", actor=BOB)
    assert lifecycle.team_statement("CTEAM", actor=ADA).apps == ()


# --- catch-up after downtime -------------------------------------------------------------------


def test_a_week_down_catches_up_without_stale_notices(
    engine: Engine, lifecycle: Lifecycle, clock: Clock, seed: Callable[..., int]
) -> None:
    down = utc(2028, 2, 27, 4)  # noon on 27 February in UTC+8; back a week later
    back = down + timedelta(days=7)
    clock.set(utc(2028, 2, 20))
    seed(
        apps_csv(
            # 7-day moment during the downtime, expires 2 days after the return
            "1400000011,in-two-days,developer,2028-02-10,,active,CTEAM,2028-03-07T04:00:00Z,",
            # 7-day and 1-day moments during the downtime, expires 12 hours after the return
            "1400000012,in-twelve-hours,developer,2028-02-10,,active,CTEAM,2028-03-05T16:00:00Z,",
            # reminded 7 days before (before the downtime), expired during it
            "1400000013,expired-meanwhile,developer,2028-02-10,,active,CTEAM,2028-03-01T04:00:00Z,",
            # 30-day purge warning moment during the downtime: purged on 2 April
            "1400000014,off-chat,premium,2027-01-01,,disabled,CTEAM,,2028-01-03T04:00:00Z",
            "1400000015,std-chat,standard,2027-01-01,,active,CTEAM,,",
        )
    )
    sweep_every(lifecycle, clock, utc(2028, 2, 20), down, timedelta(hours=1))
    before = notices(engine)
    assert [n.key for n in before if isinstance(n.message, DevExpiryReminder)] == [
        "remind:1400000013:20280301T040000Z:7d"
    ]

    clock.set(back)
    report = lifecycle.sweep()
    assert report.failed == ()
    new = [n for n in notices(engine) if n.id not in {b.id for b in before}]
    by_type = Counter(type(n.message).__name__ for n in new)
    assert by_type["DevExpiryReminder"] == 2
    reminders = {n.app_id: n for n in new if isinstance(n.message, DevExpiryReminder)}
    # one reminder each, saying what is true now
    assert reminders["1400000011"].message.notice_days == 7
    assert "expires in 2 days" in text_of(reminders["1400000011"])
    assert reminders["1400000012"].message.notice_days == 1
    assert "expires in 12 hours" in text_of(reminders["1400000012"])
    assert "1400000013" not in reminders  # expired: no reminder, its suspension says when
    [suspension] = audit_events(engine, "suspend")
    assert suspension.app_id == "1400000013"
    assert "ended on 2028-03-01 12:00" in suspension.detail
    [warning] = [n for n in new if isinstance(n.message, PurgeWarning)]
    assert warning.message.notice_days == 30
    assert days_left(warning.message, warning.message.purge_at) == 28
    [statement] = [n for n in new if isinstance(n.message, StatementIssued)]
    assert period(statement) == "2028-02" and late(statement)
    assert str(statement.message.issued_on) == "2028-03-05"
    assert "it was due on 2028-03-01" in text_of(statement)
    assert report.reminders == 2 and report.suspended == 1
    assert report.purge_warnings == 1 and report.statements == 1

    clock.advance(minutes=1)
    assert lifecycle.sweep().total == 0


# --- pending requests --------------------------------------------------------------------------


def test_expired_requests_and_their_approval_cards(
    engine: Engine, catalog: Any, clock: Clock, seed: Callable[..., int]
) -> None:
    config = CoreConfig(
        catalog=catalog,
        billing_tz=SHANGHAI,
        audit_channel="CAUDIT",
        access=AccessPolicy(
            admins=frozenset({ADA.user_id, BOB.user_id}),
            approvals={"disable": ApprovalRule("peer", 1)},
        ),
    )
    service = PlanService(engine=engine, config=config, clock=clock)
    lifecycle = service.lifecycle
    clock.set(utc(2028, 5, 10, 4))
    seed(
        apps_csv(
            "1400000001,dev-chat,developer,2028-05-01,,active,CTEAM,,",
            "1400000002,std-chat,standard,2027-01-01,,active,CTEAM,,",
        )
    )
    lifecycle.sweep()  # April's statement, out of the way
    mine = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.STANDARD), actor=ADA
    )
    peer = service.request(ChangeRequest(Operation.DISABLE, app="1400000002"), actor=ADA)
    [card] = [n for n in notices(engine) if n.key == f"approval:{peer.id}"]

    clock.advance(minutes=14)
    assert lifecycle.sweep().requests_expired == 0
    clock.advance(minutes=2)
    report = lifecycle.sweep()
    assert (report.requests_expired, report.approval_cards_expired) == (1, 0)
    clock.advance(hours=24)
    report = lifecycle.sweep()
    assert (report.requests_expired, report.approval_cards_expired) == (1, 1)
    assert lifecycle.sweep().total == 0

    [update] = notices(engine, ApprovalCardUpdate)
    assert update.message.update_of == card.id
    assert update.destination == card.destination
    assert update.message.request_id == peer.id == card.message.request_id
    assert update.message.state == "expired"
    assert update.key == f"approval-expired:{peer.id}"
    for request_id, act in ((mine.id, service.confirm), (peer.id, service.approve)):
        assert request_state(engine, request_id) == "expired"
        with pytest.raises(errors.RequestAlreadyDecided):
            act(request_id, actor=BOB if act == service.approve else ADA)
    assert state(engine, "1400000002").status is Status.ACTIVE


# --- once, whatever runs at the same time --------------------------------------------------------

NOW = utc(2028, 6, 10, 4)  # noon in UTC+8
IMPORTED = utc(2028, 5, 20)  # before May ended: May's statements are planbot's to post


def busy_rows(count: int) -> list[str]:
    """`count` apps of each kind that a sweep at NOW acts on, over five owner teams."""
    rows = []
    for i in range(count):
        team = f"CTEAM{i % 5}"
        rows += [
            f"15{i:08d},expired-{i},developer,2028-05-01,,active,{team},2028-06-09T00:00:00Z,",
            f"16{i:08d},soon-{i},developer,2028-05-15,,active,{team},2028-06-14T00:00:00Z,",
            f"17{i:08d},gone-{i},premium,2027-01-01,,disabled,{team},,2028-03-01T00:00:00Z",
            f"18{i:08d},warned-{i},premium,2027-01-01,,disabled,{team},,2028-04-01T00:00:00Z",
        ]
    rows += [f"19{i:08d},paid-{i},standard,2027-01-01,,active,CTEAM{i % 5},," for i in range(10)]
    return rows


def assert_each_once(engine: Engine, reports: list[dict[str, int]], count: int) -> None:
    def total(kind: str) -> int:
        return sum(r[kind] for r in reports)

    assert total("suspended") == count
    assert total("purged") == count
    assert total("reminders") == count
    assert total("purge_warnings") == count
    assert total("statements") == 5
    assert len(audit_events(engine, "suspend")) == count
    assert len(audit_events(engine, "purge")) == count
    assert len({e.app_id for e in audit_events(engine, "suspend")}) == count
    with engine.connect() as connection:
        operations = connection.execute(sa.text("SELECT operation FROM plan_history")).scalars()
        history = Counter(operations)
    assert history["suspend"] == count and history["purge"] == count
    kinds = Counter(type(n.message).__name__ for n in notices(engine))
    assert kinds["DevExpiryReminder"] == count
    assert kinds["PurgeWarning"] == count
    assert kinds["StatementIssued"] == 5
    assert kinds["ChangeApplied"] == 2 * 2 * count  # audit and owner channel, per transition
    assert chain_ok(engine)


def test_concurrent_sweeps_in_threads_do_each_thing_once(
    engine: Engine, service: PlanService, clock: Clock, seed: Callable[..., int]
) -> None:
    count = 60
    clock.set(NOW)
    seed(apps_csv(*busy_rows(count)), now=IMPORTED)
    sweepers = [
        Lifecycle(
            store=service.store,
            config=service.config,
            roles=service.roles,
            clock=service.clock,
            batch_size=7,
        )
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(sweepers))
    reports: list[SweepReport] = []
    failures: list[BaseException] = []

    def run(lifecycle: Lifecycle) -> None:
        try:
            barrier.wait()
            reports.append(lifecycle.sweep(NOW))
        except BaseException as err:  # reported below
            failures.append(err)

    threads = [threading.Thread(target=run, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    assert [r.failed for r in reports] == [()] * len(sweepers)
    assert_each_once(engine, [_counts(r) for r in reports], count)
    assert sweepers[0].sweep(NOW + timedelta(minutes=1)).total == 0


SWEEP_IN_A_PROCESS = """
import json, sys, time
from pathlib import Path
from datetime import datetime
from zoneinfo import ZoneInfo
from core import CoreConfig, Lifecycle, PlanService, load_catalog, make_engine
url, now, go = sys.argv[1], datetime.fromisoformat(sys.argv[2]), Path(sys.argv[3])
engine = make_engine(url)
config = CoreConfig(catalog=load_catalog(), billing_tz=ZoneInfo("Asia/Shanghai"),
                    audit_channel="CAUDIT")
service = PlanService(engine=engine, config=config)
lifecycle = Lifecycle(store=service.store, config=config, roles=service.roles,
                      clock=service.clock, batch_size=7)
with engine.connect():
    pass
while not go.exists():
    time.sleep(0.005)
report = lifecycle.sweep(now)
print(json.dumps({"failed": list(report.failed), **{k: getattr(report, k) for k in (
    "suspended", "purged", "reminders", "purge_warnings", "statements")}}))
"""


@pytest.mark.postgres
def test_two_processes_sweeping_at_once_on_postgres(
    postgres_engine: Engine,
    postgres_url: str,
    catalog: Any,
    clock: Clock,
    tmp_path: Path,
) -> None:
    engine = postgres_engine
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM lifecycle_mark"))
    config = CoreConfig(catalog=catalog, billing_tz=SHANGHAI, audit_channel="CAUDIT")
    count = 60
    clock.set(NOW)
    imports = PlanService(engine=engine, config=config, clock=clock).imports
    imports.from_csv(apps_csv(*busy_rows(count)), actor=Actor("cli", "importer"), now=IMPORTED)
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SWEEP_IN_A_PROCESS, postgres_url, NOW.isoformat(), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1.5)  # both imported and connected
    go.touch()
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r.pop("failed") for r in results] == [[], []]
    assert_each_once(engine, results, count)


def _counts(report: SweepReport) -> dict[str, int]:
    return {
        k: getattr(report, k)
        for k in ("suspended", "purged", "reminders", "purge_warnings", "statements")
    }


# --- cost follows what is due ------------------------------------------------------------------


class Recorder:
    """The SQL statements run on an engine while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, _conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        if self.on:
            self.seen.append((sql, params))


@pytest.fixture
def recorder(engine: Engine) -> Iterator[Recorder]:
    recorder = Recorder()
    event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(engine, "before_cursor_execute", recorder)


def test_a_sweep_with_nothing_due_never_scans_the_app_table(
    engine: Engine,
    lifecycle: Lifecycle,
    clock: Clock,
    seed: Callable[..., int],
    recorder: Recorder,
) -> None:
    clock.set(NOW)
    seed(apps_csv(*busy_rows(20)), now=IMPORTED)
    lifecycle.sweep()  # does what is due
    clock.advance(minutes=1)
    recorder.on = True
    assert lifecycle.sweep().total == 0
    recorder.on = False
    reads = [(sql, params) for sql, params in recorder.seen if re.search(r"\bFROM app\b", sql)]
    assert len(reads) >= 4, "the sweep did not look for due apps"
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # tiny tables are cheaper to scan: ask whether an index *can* serve each query
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            explain, full_scan = "EXPLAIN ", r"Seq Scan on app\b"
        else:
            explain, full_scan = "EXPLAIN QUERY PLAN ", r"SCAN app\b"
        for sql, params in reads:
            plan = [str(row[-1]) for row in connection.exec_driver_sql(explain + sql, params)]
            assert not [line for line in plan if re.search(full_scan, line)], (sql, plan)
    assert len(recorder.seen) < 40


def test_no_statement_for_a_month_that_ended_before_planbot_knew_the_app(
    engine: Engine,
    lifecycle: Lifecycle,
    service: PlanService,
    clock: Clock,
    seed: Callable[..., int],
) -> None:
    clock.set(utc(2028, 2, 20, 4))
    seed(apps_csv("1400000002,std-chat,standard,2027-06-01,,active,CTEAM,,"))  # imported today
    assert lifecycle.sweep().statements == 0, "January ended before planbot knew the app"
    assert notices(engine, StatementIssued) == []
    _, january = service.statement("1400000002", actor=ADA, year=2028, month=1)
    assert january.total == Decimal("399.00"), "a person may still ask for it"
    clock.set(utc(2028, 2, 29, 16))  # midnight, 1 March in UTC+8
    assert lifecycle.sweep().statements == 1, "February ended after: its statement is posted"
    [february] = notices(engine, StatementIssued)
    assert period(february) == "2028-02"
