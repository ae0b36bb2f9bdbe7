"""Changing: preview a change, store it as a request, and decide each click on it exactly once.

Every click (confirm, approve, reject, withdraw) goes the same way: read the request and the app,
let `core.requests.decide` say what the click does, and write what it says in one transaction:
the change with its records (`core.records.record_change`), the request's new state, the
approval, the audit record of a refusal that matters, the messages, and the card's new face for
the clicker. A confirmation first tries a fast unit of work (compiled, optimistic: its writes
are guarded by the request's state and the app's version); if a guard fails because someone
else got there first, it is decided again on a locking unit of work, by the same code.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core import domain, errors
from core.access import ROLE_FOR, ApprovalRule
from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import Actor, AppState, Operation
from core.facts import Outcome, Preview, Refusal, changed_fields
from core.home import home_changed
from core.messages import ApprovalRequested, CardDecided, RequestEvent, person
from core.previews import cost_of, preview, rule
from core.queries import resolve_with_segments
from core.records import enqueue, record_change, reply
from core.requests import (
    Applied,
    ApprovalRecorded,
    ChangeRequest,
    Click,
    Decision,
    Refused,
    Rejected,
    Request,
    RequestState,
    Withdrawn,
    decide,
)
from core.roles import Roles
from core.store.ports import Store, UnitOfWork
from core.store.runners import StaleWrite

__all__ = ["Changes", "PendingRequest"]

#: a preview reads the history that started up to this long from now
_PREVIEW_HORIZON = timedelta(seconds=1)


@dataclass(frozen=True)
class PendingRequest:
    """A stored preview waiting for confirmation (or for peer approval)."""

    request: Request
    preview: Preview
    approval: ApprovalRule

    @property
    def id(self) -> str:
        """The request's id (what its buttons carry)."""
        return self.request.id

    @property
    def expires_at(self) -> datetime:
        """When it can no longer be confirmed."""
        return self.request.expires_at

    @property
    def created_at(self) -> datetime:
        """When it was asked."""
        return self.request.created_at

    @property
    def requester(self) -> Actor:
        """Who asked."""
        return self.request.requester


class Changes:
    """Previews, requests and the clicks that decide them."""

    def __init__(
        self,
        *,
        store: Store,
        config: CoreConfig,
        roles: Roles,
        clock: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
        request_ids: Callable[[], str] = lambda: secrets.token_urlsafe(16),
        app_ids: Callable[[], str] = lambda: "14" + f"{secrets.randbelow(10**8):08d}",
    ) -> None:
        self.store = store
        self.config = config
        self.roles = roles
        self.clock = clock
        self.wake = wake or (lambda: None)
        self.request_ids = request_ids
        self.app_ids = app_ids

    # --- previews and requests -----------------------------------------------------------

    def preview(
        self, change: ChangeRequest, *, actor: Actor, channel_id: str | None = None
    ) -> Preview:
        """What the change would do, without writing anything."""
        return self._check(change, actor, channel_id, self.clock())[1]

    def request(
        self, change: ChangeRequest, *, actor: Actor, channel_id: str | None = None
    ) -> PendingRequest:
        """Store the previewed change as a pending request for its confirmation."""
        now = self.clock()
        # The preview is read outside the write transaction: the app's version goes with the
        # request, and the confirmation refuses it if the app changed in between.
        before, shown = self._check(change, actor, channel_id, now)
        rule_ = self.config.access.approval_for(change.operation)
        ttl = self.config.approval_ttl if rule_.needs_peer else self.config.request_ttl
        request = Request(
            id=self.request_ids(),
            change=replace(change, app=before.app_id if before else None),
            requester=actor,
            app_id=before.app_id if before else None,
            app_name=shown.app_name,
            app_version=before.version if before else None,
            channel_id=channel_id,
            created_at=now,
            expires_at=now + ttl,
            approvals_needed=rule_.approvers if rule_.needs_peer else 0,
        )
        # A plain request's loss in a database crash is harmless (its card says it is gone);
        # one that posts an approval card is not.
        with self.store.unit_of_work(fast=True, durable=rule_.needs_peer) as uow:
            uow.requests.add(request)
            if rule_.needs_peer:
                self._post_approval_card(uow, request, shown, before, now)
                self._home_changed(uow, request, now)
            uow.commit()
        return PendingRequest(request, shown, rule_)

    def _check(
        self, change: ChangeRequest, actor: Actor, channel_id: str | None, now: datetime
    ) -> tuple[AppState | None, Preview]:
        """The change checked and previewed from what is stored now (no lock)."""
        allowed = self.config.access.allowed_channels
        if allowed and channel_id not in allowed:
            raise errors.ChannelNotAllowed(sorted(allowed))
        with self.store.unit_of_work(fast=True) as uow:
            if change.operation is Operation.CREATE:
                self.roles.require(actor, Operation.CREATE, channel_id, "create apps")
                after = self._new_app(uow, change.name or "", channel_id, now, "(assigned)")
                return None, preview(Operation.CREATE, None, after, [], now, self.config)
            before, segments = resolve_with_segments(
                uow, change.app or "", until=now + _PREVIEW_HORIZON
            )
        op = change.operation
        self.roles.require(actor, op, before.owner_channel, f"{op} this app")
        after = rule(before, change, now, self.config)
        return before, preview(op, before, after, segments, now, self.config)

    def _new_app(
        self, uow: UnitOfWork, name: str, channel_id: str | None, now: datetime, app_id: str
    ) -> AppState:
        state = domain.create(
            app_id=app_id, name=name, owner_channel=channel_id, now=now, tz=self.config.billing_tz
        )
        taken = uow.apps.by_name(state.name)
        if taken:
            raise errors.AppNameTaken(state.name, taken[0].app_id)
        return state

    def _post_approval_card(
        self,
        uow: UnitOfWork,
        request: Request,
        shown: Preview,
        before: AppState | None,
        now: datetime,
    ) -> None:
        access = self.config.access
        channel = access.approvals_channel or (before.owner_channel if before else None)
        channel = channel or self.config.audit_channel or request.channel_id
        if not channel:
            return
        card = ApprovalRequested(
            request_id=request.id,
            preview=shown,
            requester=person(request.requester),
            approvals_needed=request.approvals_needed,
            role=ROLE_FOR[request.operation].label,
            expires_at=request.expires_at,
        )
        enqueue(
            uow,
            card,
            destination=channel,
            app_id=request.app_id,
            now=now,
            topic="approval",
            key=f"approval:{request.id}",
        )
        uow.after_commit(self.wake)

    # --- clicks --------------------------------------------------------------------------

    def confirm(self, request_id: str, *, actor: Actor, reply_url: str | None = None) -> Outcome:
        """The requester applies their request, exactly once."""
        return self.click(Click.CONFIRM, request_id, actor=actor, reply_url=reply_url)

    def approve(self, request_id: str, *, actor: Actor, reply_url: str | None = None) -> Outcome:
        """A peer approves; the request is applied once enough peers approved."""
        return self.click(Click.APPROVE, request_id, actor=actor, reply_url=reply_url)

    def reject(self, request_id: str, *, actor: Actor, reply_url: str | None = None) -> Outcome:
        """A peer rejects a request that waits for approval (its requester: withdraws it)."""
        return self.click(Click.REJECT, request_id, actor=actor, reply_url=reply_url)

    def withdraw(self, request_id: str, *, actor: Actor, reply_url: str | None = None) -> Outcome:
        """The requester withdraws a pending request."""
        return self.click(Click.WITHDRAW, request_id, actor=actor, reply_url=reply_url)

    def click(
        self, click: Click, request_id: str, *, actor: Actor, reply_url: str | None = None
    ) -> Outcome:
        """Decide a click and write what it does; raises the PlanError of a refusal.

        `reply_url`: once decided, the card's new face is queued for it in the same
        transaction, so the answer is never lost while the change stands.
        """
        if click is Click.CONFIRM:
            try:
                with self.store.unit_of_work(fast=True) as uow:
                    return self._decide(uow, click, request_id, actor, reply_url)
            except StaleWrite:  # decided or changed by someone else meanwhile: decide again
                pass
        with self.store.unit_of_work() as uow:
            return self._decide(uow, click, request_id, actor, reply_url)

    def _decide(
        self,
        uow: UnitOfWork,
        click: Click,
        request_id: str,
        actor: Actor,
        reply_url: str | None,
    ) -> Outcome:
        now = self.clock()
        request = uow.requests.get(request_id, lock=True)
        if request is None:
            err = errors.RequestNotFound()
            uow.audit.append(
                AuditRecord(
                    at=now,
                    actor_id=actor.user_id,
                    actor_name=actor.name,
                    action="confirm",  # what any button of a card asks
                    outcome="refused",
                    request_id=request_id[:40],
                    detail=err.message,
                )
            )
            uow.commit()
            raise err
        app: AppState | None = None
        segments: list = []
        if request.app_id is not None:
            found = uow.apps.with_segments(request.app_id, until=now, lock=True)
            if found is not None:
                app, segments = found
        team = app.owner_channel if app is not None else request.owner_team
        decision = decide(
            click,
            request,
            actor=actor,
            now=now,
            app=app,
            rule=self._rule(uow, request, now),
            role_of=lambda who: self.roles.role_of(who, team),
            admins=self.roles.admins(),
        )
        outcome = self._write(uow, decision, request, app, segments, actor, now)
        if reply_url:
            uow.outbox.add(reply(reply_url, CardDecided(outcome=outcome, at=now), now))
            uow.after_commit(self.wake)
        uow.commit()
        return outcome

    def _rule(
        self, uow: UnitOfWork, request: Request, now: datetime
    ) -> Callable[[AppState | None], AppState]:
        def apply(app: AppState | None) -> AppState:
            if request.operation is Operation.CREATE:
                return self._new_app(
                    uow, request.change.name or "", request.channel_id, now, self._new_id(uow)
                )
            assert app is not None
            return rule(app, request.change, now, self.config)

        return apply

    def _new_id(self, uow: UnitOfWork) -> str:
        while True:
            candidate = self.app_ids()
            if uow.apps.get(candidate) is None:
                return candidate

    def _write(
        self,
        uow: UnitOfWork,
        decision: Decision,
        request: Request,
        app: AppState | None,
        segments: list,
        actor: Actor,
        now: datetime,
    ) -> Outcome:
        """Write what the decision says; the outcome (raises the refusal's error, once its
        records are committed)."""
        ended = not isinstance(decision, Refused) or decision.state is not None
        if request.needs_peers and ended and not isinstance(decision, Applied):
            self._home_changed(uow, request, now)  # (an applied change tells it with the change)
        if isinstance(decision, Refused):
            self._refuse(uow, decision, request, actor, now)
            raise decision.error
        outcome = Outcome(
            request_id=request.id,
            state="",
            operation=request.operation,
            app_id=request.app_id,
            app_name=request.app_name,
            actor=person(actor),
            approvals_needed=request.approvals_needed,
        )
        if isinstance(decision, Withdrawn):
            uow.requests.decide(request, request.closed(RequestState.CANCELLED, actor, now))
            return replace(outcome, state="cancelled")
        if isinstance(decision, Rejected):
            uow.requests.decide(request, request.closed(RequestState.REJECTED, actor, now))
            uow.requests.add_approval(request.id, decision.approval)
            self._event(uow, "rejected", request, actor, now, notify_requester=True)
            return replace(outcome, state="rejected")
        if isinstance(decision, ApprovalRecorded):
            uow.requests.add_approval(request.id, decision.approval)
            approvals = (*request.approved_by, person(actor))
            self._event(uow, "approved", request, actor, now, approvals=approvals)
            return replace(outcome, state="approved", approvals=approvals)
        assert isinstance(decision, Applied)
        approvals = request.approved_by
        if decision.approval is not None:
            uow.requests.add_approval(request.id, decision.approval)
            approvals = (*approvals, person(decision.approval.approver))
        after = decision.after
        changes = changed_fields(app, after, self.config.catalog, same_day=self._same_day)
        cost = cost_of(segments, after, now, self.config)
        record_change(
            uow,
            self.config,
            before=app,
            after=after,
            operation=request.operation,
            actor=actor,
            now=now,
            changes=changes,
            cost=cost,
            request=request,
            approvals=approvals,
            wake=self.wake,
        )
        applied = replace(
            request.closed(RequestState.APPLIED, actor, now), result_app_id=after.app_id
        )
        uow.requests.decide(request, applied)
        return replace(
            outcome,
            state="applied",
            app_id=after.app_id,
            app_name=after.name,
            changes=changes,
            cost=cost,
            approvals=tuple(approvals),
        )

    def _refuse(
        self, uow: UnitOfWork, refused: Refused, request: Request, actor: Actor, now: datetime
    ) -> None:
        """Record a refused click: the request's new state, and the audit of one that matters."""
        if refused.state is not None:
            uow.requests.decide(request, request.closed(refused.state, actor, now))
        if refused.audited:
            self._event(uow, "refused", request, actor, now, refusal=Refusal.of(refused.error))
        uow.commit()

    def _event(
        self,
        uow: UnitOfWork,
        event: str,
        request: Request,
        actor: Actor,
        now: datetime,
        *,
        refusal: Refusal | None = None,
        approvals: tuple[Actor, ...] = (),
        notify_requester: bool = False,
    ) -> None:
        """Audit something that happened to a request, and tell the audit channel."""
        detail = (
            refusal.message
            if refusal
            else {"rejected": "rejected by a peer"}.get(event, "approval recorded")
        )
        seq = uow.audit.append(
            AuditRecord(
                at=now,
                actor_id=actor.user_id,
                actor_name=actor.name,
                action=request.operation.value,
                outcome=event,
                app_id=request.app_id,
                request_id=request.id,
                detail=detail[:2000],
            )
        )
        message = RequestEvent(
            event=event,  # type: ignore[arg-type]
            operation=request.operation,
            app_id=request.app_id,
            app_name=request.app_name,
            actor=person(actor),
            requester=person(request.requester),
            refusal=refusal,
            approvals=approvals,
            approvals_needed=request.approvals_needed,
            at=now,
            audit_seq=seq,
            request_id=request.id,
        )
        destinations = [self.config.audit_channel] if self.config.audit_channel else []
        if notify_requester:
            destinations.append(request.requester.user_id)
        for destination in destinations:
            enqueue(
                uow, message, destination=destination, app_id=request.app_id, now=now, topic="audit"
            )
        if destinations:
            uow.after_commit(self.wake)

    def _home_changed(self, uow: UnitOfWork, request: Request, now: datetime) -> None:
        """A request waiting for peers came or went: redraw the home tabs that show it."""
        team = [request.owner_team] if request.app_id is None else []
        home_changed(
            uow, now=now, app_ids=[request.app_id], teams=team, users=[request.requester.user_id]
        )
        uow.after_commit(self.wake)

    def _same_day(self, a: datetime, b: datetime) -> bool:
        tz = self.config.billing_tz
        return a.astimezone(tz).date() == b.astimezone(tz).date()
