"""A pending request, its states, and the one rule that decides every click on it.

A person previews a change; the preview is stored as a `Request` waiting for its confirmation
(by the requester) or for the approval of peers. Each button press (confirm, approve, reject,
withdraw) is decided by `decide`, a pure function of the request, the app as it is now, the roles
of the people involved and the moment. The service runs it inside whichever unit of work it uses
and writes what the `Decision` says; nothing else decides a click.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from core import errors
from core.access import ROLE_FOR, Role
from core.domain import Actor, AppState, Operation, Plan

__all__ = [
    "Applied",
    "Approval",
    "ApprovalRecorded",
    "ChangeRequest",
    "Click",
    "Decision",
    "Refused",
    "Rejected",
    "Request",
    "RequestState",
    "Withdrawn",
    "decide",
]


class RequestState(enum.StrEnum):
    """Where a request stands; every state but PENDING is final."""

    PENDING = "pending"
    APPLIED = "applied"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    STALE = "stale"  # the app changed between preview and confirmation
    REFUSED = "refused"  # the rule refused the change when it was confirmed

    @property
    def final(self) -> bool:
        """Whether nothing more can happen to the request."""
        return self is not RequestState.PENDING


class Click(enum.StrEnum):
    """A button a person pressed on a request's card."""

    CONFIRM = "confirm"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class ChangeRequest:
    """A change a person asks for, before it is checked."""

    operation: Operation
    app: str | None = None
    plan: Plan | None = None
    addons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "addons", MappingProxyType(dict(self.addons)))


@dataclass(frozen=True)
class Approval:
    """One peer's decision on a request that needs approval."""

    approver: Actor
    decision: str  # "approved" or "rejected"
    at: datetime


@dataclass(frozen=True)
class Request:
    """A previewed change waiting for its confirmation or its approvals, or how it ended."""

    id: str
    change: ChangeRequest
    requester: Actor  # with the groups they had when asking (their role is re-checked)
    app_id: str | None  # None for a new app
    app_name: str
    app_version: int | None  # the version the preview was made from
    channel_id: str | None  # where it was asked (a new app's owner)
    created_at: datetime
    expires_at: datetime
    approvals_needed: int = 0
    state: RequestState = RequestState.PENDING
    decided_by: Actor | None = None
    decided_at: datetime | None = None
    approvals: tuple[Approval, ...] = ()
    #: the app the change created or changed, once applied
    result_app_id: str | None = None
    #: where the requester's card can be answered (the reply URL of their command), if known
    reply_url: str | None = None

    @property
    def operation(self) -> Operation:
        """The operation asked for."""
        return self.change.operation

    @property
    def needs_peers(self) -> bool:
        """Whether people other than the requester must approve it."""
        return self.approvals_needed > 0

    @property
    def approved_by(self) -> tuple[Actor, ...]:
        """The peers who approved it so far."""
        return tuple(a.approver for a in self.approvals if a.decision == "approved")

    @property
    def owner_team(self) -> str | None:
        """The team a new app will belong to (the channel it was asked in)."""
        return self.channel_id

    def closed(self, state: RequestState, by: Actor, at: datetime) -> Request:
        """The request, ended in `state` by `by` at `at`."""
        return replace(self, state=state, decided_by=by, decided_at=at)


# --- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The click is refused: nothing changes but, when `state` is set, the request's state.

    `audited`: the refusal matters (someone acting on another's request, without the role, too
    late, on a changed app) and goes to the audit trail; a click on an already decided request
    does not. `announced`: the audit channel hears of it too, because it is about who acted
    (someone pressing another's button, or acting without the role); a click that came too late
    or on a changed app is only recorded.
    """

    error: errors.PlanError
    audited: bool = True
    state: RequestState | None = None
    announced: bool = False


@dataclass(frozen=True)
class Applied:
    """The change is applied: `after` is the app's new state (a new app for CREATE)."""

    after: AppState
    approval: Approval | None = None  # the last approval, recorded with the change


@dataclass(frozen=True)
class ApprovalRecorded:
    """A peer approved; more approvals are needed before the change is applied."""

    approval: Approval
    remaining: int


@dataclass(frozen=True)
class Rejected:
    """A peer rejected the request."""

    approval: Approval


@dataclass(frozen=True)
class Withdrawn:
    """The requester withdrew (cancelled) the request."""


Decision = Refused | Applied | ApprovalRecorded | Rejected | Withdrawn

#: what the rule of an operation does to an app (None for a new app); raises a PlanError
Rule = Callable[[AppState | None], AppState]


def decide(
    click: Click,
    request: Request,
    *,
    actor: Actor,
    now: datetime,
    app: AppState | None,
    rule: Rule,
    role_of: Callable[[Actor], Role],
    admins: Sequence[str] = (),
) -> Decision:
    """What `actor`'s click does to `request`, given the app as it is now.

    `rule` applies the request's operation to the app (or makes the new app); `role_of` gives a
    person's role for the app's owner team. Every check of a click is here, in this order: the
    request is still open, not expired; who may press this button; the app is unchanged since
    the preview; the rule still allows the change; the requester (and the approver) still have
    the role the operation needs.
    """
    if request.state.final:
        by = request.decided_by
        return Refused(
            errors.RequestAlreadyDecided(
                request.state, by.label if by else None, by.user_id if by else None
            ),
            audited=False,
        )
    if now >= request.expires_at:
        return Refused(errors.RequestExpired(request.expires_at), state=RequestState.EXPIRED)
    mine = actor.user_id == request.requester.user_id
    if click is Click.WITHDRAW or (click is Click.REJECT and mine):
        if not mine:
            return _not_yours(request)
        return Withdrawn()
    if click is Click.CONFIRM or (click is Click.APPROVE and not request.needs_peers):
        if request.needs_peers:
            return Refused(errors.AwaitingApproval(request.approvals_needed), announced=True)
        if not mine:
            return _not_yours(request)
        return _apply(
            request, actor=actor, now=now, app=app, rule=rule, role_of=role_of, admins=admins
        )
    if not request.needs_peers:  # a Reject on a card that has none: forged
        return _not_yours(request)
    if click is Click.APPROVE and mine:
        return Refused(errors.SelfApprovalNotAllowed(), announced=True)
    needed = ROLE_FOR[request.operation]
    if role_of(actor) < needed:
        _unless_groups_pending(actor, needed, role_of)
        return Refused(_denied(request.operation, needed, admins), announced=True)
    if click is Click.REJECT:
        return Rejected(Approval(actor, "rejected", now))
    if any(a.user_id == actor.user_id for a in request.approved_by):
        return Refused(
            errors.AlreadyApproved(request.approvals_needed - len(request.approved_by)),
            audited=False,
        )
    approval = Approval(actor, "approved", now)
    remaining = request.approvals_needed - len(request.approved_by) - 1
    if remaining > 0:
        return ApprovalRecorded(approval, remaining)
    applied = _apply(
        request,
        actor=request.requester,
        now=now,
        app=app,
        rule=rule,
        role_of=role_of,
        admins=admins,
    )
    if isinstance(applied, Applied):
        return Applied(applied.after, approval)
    return applied


def _apply(
    request: Request,
    *,
    actor: Actor,
    now: datetime,
    app: AppState | None,
    rule: Rule,
    role_of: Callable[[Actor], Role],
    admins: Sequence[str],
) -> Decision:
    """The change applied for `actor` (the requester), or why not."""
    if request.operation is not Operation.CREATE:
        if app is None:
            return Refused(errors.AppNotFound(request.app_id or ""), state=RequestState.REFUSED)
        if app.version != request.app_version:
            return Refused(
                errors.AppChangedSincePreview(app.app_id, app.name), state=RequestState.STALE
            )
    try:
        after = rule(app)
    except errors.PlanError as err:
        return Refused(err, state=RequestState.REFUSED)
    needed = ROLE_FOR[request.operation]
    if role_of(actor) < needed:
        _unless_groups_pending(actor, needed, role_of)
        return Refused(_denied(request.operation, needed, admins), announced=True)
    return Applied(after)


def _unless_groups_pending(actor: Actor, needed: Role, role_of: Callable[[Actor], Role]) -> None:
    """Not a refusal yet when a group not read yet could give the actor the role: nothing is
    decided (GroupsNotYetKnown: the click is tried again in a few seconds)."""
    if actor.pending_groups and role_of(actor.in_pending_groups()) >= needed:
        raise errors.GroupsNotYetKnown(sorted(actor.pending_groups))


def _denied(operation: Operation, needed: Role, admins: Sequence[str]) -> errors.PermissionDenied:
    what = "create apps" if operation is Operation.CREATE else f"{operation} this app"
    return errors.PermissionDenied(what, needed.label, admins)


def _not_yours(request: Request) -> Refused:
    requester = request.requester
    return Refused(
        errors.NotYourRequest(requester.name or requester.user_id, requester.user_id),
        announced=True,
    )
