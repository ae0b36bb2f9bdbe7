"""The one rule that decides every click on a request, as a pure function."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core import (
    Actor,
    AppState,
    BillingMode,
    ChangeRequest,
    Click,
    Operation,
    Plan,
    Request,
    RequestState,
    Role,
    Status,
    errors,
)
from core.requests import Applied, Approval, ApprovalRecorded, Refused, Rejected, Withdrawn, decide

NOW = datetime(2026, 11, 10, 4, tzinfo=UTC)
ADA, BOB, CY, VERA = (Actor(f"U{n.upper()}", n) for n in ("ada", "bob", "cy", "vera"))
ROLES = {ADA.user_id: Role.ADMIN, BOB.user_id: Role.ADMIN, CY.user_id: Role.ADMIN}
APP = AppState(
    app_id="1400000001",
    name="std-chat",
    plan=Plan.STANDARD,
    billing_mode=BillingMode.CURRENT,
    status=Status.ACTIVE,
    created_at=NOW - timedelta(days=300),
    version=3,
)


def request(*, peers: int = 0, **changes: object) -> Request:
    base = Request(
        id="r1",
        change=ChangeRequest(Operation.DISABLE, app=APP.app_id),
        requester=ADA,
        app_id=APP.app_id,
        app_name=APP.name,
        app_version=3,
        channel_id="CTEAM",
        created_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(minutes=10),
        approvals_needed=peers,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def disabled(app: AppState | None) -> AppState:
    assert app is not None
    return replace(app, status=Status.DISABLED, disabled_at=NOW, version=app.version + 1)


def click(
    kind: Click,
    req: Request,
    actor: Actor,
    *,
    app: AppState | None = APP,
    now: datetime = NOW,
    roles: dict[str, Role] = ROLES,
) -> object:
    return decide(
        kind,
        req,
        actor=actor,
        now=now,
        app=app,
        rule=disabled,
        role_of=lambda who: roles.get(who.user_id, Role.VIEWER),
    )


def refusal(decision: object) -> type[errors.PlanError]:
    assert isinstance(decision, Refused), decision
    return type(decision.error)


def test_the_requester_confirms_and_the_change_applies() -> None:
    decision = click(Click.CONFIRM, request(), ADA)
    assert isinstance(decision, Applied) and decision.after.status is Status.DISABLED


@pytest.mark.parametrize("state", [s for s in RequestState if s.final])
def test_a_decided_request_is_already_decided_and_not_audited(state: RequestState) -> None:
    for kind in Click:
        decision = click(kind, request(state=state, decided_by=BOB), ADA)
        assert refusal(decision) is errors.RequestAlreadyDecided
        assert isinstance(decision, Refused) and not decision.audited


def test_an_expired_request_is_closed_as_expired_and_audited() -> None:
    decision = click(Click.CONFIRM, request(), ADA, now=NOW + timedelta(minutes=10))
    assert refusal(decision) is errors.RequestExpired
    assert isinstance(decision, Refused) and decision.state is RequestState.EXPIRED
    assert decision.audited


def test_only_the_requester_confirms_or_withdraws() -> None:
    assert refusal(click(Click.CONFIRM, request(), BOB)) is errors.NotYourRequest
    assert refusal(click(Click.WITHDRAW, request(), BOB)) is errors.NotYourRequest
    assert isinstance(click(Click.WITHDRAW, request(), ADA), Withdrawn)
    assert isinstance(click(Click.REJECT, request(peers=1), ADA), Withdrawn)  # their own: withdraw


def test_a_changed_app_makes_the_request_stale() -> None:
    decision = click(Click.CONFIRM, request(), ADA, app=replace(APP, version=4))
    assert refusal(decision) is errors.AppChangedSincePreview
    assert isinstance(decision, Refused) and decision.state is RequestState.STALE


def test_a_rule_that_now_refuses_closes_the_request_as_refused() -> None:
    decision = click(Click.CONFIRM, request(), ADA, app=None)
    assert refusal(decision) is errors.AppNotFound
    assert isinstance(decision, Refused) and decision.state is RequestState.REFUSED


def test_a_requester_who_lost_the_role_is_refused_and_the_request_stays_open() -> None:
    decision = click(Click.CONFIRM, request(), ADA, roles={})
    assert refusal(decision) is errors.PermissionDenied
    assert isinstance(decision, Refused) and decision.state is None and decision.audited


def test_a_request_for_peers_is_not_confirmed_by_its_requester() -> None:
    assert refusal(click(Click.CONFIRM, request(peers=1), ADA)) is errors.AwaitingApproval
    assert refusal(click(Click.APPROVE, request(peers=1), ADA)) is errors.SelfApprovalNotAllowed


def test_a_peer_approves_and_the_change_applies_for_the_requester() -> None:
    decision = click(Click.APPROVE, request(peers=1), BOB)
    assert isinstance(decision, Applied) and decision.approval is not None
    assert decision.approval.approver == BOB


def test_two_peers_are_needed_one_after_the_other() -> None:
    first = click(Click.APPROVE, request(peers=2), BOB)
    assert isinstance(first, ApprovalRecorded) and first.remaining == 1
    given = (Approval(BOB, "approved", NOW),)
    assert refusal(click(Click.APPROVE, request(peers=2, approvals=given), BOB)) is (
        errors.AlreadyApproved
    )
    assert isinstance(click(Click.APPROVE, request(peers=2, approvals=given), CY), Applied)


def test_a_peer_without_the_role_can_neither_approve_nor_reject() -> None:
    assert refusal(click(Click.APPROVE, request(peers=1), VERA)) is errors.PermissionDenied
    assert refusal(click(Click.REJECT, request(peers=1), VERA)) is errors.PermissionDenied
    assert isinstance(click(Click.REJECT, request(peers=1), BOB), Rejected)


def test_a_reject_on_a_request_without_peers_is_a_forgery() -> None:
    assert refusal(click(Click.REJECT, request(), BOB)) is errors.NotYourRequest
