"""The plan service on a real database: preview -> request -> confirm, and every refusal on the way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    AccessPolicy,
    ApprovalRule,
    BillingMode,
    CardDecided,
    ChangeRequest,
    CoreConfig,
    Operation,
    Plan,
    PlanService,
    Status,
    errors,
    load_message,
)
from tests.conftest import SHANGHAI, Clock, utc
from tests.integration.conftest import ADA, BOB, EVE
from tests.support.csvs import HEADER
from tests.support.records import (
    audit_log,
    chain_report,
    english,
    history,
    outbox,
    request_state,
    said,
    shown,
    warnings,
)

DEV, STD, OFF, OLD, SLEEPY = "1400000001", "1400000002", "1400000003", "1400000004", "1400000005"
SEED = "\n".join(
    [
        HEADER,
        f"{DEV},dev-chat,developer,2026-11-01,,active,CTEAM,2026-12-01,",
        f"{STD},std-chat,standard,2026-01-15,,active,CTEAM,,",
        f"{OFF},off-chat,premium,2026-01-15,,disabled,CTEAM,,2026-11-01T00:00:00Z",
        f"{OLD},old-chat,standard,2021-06-01,,active,CTEAM,,",
        f"{SLEEPY},sleepy-chat,developer,2026-09-01,,suspended,CTEAM,2026-10-01,",
    ]
)


@pytest.fixture(autouse=True)
def apps(seed: Callable[..., int]) -> None:
    assert seed(SEED) == 5


def counts(engine: Engine) -> dict[str, int]:
    tables = ("app", "plan_history", "pending_request", "audit_event", "outbox", "approval")
    with engine.connect() as connection:
        return {
            t: int(connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in tables
        }


# --- every operation, the whole way ----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    change: ChangeRequest
    expect: dict[str, Any]
    shown: tuple[str, str, str]  # one FieldChange the preview must show
    warning: str
    delta: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = {
    "upgrade": Case(
        ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM),
        {"plan": Plan.PREMIUM, "status": Status.ACTIVE, "dev_expires_at": None},
        ("Plan", "developer", "premium"),
        "no way back to the developer plan",
        delta=21 * Decimal("23.30"),  # 10-30 November at 699/30
    ),
    "configure": Case(
        ChangeRequest(
            Operation.CONFIGURE, app=STD, plan=Plan.PREMIUM, addons={"history_retention": "90d"}
        ),
        {"plan": Plan.PREMIUM, "config": {"history_retention": "90d"}},
        ("Monthly price", "$399.00", "$798.00"),
        "once per calendar month",
        delta=21 * (Decimal("26.60") - Decimal("13.30")),
    ),
    "extend": Case(
        ChangeRequest(Operation.EXTEND, app=DEV),
        {"dev_expires_at": datetime(2027, 1, 1, tzinfo=SHANGHAI), "status": Status.ACTIVE},
        (
            "Developer validity until",
            "2026-12-01 00:00 (Asia/Shanghai)",
            "2027-01-01 00:00 (Asia/Shanghai)",
        ),
        "",
        delta=Decimal(0),
    ),
    "extend-suspended": Case(
        ChangeRequest(Operation.EXTEND, app=SLEEPY),
        {"dev_expires_at": utc(2026, 12, 10, 4, 1), "status": Status.ACTIVE},
        ("Status", "suspended", "active"),
        "extending reactivates it",
    ),
    "disable": Case(
        ChangeRequest(Operation.DISABLE, app=STD),
        {"status": Status.DISABLED, "disabled_at": utc(2026, 11, 10, 4, 1), "plan": Plan.STANDARD},
        ("Status", "active", "disabled"),
        "service stops at once",
        delta=-20 * Decimal("13.30"),  # 11-30 November no longer billed; today still is
    ),
    "enable": Case(
        ChangeRequest(Operation.ENABLE, app=OFF),
        {"status": Status.ACTIVE, "disabled_at": None, "plan": Plan.PREMIUM},
        ("Status", "disabled", "active"),
        "billing resumes today",
        delta=21 * Decimal("23.30"),
    ),
    "migrate": Case(
        ChangeRequest(Operation.MIGRATE, app=OLD),
        {"billing_mode": BillingMode.CURRENT},
        ("Billing mode", "legacy", "current"),
        "legacy billing mode can't be restored",
    ),
    "create": Case(
        ChangeRequest(Operation.CREATE, name="fresh-chat"),
        {
            "plan": Plan.DEVELOPER,
            "status": Status.ACTIVE,
            "owner_channel": "CTEAM",
            "dev_expires_at": utc(2026, 12, 10, 4, 1),  # confirmed a minute later
            "billing_mode": BillingMode.CURRENT,
        },
        ("Plan", "-", "developer"),
        "valid for one month",
        delta=Decimal(0),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_preview_request_confirm(
    name: str, service: PlanService, engine: Engine, clock: Clock
) -> None:
    case = CASES[name]
    op = case.change.operation
    untouched = counts(engine)
    audit_before = len(audit_log(engine))

    preview = service.preview(case.change, actor=ADA, channel_id="CTEAM")
    assert counts(engine) == untouched  # a preview writes nothing
    assert preview.operation is op
    words = english(service.config)
    assert case.shown in shown(preview.changes, words)
    assert case.warning in warnings(preview, words)
    assert preview.danger is (op in (Operation.DISABLE, Operation.MIGRATE))
    if case.delta is not None:
        assert preview.cost is not None and preview.cost.delta == case.delta
        assert (preview.cost.billed_from.isoformat(), preview.cost.billed_to.day) == (
            "2026-12-01",
            3,
        )

    pending = service.request(case.change, actor=ADA, channel_id="CTEAM")
    assert pending.expires_at == clock() + timedelta(minutes=15)
    assert request_state(engine, pending.id) == "pending"
    assert counts(engine)["app"] == untouched["app"]  # nothing applied yet
    first_entry = max((e["id"] for e in outbox(engine)), default=0)

    clock.advance(minutes=1)
    outcome = service.confirm(pending.id, actor=ADA)
    assert outcome.state == "applied"
    assert outcome.operation is op
    assert request_state(engine, pending.id) == "applied"

    app_id = outcome.app_id
    assert app_id is not None and app_id.isdigit()
    status = service.status(app_id, actor=ADA)
    for attribute, value in case.expect.items():
        actual = getattr(status.app, attribute)
        assert (dict(actual) if attribute == "config" else actual) == value, attribute

    newest = history(engine, app_id)[0]
    assert (newest.operation, newest.request_id) == (op.value, pending.id)
    assert newest.plan == status.app.plan.value and newest.status == status.app.status.value

    events = audit_log(engine)[audit_before:]
    assert len(events) == 1
    event = events[0]
    assert (event["action"], event["outcome"], event["request_id"]) == (
        op.value,
        "applied",
        pending.id,
    )
    assert (event["actor_id"], event["app_id"]) == (ADA.user_id, app_id)
    assert event["after"]["version"] == status.app.version
    if op is Operation.CREATE:
        assert event["before"] == {}
    else:
        assert event["before"]["version"] == status.app.version - 1

    entries = outbox(engine, first_entry)
    home = [e["payload"] for e in entries if e["topic"] == "home"]
    assert [(h["kind"], h["app_ids"]) for h in home] == [("home_changed", [app_id])]
    entries = [e for e in entries if e["topic"] != "home"]  # (home tabs: tests/unit/test_home.py)
    assert sorted((e["kind"], e["destination"]) for e in entries) == [
        ("message", "CAUDIT"),
        ("message", "CTEAM"),
        ("provision", "provisioner"),
    ]
    assert all(e["app_id"] == app_id for e in entries)
    messages = [e["payload"] for e in entries if e["kind"] == "message"]
    assert all(m["operation"] == op.value and m["audit_seq"] == event["seq"] for m in messages)
    provision = next(e["payload"] for e in entries if e["kind"] == "provision")
    assert provision["idempotency_key"] == pending.id
    assert provision["after"]["version"] == status.app.version
    assert chain_report(engine).ok


# --- refused confirmations -------------------------------------------------------------------


def upgrade_dev(service: PlanService, plan: Plan = Plan.PREMIUM, actor: Any = ADA) -> str:
    change = ChangeRequest(Operation.UPGRADE, app=DEV, plan=plan)
    return service.request(change, actor=actor, channel_id="CTEAM").id


def refusals(engine: Engine, request_id: str) -> list[dict[str, Any]]:
    return [e for e in audit_log(engine) if e["request_id"] == request_id[:40]]


def test_a_stored_request_can_be_read_back(service: PlanService) -> None:
    request_id = upgrade_dev(service)
    stored = service.queries.request(request_id)
    assert stored is not None
    assert (stored.state, stored.operation, stored.app_id) == ("pending", "upgrade", DEV)
    assert stored.change.plan == "premium" and stored.requester.user_id == ADA.user_id
    assert service.queries.request("no-such-request") is None


def test_confirm_twice_is_already_done_and_audited_once(
    service: PlanService, engine: Engine
) -> None:
    request_id = upgrade_dev(service)
    service.confirm(request_id, actor=ADA)
    snapshot = counts(engine)
    with pytest.raises(errors.RequestAlreadyDecided) as refused:
        service.confirm(request_id, actor=ADA)
    assert "already done" in refused.value.message
    assert counts(engine) == snapshot  # no second change, no second audit event
    assert [e["outcome"] for e in refusals(engine, request_id)] == ["applied"]


@pytest.mark.parametrize("op", [Operation.UPGRADE, Operation.CREATE])
def test_the_answer_to_a_confirmation_is_queued_with_the_change(
    service: PlanService, engine: Engine, op: Operation
) -> None:
    change = (
        ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM)
        if op is Operation.UPGRADE
        else ChangeRequest(Operation.CREATE, name="answered-chat")
    )
    request_id = service.request(change, actor=ADA, channel_id="CTEAM").id
    url = "https://hooks.slack.test/actions/T1/1/abc"

    before = max((e["id"] for e in outbox(engine)), default=0)
    with pytest.raises(errors.NotYourRequest):  # refused: nothing queued for the URL
        service.confirm(request_id, actor=BOB, reply_url=url)
    assert [e for e in outbox(engine, before) if e["kind"] == "reply"] == []
    outcome = service.confirm(request_id, actor=ADA, reply_url=url)
    replies = [e for e in outbox(engine, before) if e["kind"] == "reply"]
    assert [r["payload"]["url"] for r in replies] == [url]
    card = load_message(replies[0]["payload"]["message"])
    assert isinstance(card, CardDecided) and card.outcome == outcome  # the facts, not Block Kit
    assert card.reader == ADA.user_id  # rendered in the language of whoever reads it
    with pytest.raises(errors.RequestAlreadyDecided):  # a second click: the first answer stands
        service.confirm(request_id, actor=ADA, reply_url=url)
    assert len([e for e in outbox(engine, before) if e["kind"] == "reply"]) == 1


def test_an_expired_request_is_refused_and_audited(
    service: PlanService, engine: Engine, clock: Clock
) -> None:
    request_id = upgrade_dev(service)
    clock.advance(minutes=15)
    with pytest.raises(errors.RequestExpired) as refused:
        service.confirm(request_id, actor=ADA)
    assert "expired at" in refused.value.message and "again" in refused.value.message
    assert service.status(DEV, actor=ADA).app.plan is Plan.DEVELOPER
    assert [(e["outcome"], e["actor_id"]) for e in refusals(engine, request_id)] == [
        ("refused", ADA.user_id)
    ]
    assert request_state(engine, request_id) == "expired"
    with pytest.raises(errors.RequestAlreadyDecided) as again:
        service.confirm(request_id, actor=ADA)
    assert "expired" in again.value.message
    assert "expired by" not in again.value.message  # nobody expired it; time did


def test_a_request_confirmed_just_before_its_expiry_applies(
    service: PlanService, clock: Clock
) -> None:
    request_id = upgrade_dev(service)
    clock.advance(minutes=14, seconds=59)
    assert service.confirm(request_id, actor=ADA).state == "applied"


def test_an_app_changed_since_the_preview_is_refused_and_audited(
    service: PlanService, engine: Engine
) -> None:
    first, second = upgrade_dev(service, Plan.PREMIUM), upgrade_dev(service, Plan.STANDARD)
    service.confirm(first, actor=ADA)
    with pytest.raises(errors.AppChangedSincePreview) as refused:
        service.confirm(second, actor=ADA)
    assert "changed since this preview" in refused.value.message
    assert service.status(DEV, actor=ADA).app.plan is Plan.PREMIUM
    assert [e["outcome"] for e in refusals(engine, second)] == ["refused"]
    with pytest.raises(errors.RequestAlreadyDecided) as again:
        service.confirm(second, actor=ADA)
    assert "stale by" not in again.value.message


def test_someone_elses_request_is_refused_and_audited(service: PlanService, engine: Engine) -> None:
    request_id = upgrade_dev(service)
    with pytest.raises(errors.NotYourRequest) as refused:
        service.confirm(request_id, actor=BOB)
    assert "belongs to Ada" in refused.value.message
    assert [(e["outcome"], e["actor_id"]) for e in refusals(engine, request_id)] == [
        ("refused", BOB.user_id)
    ]
    assert service.status(DEV, actor=ADA).app.plan is Plan.DEVELOPER
    assert service.confirm(request_id, actor=ADA).state == "applied"  # still Ada's to confirm


def test_an_unknown_request_id_is_refused_and_audited(service: PlanService, engine: Engine) -> None:
    with pytest.raises(errors.RequestNotFound) as refused:
        service.confirm("no-such-request", actor=BOB)
    assert "doesn't exist" in refused.value.message
    assert [(e["outcome"], e["actor_id"]) for e in refusals(engine, "no-such-request")] == [
        ("refused", BOB.user_id)
    ]
    assert chain_report(engine).ok


def test_cancel_withdraws_the_request(service: PlanService, engine: Engine) -> None:
    request_id = upgrade_dev(service)
    with pytest.raises(errors.NotYourRequest):
        service.withdraw(request_id, actor=BOB)
    outcome = service.withdraw(request_id, actor=ADA)
    assert outcome.state == "cancelled"
    assert "nothing was changed" in said(outcome, english(service.config))
    with pytest.raises(errors.RequestAlreadyDecided) as refused:
        service.confirm(request_id, actor=ADA)
    assert "cancelled" in refused.value.message
    assert service.status(DEV, actor=ADA).app.plan is Plan.DEVELOPER


def test_a_refused_rule_at_preview_writes_nothing(service: PlanService, engine: Engine) -> None:
    untouched = counts(engine)
    with pytest.raises(errors.LegacyBillingMode) as refused:
        service.preview(ChangeRequest(Operation.UPGRADE, app=OLD, plan=Plan.PREMIUM), actor=ADA)
    assert f"/plan migrate {OLD}" in refused.value.message
    with pytest.raises(errors.LegacyBillingMode):
        service.request(ChangeRequest(Operation.DISABLE, app=OLD), actor=ADA)
    with pytest.raises(errors.AppNotFound):
        service.preview(ChangeRequest(Operation.EXTEND, app="no-such-app"), actor=ADA)
    assert counts(engine) == untouched


def test_apps_are_found_by_exact_name(service: PlanService) -> None:
    preview = service.preview(ChangeRequest(Operation.EXTEND, app="dev-chat"), actor=ADA)
    assert preview.app_id == DEV


def test_a_viewer_cannot_request_changes(service: PlanService) -> None:
    with pytest.raises(errors.PermissionDenied) as refused:
        upgrade_dev(service, actor=EVE)
    assert "`operator` role" in refused.value.message
    assert service.status(DEV, actor=EVE).app.app_id == DEV  # viewers may look


# --- peer approval ---------------------------------------------------------------------------


@pytest.fixture
def peer_service(engine: Engine, config: CoreConfig, clock: Clock) -> PlanService:
    access = AccessPolicy(
        admins=config.access.admins, approvals={"disable": ApprovalRule("peer", 1)}
    )
    return PlanService(
        engine=engine,
        config=CoreConfig(
            catalog=config.catalog,
            billing_tz=config.billing_tz,
            audit_channel=config.audit_channel,
            access=access,
        ),
        clock=clock,
    )


def test_peer_approval_needs_someone_else(peer_service: PlanService, engine: Engine) -> None:
    pending = peer_service.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    assert pending.approval.needs_peer
    asks = [e for e in outbox(engine) if e["topic"] == "approval"]
    assert [(a["destination"], a["key"]) for a in asks] == [("CTEAM", f"approval:{pending.id}")]

    with pytest.raises(errors.SelfApprovalNotAllowed):
        peer_service.approve(pending.id, actor=ADA)
    with pytest.raises(errors.AwaitingApproval):
        peer_service.confirm(pending.id, actor=ADA)
    with pytest.raises(errors.PermissionDenied):  # a viewer can't approve a disable
        peer_service.approve(pending.id, actor=EVE)
    assert peer_service.status(STD, actor=ADA).app.status is Status.ACTIVE

    outcome = peer_service.approve(pending.id, actor=BOB)
    assert outcome.state == "applied" and [a.label for a in outcome.approvals] == [BOB.label]
    assert peer_service.status(STD, actor=ADA).app.status is Status.DISABLED
    with pytest.raises(errors.RequestAlreadyDecided):
        peer_service.approve(pending.id, actor=BOB)
    outcomes = [e["outcome"] for e in refusals(engine, pending.id)]
    assert sorted(outcomes) == ["applied", "refused", "refused", "refused"]
    applied = next(e for e in refusals(engine, pending.id) if e["outcome"] == "applied")
    assert applied["actor_id"] == BOB.user_id
    assert len([h for h in history(engine, STD) if h.operation == "disable"]) == 1


def test_a_peer_can_reject(peer_service: PlanService, engine: Engine) -> None:
    pending = peer_service.request(ChangeRequest(Operation.DISABLE, app=STD), actor=ADA)
    outcome = peer_service.reject(pending.id, actor=BOB)
    assert outcome.state == "rejected"
    assert f"<@{BOB.user_id}>" in said(outcome, english(peer_service.config))
    with pytest.raises(errors.RequestAlreadyDecided) as refused:
        peer_service.approve(pending.id, actor=BOB)
    assert "rejected" in refused.value.message
    assert peer_service.status(STD, actor=ADA).app.status is Status.ACTIVE
    assert [e["outcome"] for e in refusals(engine, pending.id)] == ["rejected"]


def test_operations_without_a_peer_rule_stay_self_confirmed(peer_service: PlanService) -> None:
    request_id = upgrade_dev(peer_service)
    assert peer_service.confirm(request_id, actor=ADA).state == "applied"


# --- statements and status -------------------------------------------------------------------


def apply(service: PlanService, change: ChangeRequest) -> None:
    pending = service.request(change, actor=ADA)
    service.confirm(pending.id, actor=ADA)


def test_a_months_statement_from_the_history(
    service: PlanService, engine: Engine, clock: Clock
) -> None:
    clock.set(utc(2026, 11, 5, 4))
    apply(service, ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.STANDARD))
    clock.set(utc(2026, 11, 10, 4))
    apply(service, ChangeRequest(Operation.CONFIGURE, app=DEV, plan=Plan.PREMIUM))
    clock.set(utc(2026, 11, 20, 4))
    apply(service, ChangeRequest(Operation.DISABLE, app=DEV))
    clock.set(utc(2026, 12, 2, 4))

    app, bill = service.statement(DEV, actor=ADA, year=2026, month=11)
    by_day = {d.day.day: d.amount for d in bill.days}
    assert [by_day[d] for d in (1, 4)] == [0, 0]  # developer
    assert {by_day[d] for d in range(5, 10)} == {Decimal("13.30")}  # standard from the 5th
    assert {by_day[d] for d in range(10, 21)} == {Decimal("23.30")}  # premium; 20th still billed
    assert {by_day[d] for d in range(21, 31)} == {Decimal(0)}
    assert bill.total == 5 * Decimal("13.30") + 11 * Decimal("23.30") == Decimal("322.80")
    assert not bill.projected and bill.bill_window[0].isoformat() == "2026-12-01"
    assert app.status is Status.DISABLED
    assert [(r.first.day, r.last.day, r.label, r.amount) for r in bill.runs] == [
        (1, 4, "developer", Decimal(0)),
        (5, 9, "standard", Decimal("66.50")),
        (10, 20, "premium", Decimal("256.30")),
        (21, 30, "premium (disabled)", Decimal(0)),
    ]
    _, october = service.statement(DEV, actor=ADA, year=2026, month=10)
    assert october.days == () and october.before_app  # it did not exist yet
    assert october.created_on is not None and october.created_on.isoformat() == "2026-11-01"


def test_a_preview_costs_what_the_bill_then_says_and_a_full_month_its_price(
    service: PlanService, clock: Clock
) -> None:
    _, october = service.statement(STD, actor=ADA, year=2026, month=10)
    assert october.total == Decimal("399.00")  # 31 days of 399/31, rounded once
    clock.set(utc(2026, 12, 10, 4))  # noon on 10 December in the billing zone
    change = ChangeRequest(
        Operation.CONFIGURE, app=STD, plan=Plan.PREMIUM, addons={"history_retention": "90d"}
    )
    pending = service.request(change, actor=ADA)
    service.confirm(pending.id, actor=ADA)
    clock.set(utc(2027, 1, 2, 4))
    _, december = service.statement(STD, actor=ADA, year=2026, month=12)
    assert [(r.first.day, r.last.day, r.label, r.addons) for r in december.runs] == [
        (1, 9, "standard", ()),
        (10, 31, "premium", ("Message history retention: 90d",)),
    ]
    # (399 x 9 + 798 x 22) / 31 = 682.1612...: 115.84 + 566.32, the cent to the larger remainder
    assert [r.amount for r in december.runs] == [Decimal("115.84"), Decimal("566.32")]
    assert december.total == Decimal("682.16")
    cost = pending.preview.cost
    assert (cost.before_month_total, cost.after_month_total) == (Decimal("399.00"), december.total)
    assert cost.delta == Decimal("283.16")


def test_a_bill_for_a_month_that_cannot_have_one_is_refused(service: PlanService) -> None:
    for year, month in [(9999, 12), (2027, 12), (2026, 13), (1969, 1)]:
        with pytest.raises(errors.InvalidBillMonth):
            service.statement(STD, actor=ADA, year=year, month=month)
    _, ahead = service.statement(STD, actor=ADA, year=2027, month=11)  # a year ahead: not yet
    assert ahead.not_started and ahead.total == Decimal("399.00")


def test_the_current_months_statement_projects_to_the_months_end(
    service: PlanService, clock: Clock
) -> None:
    apply(service, ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM))
    _, bill = service.statement(DEV, actor=ADA)
    assert (bill.year, bill.month) == (2026, 11)
    assert bill.to_date == Decimal("23.30")  # today, the 10th, is the upgrade's day
    assert bill.total == 21 * Decimal("23.30")
    assert bill.projected


def test_status_shows_the_months_configuration_change(service: PlanService, clock: Clock) -> None:
    before = service.status(STD, actor=ADA)
    assert not before.config_change_used and before.next_config_change is None
    assert before.monthly_price == Decimal(399)
    apply(service, ChangeRequest(Operation.CONFIGURE, app=STD, addons={"group_members": "6000"}))
    after = service.status(STD, actor=ADA)
    assert after.config_change_used
    assert after.next_config_change == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert after.monthly_price == Decimal(399 + 199)
    assert "Members per group: 6000" in after.config_text
    with pytest.raises(errors.ConfigChangeLimitReached) as refused:
        service.preview(ChangeRequest(Operation.CONFIGURE, app=STD, plan=Plan.PREMIUM), actor=ADA)
    assert "2026-12-01" in refused.value.message
    clock.set(utc(2026, 11, 30, 16, 0))  # 1 December in UTC+8
    assert not service.status(STD, actor=ADA).config_change_used


def test_asking_for_an_addons_default_does_not_use_up_the_months_change(
    service: PlanService,
) -> None:
    with pytest.raises(errors.NothingToChange):
        service.preview(
            ChangeRequest(Operation.CONFIGURE, app=STD, addons={"history_retention": "plan"}),
            actor=ADA,
        )
    assert not service.status(STD, actor=ADA).config_change_used


def test_status_of_a_disabled_app_shows_its_purge_date(service: PlanService) -> None:
    status = service.status(OFF, actor=ADA)
    assert status.purge_at == utc(2026, 11, 1) + timedelta(days=90)


# --- the audit chain in the database ---------------------------------------------------------


def make_history(service: PlanService) -> None:
    apply(service, ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM))
    apply(service, ChangeRequest(Operation.DISABLE, app=STD))
    apply(service, ChangeRequest(Operation.MIGRATE, app=OLD))


def test_the_chain_detects_an_edited_row(service: PlanService, engine: Engine) -> None:
    make_history(service)
    assert chain_report(engine).ok
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_event SET actor_name = 'Mallory' WHERE seq = 3"))
    report = chain_report(engine)
    assert not report.ok and report.seq == 3 and "altered" in (report.problem or "")


def test_the_chain_detects_a_deleted_row(service: PlanService, engine: Engine) -> None:
    make_history(service)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_event WHERE seq = 2"))
    report = chain_report(engine)
    assert not report.ok and "record 2 is missing" in (report.problem or "")


def test_the_chain_detects_a_deleted_last_row(service: PlanService, engine: Engine) -> None:
    make_history(service)
    with engine.begin() as connection:
        last = connection.execute(sa.text("SELECT max(seq) FROM audit_event")).scalar_one()
        connection.execute(sa.text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
    report = chain_report(engine)
    assert not report.ok and f"but {last} were written" in (report.problem or "")


def test_the_chain_verifies_whatever_zone_the_clock_is_in(
    engine: Engine, config: CoreConfig, clock: Clock
) -> None:
    local_clock = Clock(clock().astimezone(SHANGHAI))
    make_history(PlanService(engine=engine, config=config, clock=local_clock))
    assert chain_report(engine).ok


def test_a_recording_provisioner_leaves_nothing_to_deliver(
    engine: Engine, config: CoreConfig, clock: Clock
) -> None:
    recorded = PlanService(
        engine=engine,
        config=replace(config, provisioning_recorded_only=True),
        clock=clock,
    )
    pending = recorded.request(
        ChangeRequest(Operation.UPGRADE, app=DEV, plan=Plan.PREMIUM), actor=ADA
    )
    recorded.confirm(pending.id, actor=ADA)
    rows = [e for e in outbox(engine) if e["app_id"] == DEV]
    provision = [r for r in rows if r["kind"] == "provision"]
    assert len(provision) == 1 and provision[0]["status"] == "delivered"
    assert provision[0]["payload"]["idempotency_key"] == pending.id
    assert all(r["status"] == "pending" for r in rows if r["kind"] == "message")
