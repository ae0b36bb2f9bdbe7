"""What a change will do, worked out from the rules: the new state, its cost and its notices.

`rule` applies a requested operation to an app (the one place a `ChangeRequest` meets the rules
of `core.domain`); `preview` says what the change does, as facts (`core.facts.Preview`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core import domain
from core.config import CoreConfig
from core.domain import AppState, Operation, Plan, Status
from core.facts import Notice, NoticeCode, Preview, changed_fields
from core.money import CostImpact, RateSegment, cost_impact
from core.requests import ChangeRequest

__all__ = ["cost_of", "notices_of", "preview", "rule", "segment_of"]


def rule(app: AppState, change: ChangeRequest, now: datetime, config: CoreConfig) -> AppState:
    """The app after the requested change, or the PlanError that refuses it."""
    op = change.operation
    if op is Operation.UPGRADE:
        return domain.upgrade(app, change.plan or Plan.DEVELOPER, now)
    if op is Operation.CONFIGURE:
        catalog = config.catalog
        return domain.configure(
            app,
            edition=change.plan,
            addons=catalog.check_addons(change.addons),
            now=now,
            tz=config.billing_tz,
            defaults={name: addon.default for name, addon in catalog.addons.items()},
        )
    if op is Operation.EXTEND:
        return domain.extend(app, now, config.billing_tz)
    if op is Operation.DISABLE:
        return domain.disable(app, now)
    if op is Operation.ENABLE:
        return domain.enable(app, now)
    if op is Operation.MIGRATE:
        return domain.migrate(app, now)
    raise ValueError(f"not a requestable operation: {op}")


def segment_of(state: AppState, start: datetime, config: CoreConfig) -> RateSegment:
    """The rate segment the state starts at `start`."""
    return RateSegment(
        start=start,
        plan=state.plan,
        status=state.status,
        billing_mode=state.billing_mode,
        monthly=config.catalog.monthly_price(state.plan, state.config),
        config=tuple(sorted(state.config.items())),
    )


def cost_of(
    segments: Sequence[RateSegment], after: AppState, now: datetime, config: CoreConfig
) -> CostImpact:
    """This month's bill without and with the change made now."""
    return cost_impact(
        segments,
        segment_of(after, now, config),
        tz=config.billing_tz,
        now=now,
        currency=config.catalog.currency,
    )


def notices_of(
    op: Operation, before: AppState | None, after: AppState, now: datetime, config: CoreConfig
) -> tuple[Notice, ...]:
    """What the person must know before confirming."""
    if op is Operation.UPGRADE:
        return (Notice(code=NoticeCode.IRREVERSIBLE_UPGRADE),)
    if op is Operation.CONFIGURE:
        nxt = domain.next_month_start(now, config.billing_tz)
        return (Notice(code=NoticeCode.CONFIG_ONCE_A_MONTH, at=nxt),)
    if op is Operation.DISABLE:
        return (
            Notice(code=NoticeCode.SERVICE_STOPS),
            Notice(code=NoticeCode.REENABLE_UNTIL, at=after.purge_at),
        )
    if op is Operation.ENABLE:
        return (Notice(code=NoticeCode.SERVICE_RESUMES),)
    if op is Operation.MIGRATE:
        return (Notice(code=NoticeCode.ONE_WAY_MIGRATION),)
    if op is Operation.EXTEND and before is not None and before.status is Status.SUSPENDED:
        return (Notice(code=NoticeCode.REACTIVATES),)
    if op is Operation.CREATE:
        return (Notice(code=NoticeCode.DEVELOPER_VALID_UNTIL, at=after.dev_expires_at),)
    return ()


def preview(
    op: Operation,
    before: AppState | None,
    after: AppState,
    segments: Sequence[RateSegment],
    now: datetime,
    config: CoreConfig,
) -> Preview:
    """What the change does: fields before -> after, its cost, its notices."""
    tz = config.billing_tz

    def same_day(a: datetime, b: datetime) -> bool:
        return a.astimezone(tz).date() == b.astimezone(tz).date()

    return Preview(
        operation=op,
        app_id=before.app_id if before else None,
        app_name=after.name,
        plan_before=before.plan if before else None,
        plan_after=after.plan,
        changes=changed_fields(before, after, config.catalog, same_day=same_day),
        cost=cost_of(segments, after, now, config),
        notices=notices_of(op, before, after, now, config),
    )
