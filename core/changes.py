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

from core import approvals, domain, errors
from core.access import ROLE_FOR, ApprovalRule, Approvers, approvers
from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import Actor, AppState, Operation
from core.facts import Outcome, Preview, Refusal, changed_fields
from core.home import home_changed
from core.messages import CardDecided, RequestEvent, person
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
from core.store.runners import DuplicateName, StaleWrite

__all__ = ["Changes", "PendingRequest"]

#: a preview reads the history that started up to this long from now
_PREVIEW_HORIZON = timedelta(seconds=1)


@dataclass(frozen=True)
class PendingRequest:
    """A stored preview waiting for confirmation (or for peer approval).

    For one that waits for peers: `approval_channel`, where its approval card goes, and
    `approvers`, who could approve it as far as planbot can tell.
    """

    request: Request
    preview: Preview
    approval: ApprovalRule
    approval_channel: str | None = None
    approvers: Approvers | None = None
    approver_group: str | None = None

    @property
    def role(self) -> str:
        """The role the operation needs (of its approvers too)."""
        return ROLE_FOR[self.request.operation].label

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
        self,
        change: ChangeRequest,
        *,
        actor: Actor,
        channel_id: str | None = None,
        reply_url: str | None = None,
    ) -> PendingRequest:
        """Store the previewed change as a pending request for its confirmation.

        `reply_url`: where the requester's card can be answered later (their command's), so
        that it can be kept true while the request waits for peers.
        """
        now = self.clock()
        # The preview is read outside the write transaction: the app's version goes with the
        # request, and the confirmation refuses it if the app changed in between.
        before, shown = self._check(change, actor, channel_id, now)
        rule_ = self.config.access.approval_for(change.operation)
        pool: Approvers | None = None
        channel: str | None = None
        if rule_.needs_peer:
            owner = before.owner_channel if before else None
            pool = approvers(
                role=ROLE_FOR[change.operation],
                team=owner if before else channel_id,
                requester=actor.user_id,
                policy=self.config.access,
                grants=self.roles.all_grants(),
            )
            if not pool.enough_for(rule_.approvers):
                raise errors.NoApproverAvailable(
                    change.operation.value, pool.role.label, rule_.approvers, pool.users
                )
            channel = approvals.approval_channel(self.config, owner, channel_id)
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
            reply_url=reply_url if rule_.needs_peer else None,
        )
        # A plain request's loss in a database crash is harmless (its card says it is gone);
        # one that posts an approval card is not.
        with self.store.unit_of_work(fast=True, durable=rule_.needs_peer) as uow:
            uow.requests.add(request)
            if channel is not None:
                approvals.post_card(uow, self.config, request, shown, channel, now)
                uow.after_commit(self.wake)
            if rule_.needs_peer:
                self._home_changed(uow, request, now)
            uow.commit()
        return PendingRequest(
            request,
            shown,
            rule_,
            approval_channel=channel,
            approvers=pool,
            approver_group=self.config.access.approver_group if rule_.needs_peer else None,
        )

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
                uow,
                change.app or "",
                until=now + _PREVIEW_HORIZON,
                teams=self.roles.suggestable_teams(actor),
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
        for attempt in range(3):
            try:
                with self.store.unit_of_work() as uow:
                    return self._decide(uow, click, request_id, actor, reply_url)
            except DuplicateName:
                # another replica created an app of that name meanwhile (the unique index
                # said so at commit): deciding again finds it, and refuses with its name
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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
        outcome = self._write(uow, click, decision, request, app, segments, actor, now)
        # A peer's click is on the approval card, whose new face goes out as an update of it
        # (one way for every decision, so faces never arrive out of order); any other click is
        # on the clicker's own card, answered at its reply URL.
        on_approval_card = request.needs_peers and click in (Click.APPROVE, Click.REJECT)
        if reply_url and not on_approval_card:
            decided = CardDecided(outcome=outcome, at=now, reader=actor.user_id)
            uow.outbox.add(reply(reply_url, decided, now))
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
        click: Click,
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
        # the requester's card is the clicker's own when they confirm or withdraw from it
        from_requester_card = click in (Click.CONFIRM, Click.WITHDRAW)
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
            cancelled = replace(outcome, state="cancelled")
            if request.needs_peers:
                approvals.close_card(
                    uow, request, "withdrawn", now=now, by=actor, approvals=request.approved_by
                )
                if not from_requester_card:
                    approvals.tell_requester(uow, self.config, request, cancelled, now)
            return cancelled
        if isinstance(decision, Rejected):
            uow.requests.decide(request, request.closed(RequestState.REJECTED, actor, now))
            uow.requests.add_approval(request.id, decision.approval)
            self._event(uow, "rejected", request, actor, now, notify_requester=True)
            rejected = replace(outcome, state="rejected", approvals=request.approved_by)
            approvals.close_card(
                uow, request, "rejected", now=now, by=actor, approvals=request.approved_by
            )
            approvals.tell_requester(uow, self.config, request, rejected, now)
            return rejected
        if isinstance(decision, ApprovalRecorded):
            uow.requests.add_approval(request.id, decision.approval)
            given = (*request.approved_by, person(actor))
            self._event(uow, "approved", request, actor, now, approvals=given)
            approvals.update_progress(uow, request, given, now)
            return replace(outcome, state="approved", approvals=given)
        assert isinstance(decision, Applied)
        given = request.approved_by
        if decision.approval is not None:
            uow.requests.add_approval(request.id, decision.approval)
            given = (*given, person(decision.approval.approver))
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
            approvals=given,
            wake=self.wake,
        )
        applied = replace(
            request.closed(RequestState.APPLIED, actor, now), result_app_id=after.app_id
        )
        uow.requests.decide(request, applied)
        done = replace(
            outcome,
            state="applied",
            app_id=after.app_id,
            app_name=after.name,
            changes=changes,
            cost=cost,
            approvals=tuple(given),
        )
        if request.needs_peers:
            approvals.close_card(
                uow,
                request,
                "applied",
                now=now,
                by=actor,
                approvals=given,
                changes=changes,
                cost=cost,
            )
            if not from_requester_card:
                approvals.tell_requester(uow, self.config, request, done, now)
        return done

    def _refuse(
        self, uow: UnitOfWork, refused: Refused, request: Request, actor: Actor, now: datetime
    ) -> None:
        """Record a refused click: the request's new state, the audit of one that matters (and
        the audit channel's message of one about who acted), and, when it ended a request that
        waited for peers, the ending on both its cards and to its requester."""
        refusal = Refusal.of(refused.error)
        if refused.state is not None:
            uow.requests.decide(request, request.closed(refused.state, actor, now))
        if refused.audited:
            self._event(
                uow, "refused", request, actor, now, refusal=refusal, announce=refused.announced
            )
        if refused.state is not None and request.needs_peers:
            expired = refused.state is RequestState.EXPIRED
            ending: approvals.Ending = "expired" if expired else "refused"
            given = request.approved_by
            approvals.close_card(
                uow,
                request,
                ending,
                now=now,
                by=None if expired else actor,
                approvals=given,
                refusal=None if expired else refusal,
            )
            if actor.user_id != request.requester.user_id:
                self._event(
                    uow,
                    ending,
                    request,
                    actor,
                    now,
                    refusal=refusal,
                    announce=False,
                    notify_requester=True,
                    audit=False,
                )
                outcome = Outcome(
                    request_id=request.id,
                    state=ending,
                    operation=request.operation,
                    app_id=request.app_id,
                    app_name=request.app_name,
                    actor=person(actor),
                    approvals=given,
                    approvals_needed=request.approvals_needed,
                    refusal=refusal,
                )
                approvals.tell_requester(uow, self.config, request, outcome, now)
            uow.after_commit(self.wake)
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
        announce: bool = True,
        audit: bool = True,
    ) -> None:
        """Audit something that happened to a request; tell the audit channel (`announce`) and
        the requester (`notify_requester`)."""
        detail = (
            refusal.message
            if refusal
            else {"rejected": "rejected by a peer"}.get(event, "approval recorded")
        )
        seq = None
        if audit:
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
        audit_channel = self.config.audit_channel if announce else None
        if audit_channel:
            enqueue(
                uow,
                message,
                destination=audit_channel,
                app_id=request.app_id,
                now=now,
                topic="audit",
            )
        if notify_requester:
            enqueue(
                uow,
                replace(message, audience="requester"),
                destination=request.requester.user_id,
                app_id=request.app_id,
                now=now,
                topic="audit",
            )
        if audit_channel or notify_requester:
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
