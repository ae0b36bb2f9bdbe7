"""The plan service: previews, pending requests and their exactly-once confirmation.

Every method is one short transaction: load, apply a rule, write the change with its history,
audit event and outbox entries, commit. Refusals are `PlanError`s; a refused confirmation that
matters (not allowed, expired, app changed, unknown request) is audited before it is raised.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from core import domain, errors
from core.access import ROLE_FOR, AccessPolicy, ApprovalRule, Grant, Role, effective_role
from core.domain import Actor, AppState, Operation, Plan, Status
from core.money import Catalog, CostImpact, RateSegment, Statement, cost_impact, format_money
from core.store.direct import (
    Direct,
    DirectTransaction,
    RequestRecord,
    StaleWrite,
    pending_values,
)
from core.store.tables import (
    AccessGrantRow,
    ApprovalRow,
    AppRow,
    PendingRequestRow,
)
from core.store.uow import UnitOfWork, app_state

__all__ = [
    "AppPage",
    "AppStatus",
    "ChangeRequest",
    "CoreConfig",
    "FieldChange",
    "HistoryEntry",
    "Outcome",
    "PendingRequest",
    "PlanService",
    "Preview",
    "Reply",
]

SYSTEM = Actor("planbot", "planbot")


@dataclass(frozen=True)
class CoreConfig:
    """Everything the core needs to know, read once by the entrypoint."""

    catalog: Catalog
    billing_tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    request_ttl: timedelta = timedelta(minutes=15)
    approval_ttl: timedelta = timedelta(hours=24)
    audit_channel: str | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    #: True when the provisioning port only records (no webhook): the outbox row written with
    #: the change is then the record itself, and nothing is left to deliver.
    provisioning_recorded_only: bool = False


@dataclass(frozen=True)
class ChangeRequest:
    """A change a person asks for, before it is checked."""

    operation: Operation
    app: str | None = None
    plan: Plan | None = None
    addons: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class FieldChange:
    """One field's value before and after a change."""

    label: str
    before: str
    after: str


@dataclass(frozen=True)
class Preview:
    """What a change will do: before -> after, its cost, and the warnings that apply."""

    operation: Operation
    app_id: str | None
    app_name: str
    summary: str
    changes: tuple[FieldChange, ...]
    cost: CostImpact | None
    cost_text: str
    warnings: tuple[str, ...]
    irreversible: bool
    danger: bool


@dataclass(frozen=True)
class PendingRequest:
    """A stored preview waiting for confirmation (or for peer approval)."""

    id: str
    preview: Preview
    requester: Actor
    created_at: datetime
    expires_at: datetime
    approval: ApprovalRule
    channel_id: str | None


@dataclass(frozen=True)
class Outcome:
    """What became of a request after a click."""

    request_id: str
    state: str  # applied, cancelled, rejected, approved (waiting for more approvals)
    operation: Operation
    app_id: str | None
    app_name: str
    message: str
    actor: Actor
    changes: tuple[FieldChange, ...] = ()
    cost_text: str = ""
    approvals: tuple[str, ...] = ()
    approvals_needed: int = 0


@dataclass(frozen=True)
class AppStatus:
    """An app's state with what a person wants to know about it."""

    app: AppState
    monthly_price: Decimal
    currency: str
    config_text: str
    config_change_used: bool
    next_config_change: datetime | None
    purge_at: datetime | None
    limits: Mapping[str, int]


@dataclass(frozen=True)
class AppPage:
    """One page of the app list."""

    apps: tuple[AppState, ...]
    total: int
    page: int
    pages: int


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of an app's plan history."""

    at: datetime
    operation: str
    plan: str
    status: str
    billing_mode: str
    monthly_price: Decimal
    actor: str


#: a reply URL and how to draw the answer from the outcome (see `PlanService.confirm`)
Reply = tuple[str, Callable[["Outcome"], Mapping[str, Any]]]


@dataclass(frozen=True)
class ChangeWrites:
    """The rows one change writes (app, history, audit, outbox), worked out before any lock."""

    before: AppState | None
    after: AppState
    now: datetime
    history: dict[str, Any]
    audit: dict[str, Any]
    message: dict[str, Any]
    audience: tuple[str, ...]
    provision: dict[str, Any]


class PlanService:
    """The plan operations, their rules and their records."""

    def __init__(
        self,
        *,
        engine: Engine,
        config: CoreConfig,
        clock: Callable[[], datetime] = domain.utcnow,
        on_outbox: Callable[[], None] | None = None,
        grants_ttl: float = 2.0,
    ) -> None:
        self.engine = engine
        self.direct = Direct(engine)
        # Previews and card replies: a crash may lose the last of them (the person then sees the
        # request is gone, or the card stays), so their commits need not wait for the disk.
        self.direct_nowait = Direct(engine, durable=False)
        self.config = config
        self.clock = clock
        self.on_outbox = on_outbox
        self.grants_ttl = grants_ttl
        self._grants_cache: tuple[float, tuple[Grant, ...]] | None = None

    # --- reading ---------------------------------------------------------------------------

    def status(self, ref: str, *, actor: Actor) -> AppStatus:
        """An app's status, for viewers."""
        state = self._resolve(self.direct, ref)
        self._require(actor, "view", state.owner_channel, "see this app")
        return self._status(state)

    def list_apps(
        self, *, actor: Actor, contains: str | None = None, page: int = 1, per_page: int = 20
    ) -> AppPage:
        """A page of the apps the actor may see, optionally filtered."""
        with UnitOfWork(self.engine, write=False) as uow:
            channels = self._visible_teams(actor)
            offset = (max(page, 1) - 1) * per_page
            rows, total = uow.apps.page(
                contains=contains, channels=channels, offset=offset, limit=per_page
            )
            pages = max(1, -(-total // per_page))
            return AppPage(tuple(app_state(r) for r in rows), total, max(page, 1), pages)

    def history(
        self, ref: str, *, actor: Actor, limit: int = 20
    ) -> tuple[AppState, list[HistoryEntry]]:
        """The app's plan history, newest first."""
        with UnitOfWork(self.engine, write=False) as uow:
            state = self._resolve(uow, ref)
            self._require(actor, "view", state.owner_channel, "see this app")
            rows = uow.history.for_app(state.app_id, limit=limit)
            return state, [
                HistoryEntry(
                    at=r.effective_at,
                    operation=r.operation,
                    plan=r.plan,
                    status=r.status,
                    billing_mode=r.billing_mode,
                    monthly_price=Decimal(r.monthly_price),
                    actor=r.actor_name or r.actor_id,
                )
                for r in rows
            ]

    def statement(
        self, ref: str, *, actor: Actor, year: int | None = None, month: int | None = None
    ) -> tuple[AppState, Statement]:
        """The app's statement for a month (this month by default), in runs of days."""
        from core.money import bill_month
        from core.money import statement as compute

        now = self.clock()
        year, month = bill_month(year, month, now=now, tz=self.config.billing_tz)
        with UnitOfWork(self.engine, write=False) as uow:
            state = self._resolve(uow, ref)
            self._require(actor, "view", state.owner_channel, "see this app's bill")
            _, end = domain.month_bounds(year, month, self.config.billing_tz)
            segments = uow.history.segments(state.app_id, until=end)
        return state, compute(
            segments,
            year=year,
            month=month,
            tz=self.config.billing_tz,
            now=now,
            currency=self.config.catalog.currency,
            catalog=self.config.catalog,
            created=state.created_at,
        )

    def role_of(self, actor: Actor, *, team: str | None = None) -> Role:
        """The actor's role (for an owner team's apps, or globally)."""
        return self._role(actor, team)

    def highest_role(self, actor: Actor) -> Role:
        """The actor's highest role anywhere: global, or for the apps of any one team."""
        teams = {g.team for g in self._grants(actor)}
        return max(self._role(actor, team) for team in {None, *teams})

    # --- changing --------------------------------------------------------------------------

    def preview(
        self, change: ChangeRequest, *, actor: Actor, channel_id: str | None = None
    ) -> Preview:
        """What the change would do, without writing anything."""
        return self._check(change, actor, channel_id)[1]

    def request(
        self, change: ChangeRequest, *, actor: Actor, channel_id: str | None = None
    ) -> PendingRequest:
        """Store the previewed change as a pending request for its confirmation."""
        now = self.clock()
        # The preview is read outside the write transaction: the app's version goes with the
        # request, and the confirmation refuses it if the app changed in between.
        before, preview = self._check(change, actor, channel_id)
        rule = self.config.access.approval_for(change.operation)
        ttl = self.config.approval_ttl if rule.needs_peer else self.config.request_ttl
        values = pending_values(
            {
                "id": secrets.token_urlsafe(16),
                "operation": change.operation.value,
                "app_id": before.app_id if before else None,
                # the requester's groups, to re-check their role when a peer approves
                "params": {
                    **_params(change, channel_id),
                    "requester_groups": sorted(actor.groups),
                    "app_name": preview.app_name,
                },
                "actor_id": actor.user_id,
                "actor_name": actor.name,
                "channel_id": channel_id,
                "app_version": before.version if before else None,
                "created_at": now,
                "expires_at": now + ttl,
                "approvals_needed": rule.approvers if rule.needs_peer else 0,
            }
        )
        if rule.needs_peer:
            row = PendingRequestRow(**values)
            with UnitOfWork(self.engine) as uow:
                uow.requests.insert(row)
                self._notify_approvers(uow, row, preview, before, rule)
                uow.commit()
        else:  # the common case: one statement, no unit of work
            self.direct_nowait.insert_pending(values)
        return PendingRequest(
            id=values["id"],
            preview=preview,
            requester=actor,
            created_at=now,
            expires_at=values["expires_at"],
            approval=rule,
            channel_id=channel_id,
        )

    def confirm(self, request_id: str, *, actor: Actor, reply: Reply | None = None) -> Outcome:
        """Apply a pending request exactly once, for its requester.

        `reply`: (url, draw) — once applied, `draw(outcome)` is queued for the URL in the same
        transaction as the change, so the answer is never lost while the change stands.
        """
        outcome = self._confirm_directly(request_id, actor, reply)
        if outcome is not None:
            return outcome
        # Anything but the plain case (refusals, approvals, new apps) takes the unit of work.
        with UnitOfWork(self.engine) as uow:
            row = self._open_request(uow, request_id, actor)
            if row.approvals_needed:
                self._refuse(uow, row, actor, errors.AwaitingApproval(row.approvals_needed))
            if row.actor_id != actor.user_id:
                self._refuse(uow, row, actor, errors.NotYourRequest(row.actor_name or row.actor_id))
            outcome = self._apply_request(uow, row, actor)
            if reply is not None:
                uow.outbox.insert(**self._reply_entry(reply[0], reply[1](outcome)))
            uow.commit()
        self._outbox_written()
        return outcome

    def _confirm_directly(
        self, request_id: str, actor: Actor, reply: Reply | None = None
    ) -> Outcome | None:
        """The requester confirms a request that needs no approval: one short transaction.

        Everything is read and worked out first, without a lock; the transaction then only writes,
        provided the request is still pending and the app unchanged since it was read. None (and
        nothing written) when anything is not plain: no such request, decided, expired, awaiting
        approval, someone else's, a new app, the app changed, or the change or the role refused;
        `confirm` then goes the full way, which refuses with the reason and audits it.
        """
        now = self.clock()
        direct = self.direct
        row = direct.request(request_id)
        if (
            row is None
            or row.state != "pending"
            or now >= row.expires_at
            or row.approvals_needed
            or row.actor_id != actor.user_id
            or row.app_id is None
        ):
            return None
        op = Operation(row.operation)
        found = direct.state_and_segments(row.app_id, until=now)
        if found is None or found[0].version != row.app_version:
            return None
        before, segments = found
        try:
            after = self._rule(before, _change(row), now)
        except errors.PlanError:
            return None
        if self._role(actor, before.owner_channel) < ROLE_FOR[op]:
            return None
        changes, cost_text, writes = self._request_writes(
            direct, row, before, after, actor, now, segments=segments
        )
        outcome = self._applied(row, op, after, actor, changes, cost_text)
        answer = self._reply_entry(reply[0], reply[1](outcome)) if reply is not None else None
        try:
            with direct.transaction() as tx:
                tx.decide(
                    row.id,
                    {
                        "state": "applied",
                        "decided_by": actor.user_id,
                        "decided_by_name": actor.name,
                        "decided_at": now,
                        "result": {"app_id": after.app_id},
                    },
                )
                if answer is not None:
                    tx.outbox.insert(**answer)
                self.record_change(tx, writes)
                tx.commit()
        except StaleWrite:  # decided or changed by someone else meanwhile
            return None
        return outcome

    def approve(self, request_id: str, *, actor: Actor) -> Outcome:
        """Record a peer's approval; apply the request once enough peers approved."""
        with UnitOfWork(self.engine) as uow:
            row = self._open_request(uow, request_id, actor)
            if not row.approvals_needed:
                if row.actor_id != actor.user_id:
                    self._refuse(uow, row, actor, errors.NotYourRequest(row.actor_name))
                outcome = self._apply_request(uow, row, actor)
            else:
                outcome = self._approve(uow, row, actor)
            uow.commit()
        self._outbox_written()
        return outcome

    def reject(self, request_id: str, *, actor: Actor) -> Outcome:
        """A peer rejects a request that waits for approval."""
        now = self.clock()
        with UnitOfWork(self.engine) as uow:
            row = self._open_request(uow, request_id, actor)
            if row.actor_id == actor.user_id:
                return self._cancel(uow, row, actor)
            if not row.approvals_needed:  # a Reject on a card that has none: forged
                self._refuse(uow, row, actor, errors.NotYourRequest(row.actor_name or row.actor_id))
            self._require_for_request(uow, row, actor)
            self._decide(row, "rejected", actor, now)
            uow.requests.add_approval(
                ApprovalRow(
                    request_id=row.id,
                    approver_id=actor.user_id,
                    approver_name=actor.name,
                    decision="rejected",
                    decided_at=now,
                )
            )
            self._audit_request(
                uow,
                row,
                actor,
                outcome="rejected",
                detail="rejected by a peer",
                notify_requester=True,
            )
            uow.commit()
        self._outbox_written()
        return self._outcome(row, "rejected", actor, f"Rejected by {actor.label}.")

    def cancel(self, request_id: str, *, actor: Actor) -> Outcome:
        """The requester withdraws a pending request."""
        with UnitOfWork(self.engine) as uow:
            row = self._open_request(uow, request_id, actor)
            if row.actor_id != actor.user_id:
                self._refuse(uow, row, actor, errors.NotYourRequest(row.actor_name or row.actor_id))
            return self._cancel(uow, row, actor)

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        """Queue an answer to a reply URL (delivered from the outbox, in order per URL)."""
        self.direct_nowait.insert_outbox(self._reply_entry(url, message))
        self._outbox_written()

    def _reply_entry(self, url: str, message: Mapping[str, Any]) -> dict[str, Any]:
        now = self.clock()
        return {
            "kind": "reply",
            "topic": "reply",
            "destination": hashlib.sha256(url.encode()).hexdigest()[:40],
            "app_id": "",  # not NULL: entries for one URL then wait for the ones before
            "payload": {"url": url, "message": dict(message)},
            "created_at": now,
            "next_attempt_at": now,
        }

    def pending(self, request_id: str) -> PendingRequestRow | None:
        """A request as stored (for the edge to redraw a card)."""
        with UnitOfWork(self.engine, write=False) as uow:
            return uow.requests.get(request_id)

    # --- access management -----------------------------------------------------------------

    def grant(self, grant: Grant, *, label: str, actor: Actor) -> None:
        """Give a role to a user or group (admins only); audited."""
        now = self.clock()
        with UnitOfWork(self.engine) as uow:
            self._require(actor, "access", grant.team, "manage access")
            team = grant.team or ""
            if uow.grants.find(grant.principal_kind, grant.principal_id, grant.role.label, team):
                return
            uow.after_commit(self._forget_grants)
            uow.grants.add(
                AccessGrantRow(
                    principal_kind=grant.principal_kind,
                    principal_id=grant.principal_id,
                    principal_label=label,
                    role=grant.role.label,
                    team=team,
                    granted_by=actor.user_id,
                    granted_at=now,
                )
            )
            self._audit_access(uow, "access.grant", grant, label, actor, now)
            uow.commit()
        self._outbox_written()

    def revoke(self, grant: Grant, *, label: str, actor: Actor) -> bool:
        """Take a role back (admins only); audited. False when there was no such grant."""
        now = self.clock()
        with UnitOfWork(self.engine) as uow:
            self._require(actor, "access", grant.team, "manage access")
            row = uow.grants.find(
                grant.principal_kind, grant.principal_id, grant.role.label, grant.team or ""
            )
            if row is None:
                return False
            uow.after_commit(self._forget_grants)
            uow.grants.delete(row)
            self._audit_access(
                uow, "access.revoke", grant, label or row.principal_label, actor, now
            )
            uow.commit()
        self._outbox_written()
        return True

    def grants(self, *, actor: Actor) -> list[tuple[Grant, str]]:
        """Every grant with its label (viewers may look)."""
        with UnitOfWork(self.engine, write=False) as uow:
            self._require(actor, "view", None, "see who has access")
            return [(_grant(r), r.principal_label) for r in uow.grants.all()]

    def granted_groups(self) -> set[str]:
        """The user groups that hold any grant (the only ones worth resolving)."""
        return {g.principal_id for g in self._all_grants() if g.principal_kind == "group"}

    # --- internals: checks -----------------------------------------------------------------

    def _resolve(self, uow: UnitOfWork | Direct, ref: str) -> AppState:
        ref = ref.strip()
        if ref.isdigit():
            state = uow.apps.state(ref)
            if state is not None:
                return state
        states = uow.apps.states_by_name(ref)
        if not states:
            raise errors.AppNotFound(ref)
        if len(states) > 1:
            raise errors.AmbiguousAppName(ref, [s.app_id for s in states])
        return states[0]

    def _resolve_with_history(
        self, ref: str, until: datetime
    ) -> tuple[AppState, list[RateSegment]]:
        """The app, and its rate segments started before `until` (in one read, when by id)."""
        ref = ref.strip()
        if ref.isdigit():
            found = self.direct.state_and_segments(ref, until=until)
            if found is not None:
                return found
        state = self._resolve(self.direct, ref)
        return state, self.direct.segments(state.app_id, until=until)

    def _grants(self, actor: Actor) -> list[Grant]:
        mine = {actor.user_id, *actor.groups}
        return [g for g in self._all_grants() if g.principal_id in mine]

    def _forget_grants(self) -> None:
        self._grants_cache = None

    def _all_grants(self) -> tuple[Grant, ...]:
        """Every grant, re-read at most every `grants_ttl` seconds (at once after a change here).

        The grant table is small and read on every request, so it is kept in memory; another
        replica's grant or revoke is seen within `grants_ttl`.
        """
        cached = self._grants_cache
        if cached is not None and time.monotonic() - cached[0] < self.grants_ttl:
            return cached[1]
        grants = tuple(_grant(r) for r in self.direct.grants.all())
        self._grants_cache = (time.monotonic(), grants)
        return grants

    def _role(self, actor: Actor, team: str | None) -> Role:
        return effective_role(
            user_id=actor.user_id,
            groups=actor.groups,
            team=team,
            policy=self.config.access,
            grants=self._grants(actor),
        )

    def _require(self, actor: Actor, action: str, team: str | None, what: str) -> None:
        needed = ROLE_FOR[action]
        if self._role(actor, team) < needed:
            raise errors.PermissionDenied(what, needed.label, self._admins())

    def _admins(self) -> list[str]:
        return sorted(self.config.access.admins)[:5]

    def _visible_teams(self, actor: Actor) -> list[str] | None:
        """None when the actor sees every app; else the owner teams they may see."""
        if self._role(actor, None) >= Role.VIEWER:
            return None
        teams = [g.team for g in self._grants(actor) if g.team and g.role >= Role.VIEWER]
        if not teams:
            raise errors.PermissionDenied("list apps", Role.VIEWER.label, self._admins())
        return teams

    def _check(
        self, change: ChangeRequest, actor: Actor, channel_id: str | None
    ) -> tuple[AppState | None, Preview]:
        """The change checked and previewed from what is stored now (no lock)."""
        allowed = self.config.access.allowed_channels
        if allowed and channel_id not in allowed:
            raise errors.ChannelNotAllowed(sorted(allowed))
        now = self.clock()
        if change.operation is Operation.CREATE:
            self._require(actor, Operation.CREATE, channel_id, "create apps")
            after = self._new_app(
                self.direct, change.name or "", channel_id, now, app_id="(assigned)"
            )
            return None, self._preview(None, after, Operation.CREATE, [], now)
        until = now + timedelta(seconds=1)
        before, segments = self._resolve_with_history(change.app or "", until)
        self._require(actor, change.operation, before.owner_channel, f"{change.operation} this app")
        after = self._rule(before, change, now)
        return before, self._preview(before, after, change.operation, segments, now)

    def _rule(self, app: AppState, change: ChangeRequest, now: datetime) -> AppState:
        op = change.operation
        if op is Operation.UPGRADE:
            return domain.upgrade(app, change.plan or Plan.DEVELOPER, now)
        if op is Operation.CONFIGURE:
            addons = self.config.catalog.check_addons(change.addons)
            return domain.configure(
                app,
                edition=change.plan,
                addons=addons,
                now=now,
                tz=self.config.billing_tz,
                defaults={n: a.default for n, a in self.config.catalog.addons.items()},
            )
        if op is Operation.EXTEND:
            return domain.extend(app, now, self.config.billing_tz)
        if op is Operation.DISABLE:
            return domain.disable(app, now)
        if op is Operation.ENABLE:
            return domain.enable(app, now)
        if op is Operation.MIGRATE:
            return domain.migrate(app, now)
        raise ValueError(f"not a requestable operation: {op}")

    def _new_app(
        self,
        uow: UnitOfWork | Direct,
        name: str,
        channel_id: str | None,
        now: datetime,
        *,
        app_id: str,
    ) -> AppState:
        state = domain.create(
            app_id=app_id, name=name, owner_channel=channel_id, now=now, tz=self.config.billing_tz
        )
        taken = uow.apps.states_by_name(state.name)
        if taken:
            raise errors.AppNameTaken(state.name, taken[0].app_id)
        return state

    # --- internals: previews ---------------------------------------------------------------

    def _segment(self, state: AppState, start: datetime) -> RateSegment:
        return RateSegment(
            start=start,
            plan=state.plan,
            status=state.status,
            billing_mode=state.billing_mode,
            monthly=self.config.catalog.monthly_price(state.plan, state.config),
        )

    def _preview(
        self,
        before: AppState | None,
        after: AppState,
        op: Operation,
        segments: Sequence[RateSegment],
        now: datetime,
    ) -> Preview:
        tz = self.config.billing_tz
        cost = cost_impact(
            segments,
            self._segment(after, now),
            tz=tz,
            now=now,
            currency=self.config.catalog.currency,
        )
        return Preview(
            operation=op,
            app_id=before.app_id if before else None,
            app_name=after.name,
            summary=_summary(op, before, after),
            changes=tuple(self._changes(before, after)),
            cost=cost,
            cost_text=self._cost_text(cost),
            warnings=tuple(self._warnings(op, before, after, now)),
            irreversible=op in (Operation.UPGRADE, Operation.MIGRATE),
            danger=op in (Operation.DISABLE, Operation.MIGRATE),
        )

    def _changes(self, before: AppState | None, after: AppState) -> list[FieldChange]:
        catalog, tz = self.config.catalog, self.config.billing_tz

        def fields(state: AppState | None) -> dict[str, str]:
            if state is None:
                return {}
            return {
                "Plan": str(state.plan),
                "Status": str(state.status),
                "Billing mode": str(state.billing_mode),
                "Add-ons": catalog.describe_config(state.config) if state.plan.paid else "-",
                "Monthly price": format_money(
                    catalog.monthly_price(state.plan, state.config), catalog.currency
                ),
                "Developer validity until": _day(state.dev_expires_at, tz),
                "Purged after": _day(state.purge_at, tz),
            }

        old, new = fields(before), fields(after)
        return [
            FieldChange(label, old.get(label, "-"), value)
            for label, value in new.items()
            if old.get(label, "-") != value and (old.get(label, "-"), value) != ("-", "no add-ons")
        ]

    def _cost_text(self, cost: CostImpact) -> str:
        currency = cost.currency
        window = f"billed on {cost.billed_from:%Y-%m-%d}–{cost.billed_to:%d}"
        month = f"{cost.year}-{cost.month:02d}"
        if cost.delta == 0 and cost.monthly_after == cost.monthly_before:
            return f"No change to the bill for {month} (projected {format_money(cost.after_month_total, currency)})."
        sign = "+" if cost.delta >= 0 else "-"
        return (
            f"{sign}{format_money(abs(cost.delta), currency)} for the rest of {month}, charged "
            f"by the day (bill for {month}: {format_money(cost.before_month_total, currency)} → "
            f"{format_money(cost.after_month_total, currency)}, {window}). From next month "
            f"{format_money(cost.monthly_after, currency)} a month."
        )

    def _warnings(
        self, op: Operation, before: AppState | None, after: AppState, now: datetime
    ) -> list[str]:
        tz = self.config.billing_tz
        if op is Operation.UPGRADE:
            return [
                "Takes effect at once and can't be undone: there is no way back to the developer "
                "plan. To use the developer plan again, create a new app."
            ]
        if op is Operation.CONFIGURE:
            nxt = domain.next_month_start(now, tz)
            return [
                "Takes effect at once. The configuration can be changed once per calendar month: "
                f"the next change is possible from {nxt:%Y-%m-%d}."
            ]
        if op is Operation.DISABLE:
            return [
                "The app's service stops at once. Today is still billed.",
                f"An admin can re-enable it until {_day(after.purge_at, tz)}; after 90 days "
                "disabled its data and services are purged and can't be recovered.",
            ]
        if op is Operation.ENABLE:
            return [
                "Service resumes at once with its plan and configuration; billing resumes today."
            ]
        if op is Operation.MIGRATE:
            return [
                "One-way: once migrated to the current billing mode, the legacy billing mode "
                "can't be restored."
            ]
        if op is Operation.EXTEND and before is not None and before.status is Status.SUSPENDED:
            return ["The app is suspended; extending reactivates it at once."]
        if op is Operation.CREATE:
            return [
                f"A developer app is free and valid for one month (until {_day(after.dev_expires_at, tz)}); "
                "extend it or upgrade it before then."
            ]
        return []

    # --- internals: confirming -------------------------------------------------------------

    def _open_request(self, uow: UnitOfWork, request_id: str, actor: Actor) -> PendingRequestRow:
        row = uow.requests.get(request_id, lock=True)
        if row is None:
            err = errors.RequestNotFound()
            uow.audit.append(
                at=self.clock(),
                actor_id=actor.user_id,
                actor_name=actor.name,
                action="confirm",
                outcome="refused",
                request_id=request_id[:40],
                detail=err.message,
            )
            uow.commit()
            raise err
        if row.state != "pending":
            raise errors.RequestAlreadyDecided(row.state, row.decided_by_name or row.decided_by)
        if self.clock() >= row.expires_at:
            self._decide(row, "expired", actor, self.clock())
            self._refuse(uow, row, actor, errors.RequestExpired(row.expires_at))
        return row

    def _refuse(
        self, uow: UnitOfWork, row: PendingRequestRow, actor: Actor, err: errors.PlanError
    ) -> None:
        """Audit the refused confirmation, commit, and raise."""
        uow.requests.add(row)
        self._audit_request(uow, row, actor, outcome="refused", detail=err.message)
        uow.commit()
        self._outbox_written()
        raise err

    def _require_for_request(self, uow: UnitOfWork, row: PendingRequestRow, actor: Actor) -> None:
        op = Operation(row.operation)
        team = row.params.get("owner_channel") if op is Operation.CREATE else None
        if row.app_id:
            app = uow.session.get(AppRow, row.app_id)
            team = app.owner_channel if app else None
        try:
            self._require(actor, op, team, f"{op} this app")
        except errors.PermissionDenied as err:
            self._refuse(uow, row, actor, err)

    def _approve(self, uow: UnitOfWork, row: PendingRequestRow, actor: Actor) -> Outcome:
        now = self.clock()
        if row.actor_id == actor.user_id:
            self._refuse(uow, row, actor, errors.SelfApprovalNotAllowed())
        self._require_for_request(uow, row, actor)
        given = [a for a in uow.requests.approvals(row.id) if a.decision == "approved"]
        if any(a.approver_id == actor.user_id for a in given):
            raise errors.AlreadyApproved(row.approvals_needed - len(given))
        uow.requests.add_approval(
            ApprovalRow(
                request_id=row.id,
                approver_id=actor.user_id,
                approver_name=actor.name,
                decision="approved",
                decided_at=now,
            )
        )
        names = (*(a.approver_name or a.approver_id for a in given), actor.label)
        if len(names) < row.approvals_needed:
            self._audit_request(uow, row, actor, outcome="approved", detail="approval recorded")
            left = row.approvals_needed - len(names)
            return self._outcome(
                row,
                "approved",
                actor,
                f"Approved by {actor.label}; {left} more approval(s) needed.",
                approvals=names,
            )
        outcome = self._apply_request(uow, row, actor)
        return replace(outcome, approvals=names)

    def _apply_request(self, uow: UnitOfWork, row: PendingRequestRow, actor: Actor) -> Outcome:
        now = self.clock()
        op = Operation(row.operation)
        change = _change(row)
        groups = frozenset(row.params.get("requester_groups") or ())
        requester = Actor(row.actor_id, row.actor_name, groups)
        if op is Operation.CREATE:
            try:
                after = self._new_app(
                    uow,
                    change.name or "",
                    row.params.get("owner_channel"),
                    now,
                    app_id=self._new_app_id(uow),
                )
            except errors.PlanError as err:
                self._decide(row, "refused", actor, now)
                self._refuse(uow, row, actor, err)
                raise
            before = None
        else:
            assert row.app_id is not None
            app_row = uow.apps.get(row.app_id, lock=True)
            if app_row is None:
                self._decide(row, "refused", actor, now)
                self._refuse(uow, row, actor, errors.AppNotFound(row.app_id))
                raise AssertionError("unreachable")
            before = app_state(app_row)
            if before.version != row.app_version:
                self._decide(row, "stale", actor, now)
                self._refuse(uow, row, actor, errors.AppChangedSincePreview(before.app_id))
            try:
                after = self._rule(before, change, now)
            except errors.PlanError as err:
                self._decide(row, "refused", actor, now)
                self._refuse(uow, row, actor, err)
                raise
        self._require_for_request(uow, row, requester if row.approvals_needed else actor)
        changes, cost_text, writes = self._request_writes(uow, row, before, after, actor, now)
        self.record_change(uow, writes)
        self._decide(row, "applied", actor, now)
        row.result = {"app_id": after.app_id}
        uow.requests.add(row)
        return self._applied(row, op, after, actor, changes, cost_text)

    def _request_writes(
        self,
        reader: UnitOfWork | Direct,
        row: PendingRequestRow | RequestRecord,
        before: AppState | None,
        after: AppState,
        actor: Actor,
        now: datetime,
        *,
        segments: Sequence[RateSegment] | None = None,
    ) -> tuple[tuple[FieldChange, ...], str, ChangeWrites]:
        """What a request's change writes, with what changed and what it costs (`segments`:
        the app's history until now, when already read)."""
        if segments is None:
            segments = reader.history.segments(after.app_id, until=now) if before else []
        cost_text = self._cost_text(self._cost(segments, after, now))
        changes = tuple(self._changes(before, after))
        writes = self.change_writes(
            before,
            after,
            Operation(row.operation),
            actor=actor,
            now=now,
            request=row,
            cost_text=cost_text,
            changes=changes,
        )
        return changes, cost_text, writes

    def _cost(self, segments: Sequence[RateSegment], after: AppState, now: datetime) -> CostImpact:
        return cost_impact(
            segments,
            self._segment(after, now),
            tz=self.config.billing_tz,
            now=now,
            currency=self.config.catalog.currency,
        )

    def _applied(
        self,
        row: PendingRequestRow | RequestRecord,
        op: Operation,
        after: AppState,
        actor: Actor,
        changes: tuple[FieldChange, ...],
        cost_text: str,
    ) -> Outcome:
        return Outcome(
            request_id=row.id,
            state="applied",
            operation=op,
            app_id=after.app_id,
            app_name=after.name,
            message=_done_message(op, after),
            actor=actor,
            changes=changes,
            cost_text=cost_text,
            approvals_needed=row.approvals_needed,
        )

    def change_writes(
        self,
        before: AppState | None,
        after: AppState,
        op: Operation,
        *,
        actor: Actor,
        now: datetime,
        request: PendingRequestRow | RequestRecord | None = None,
        cost_text: str = "",
        changes: Sequence[FieldChange] = (),
        detail: str = "",
    ) -> ChangeWrites:
        """The rows a change writes (for `record_change`), worked out before anything is locked."""
        request_id = request.id if request else None
        snapshot = _snapshot(after)
        message = {
            "type": "change",
            "operation": op.value,
            "outcome": "applied",
            "app_id": after.app_id,
            "app_name": after.name,
            "actor_id": actor.user_id,
            "actor_name": actor.name,
            "requester_id": request.actor_id if request else None,
            "changes": [[c.label, c.before, c.after] for c in changes],
            "cost": cost_text,
            "detail": detail,
            "at": now.isoformat(),
            "audit_seq": None,  # known once the audit record is appended
            "request_id": request_id,
        }
        audience = self._audience(after.owner_channel)
        if request is not None and request.approvals_needed:
            audience.append(request.actor_id)  # the requester hears how their request ended
        return ChangeWrites(
            before=before,
            after=after,
            now=now,
            history={
                "app_id": after.app_id,
                "effective_at": now,
                "operation": op.value,
                "plan": after.plan.value,
                "billing_mode": after.billing_mode.value,
                "status": after.status.value,
                "config": dict(after.config),
                "monthly_price": str(self.config.catalog.monthly_price(after.plan, after.config)),
                "actor_id": actor.user_id,
                "actor_name": actor.name,
                "request_id": request_id,
            },
            audit={
                "at": now,
                "actor_id": actor.user_id,
                "actor_name": actor.name,
                "action": op.value,
                "outcome": "applied",
                "app_id": after.app_id,
                "request_id": request_id,
                "before": _snapshot(before) if before else {},
                "after": snapshot,
                "cost": cost_text[:200] or None,
                "detail": detail,
            },
            message=message,
            audience=tuple(audience),
            provision={
                "idempotency_key": request_id or f"{op.value}:{after.app_id}:{after.version}",
                "operation": op.value,
                "app_id": after.app_id,
                "before": _snapshot(before) if before else None,
                "after": snapshot,
                "actor": {"id": actor.user_id, "name": actor.name},
                "at": now.isoformat(),
            },
        )

    def record_change(self, uow: UnitOfWork | DirectTransaction, writes: ChangeWrites) -> None:
        """Write a change in the caller's transaction: the app row, its history, the audit event
        and the outbox entries, as `change_writes` worked them out.

        The audit record comes last but for the messages that cite it: in a direct transaction
        everything before it is prepared before the writers' turn is taken.
        """
        after, now = writes.after, writes.now
        uow.apps.save(writes.before, after, now)
        uow.history.insert(**writes.history)
        self._enqueue(
            uow,
            "provision",
            "provision",
            "provisioner",
            after.app_id,
            writes.provision,
            now,
            delivered=self.config.provisioning_recorded_only,
        )
        seq = uow.audit.append(**writes.audit)
        message = {**writes.message, "audit_seq": seq}
        for channel in writes.audience:
            self._enqueue(uow, "message", "audit", channel, after.app_id, message, now)

    def _audience(self, owner_channel: str | None) -> list[str]:
        channels = [self.config.audit_channel, owner_channel]
        return list(dict.fromkeys(c for c in channels if c))

    def _enqueue(
        self,
        uow: UnitOfWork | DirectTransaction,
        kind: str,
        topic: str,
        destination: str,
        app_id: str | None,
        payload: dict[str, Any],
        now: datetime,
        *,
        key: str | None = None,
        delivered: bool = False,
    ) -> None:
        done = {"status": "delivered", "delivered_at": now} if delivered else {}
        uow.outbox.insert(
            key=key,
            kind=kind,
            topic=topic,
            destination=destination,
            app_id=app_id,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
            **done,
        )
        if not delivered:
            uow.after_commit(self._outbox_written)

    def _outbox_written(self) -> None:
        if self.on_outbox is not None:
            self.on_outbox()

    def _audit_request(
        self,
        uow: UnitOfWork,
        row: PendingRequestRow,
        actor: Actor,
        *,
        outcome: str,
        detail: str,
        notify_requester: bool = False,
    ) -> None:
        now = self.clock()
        seq = uow.audit.append(
            at=now,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action=row.operation,
            outcome=outcome,
            app_id=row.app_id,
            request_id=row.id,
            detail=detail[:2000],
        )
        audience = [self.config.audit_channel] if self.config.audit_channel else []
        if notify_requester:
            audience.append(row.actor_id)
        for destination in audience:
            self._enqueue(
                uow,
                "message",
                "audit",
                destination,
                row.app_id,
                {
                    "type": "refusal" if outcome == "refused" else outcome,
                    "operation": row.operation,
                    "outcome": outcome,
                    "app_id": row.app_id,
                    "app_name": row.params.get("app_name") or row.params.get("name"),
                    "actor_id": actor.user_id,
                    "actor_name": actor.name,
                    "requester_id": row.actor_id,
                    "detail": detail,
                    "at": now.isoformat(),
                    "audit_seq": seq,
                    "request_id": row.id,
                },
                now,
            )

    def _audit_access(
        self, uow: UnitOfWork, action: str, grant: Grant, label: str, actor: Actor, now: datetime
    ) -> None:
        subject = {
            "principal": f"{grant.principal_kind}:{grant.principal_id}",
            "label": label,
            "role": grant.role.label,
            "team": grant.team or "(all apps)",
        }
        seq = uow.audit.append(
            at=now,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action=action,
            outcome="applied",
            after=subject,
        )
        if self.config.audit_channel:
            self._enqueue(
                uow,
                "message",
                "audit",
                self.config.audit_channel,
                None,
                {
                    "type": action,
                    "actor_id": actor.user_id,
                    "actor_name": actor.name,
                    "at": now.isoformat(),
                    "audit_seq": seq,
                    **subject,
                },
                now,
            )

    def _notify_approvers(
        self,
        uow: UnitOfWork,
        row: PendingRequestRow,
        preview: Preview,
        before: AppState | None,
        rule: ApprovalRule,
    ) -> None:
        channel = self.config.access.approvals_channel or (before.owner_channel if before else None)
        channel = channel or self.config.audit_channel or row.channel_id
        if not channel:
            return
        self._enqueue(
            uow,
            "message",
            "approval",
            channel,
            row.app_id,
            {
                "type": "approval",
                "request_id": row.id,
                "operation": row.operation,
                "app_id": row.app_id,
                "app_name": preview.app_name,
                "summary": preview.summary,
                "changes": [[c.label, c.before, c.after] for c in preview.changes],
                "cost": preview.cost_text,
                "warnings": list(preview.warnings),
                "danger": preview.danger,
                "requester_id": row.actor_id,
                "requester_name": row.actor_name,
                "approvals_needed": rule.approvers,
                "expires_at": row.expires_at.isoformat(),
            },
            row.created_at,
            key=f"approval:{row.id}",
        )

    def _decide(self, row: PendingRequestRow, state: str, actor: Actor, now: datetime) -> None:
        row.state = state
        row.decided_by = actor.user_id
        row.decided_by_name = actor.name
        row.decided_at = now

    def _cancel(self, uow: UnitOfWork, row: PendingRequestRow, actor: Actor) -> Outcome:
        self._decide(row, "cancelled", actor, self.clock())
        uow.requests.add(row)
        uow.commit()
        return self._outcome(row, "cancelled", actor, "Cancelled; nothing was changed.")

    def _outcome(
        self,
        row: PendingRequestRow,
        state: str,
        actor: Actor,
        message: str,
        *,
        approvals: tuple[str, ...] = (),
    ) -> Outcome:
        return Outcome(
            request_id=row.id,
            state=state,
            operation=Operation(row.operation),
            app_id=row.app_id,
            app_name=str(row.params.get("app_name") or row.params.get("name") or ""),
            message=message,
            actor=actor,
            approvals=approvals,
            approvals_needed=row.approvals_needed,
        )

    def _new_app_id(self, uow: UnitOfWork) -> str:
        while True:
            candidate = "14" + "".join(secrets.choice("0123456789") for _ in range(8))
            if uow.apps.get(candidate) is None:
                return candidate

    def _status(self, state: AppState) -> AppStatus:
        catalog, tz, now = self.config.catalog, self.config.billing_tz, self.clock()
        used = False
        if state.config_changed_at is not None:
            changed, local = state.config_changed_at.astimezone(tz), now.astimezone(tz)
            used = (changed.year, changed.month) == (local.year, local.month)
        return AppStatus(
            app=state,
            monthly_price=catalog.monthly_price(state.plan, state.config),
            currency=catalog.currency,
            config_text=catalog.describe_config(state.config) if state.plan.paid else "-",
            config_change_used=used,
            next_config_change=domain.next_month_start(now, tz) if used else None,
            purge_at=state.purge_at,
            limits=catalog.plans[state.plan].limits,
        )


# --- pure helpers ------------------------------------------------------------------------------


def _day(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d") if moment else "-"


def _snapshot(state: AppState) -> dict[str, Any]:
    return {
        "plan": state.plan.value,
        "status": state.status.value,
        "billing_mode": state.billing_mode.value,
        "config": dict(state.config),
        "dev_expires_at": state.dev_expires_at.isoformat() if state.dev_expires_at else None,
        "disabled_at": state.disabled_at.isoformat() if state.disabled_at else None,
        "version": state.version,
    }


def _grant(row: AccessGrantRow) -> Grant:
    return Grant(row.principal_kind, row.principal_id, Role.parse(row.role), row.team or None)


def _params(change: ChangeRequest, channel_id: str | None) -> dict[str, Any]:
    return {
        "app": change.app,
        "plan": change.plan.value if change.plan else None,
        "addons": dict(change.addons),
        "name": change.name,
        "owner_channel": channel_id,
    }


def _change(row: PendingRequestRow | RequestRecord) -> ChangeRequest:
    params = row.params
    return ChangeRequest(
        operation=Operation(row.operation),
        app=row.app_id,
        plan=Plan(params["plan"]) if params.get("plan") else None,
        addons=dict(params.get("addons") or {}),
        name=params.get("name"),
    )


def _summary(op: Operation, before: AppState | None, after: AppState) -> str:
    if before is None:
        return f"Create developer app {after.name}"
    who = f"{after.name} ({after.app_id})"
    return {
        Operation.UPGRADE: f"Upgrade {who} from {before.plan} to {after.plan}",
        Operation.CONFIGURE: f"Change the configuration of {who}",
        Operation.EXTEND: f"Extend the developer validity of {who}",
        Operation.DISABLE: f"Disable {who}",
        Operation.ENABLE: f"Re-enable {who}",
        Operation.MIGRATE: f"Migrate {who} from legacy to current billing",
    }.get(op, f"{op} {who}")


def _done_message(op: Operation, after: AppState) -> str:
    who = f"{after.name} ({after.app_id})"
    if op is Operation.CREATE:
        return f"Created developer app {who}."
    return f"{who} {op.verb}."
