"""Writing a change and what it tells people, in the caller's unit of work.

Every change to an app (a confirmed request, an import aside, the lifecycle's suspensions and
purges) is written by `record_change`: the app row, its plan history, the provisioning call, the
hash-chained audit record, and the audit messages, in one transaction. Messages for people are
typed facts (`core.messages`), queued for delivery with `enqueue`; replies to a click with `reply`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from core.audit import AuditRecord
from core.config import CoreConfig
from core.domain import Actor, AppState, HistoryEntry, Operation
from core.facts import FieldChange
from core.home import home_changed
from core.messages import ChangeApplied, Message, dump, person
from core.money import CostImpact
from core.requests import Request
from core.store.ports import OutboxEntry, UnitOfWork

__all__ = [
    "audience",
    "cost_record",
    "enqueue",
    "message_entry",
    "record_change",
    "reply",
    "snapshot",
]


def snapshot(state: AppState) -> dict[str, Any]:
    """The app's state as the audit trail and the provisioning call record it."""
    return {
        "plan": state.plan.value,
        "status": state.status.value,
        "billing_mode": state.billing_mode.value,
        "config": dict(state.config),
        "dev_expires_at": state.dev_expires_at.isoformat() if state.dev_expires_at else None,
        "disabled_at": state.disabled_at.isoformat() if state.disabled_at else None,
        "version": state.version,
    }


def cost_record(cost: CostImpact | None) -> str | None:
    """The cost of a change as the audit trail records it."""
    if cost is None:
        return None
    month = f"{cost.year}-{cost.month:02d}"
    return (
        f"{cost.delta:+.2f} {cost.currency} in {month} "
        f"({cost.before_month_total:.2f} -> {cost.after_month_total:.2f}); "
        f"{cost.monthly_after:.2f} {cost.currency} a month"
    )


def audience(config: CoreConfig, owner_channel: str | None) -> list[str]:
    """Where a change to an app is told: the audit channel and the app's owner channel."""
    channels = [config.audit_channel, owner_channel]
    return list(dict.fromkeys(c for c in channels if c))


def message_entry(
    message: Message,
    *,
    destination: str,
    app_id: str | None,
    now: datetime,
    topic: str,
    key: str | None = None,
) -> OutboxEntry:
    """The outbox entry of a message for a channel or a person."""
    return OutboxEntry(
        kind="message",
        topic=topic,
        destination=destination,
        app_id=app_id,
        payload=dump(message),
        created_at=now,
        key=key,
    )


def enqueue(
    uow: UnitOfWork,
    message: Message,
    *,
    destination: str,
    app_id: str | None,
    now: datetime,
    topic: str,
    key: str | None = None,
) -> None:
    """Queue a message for a channel or a person."""
    uow.outbox.add(
        message_entry(
            message, destination=destination, app_id=app_id, now=now, topic=topic, key=key
        )
    )


def reply(url: str, message: Message, now: datetime) -> OutboxEntry:
    """The outbox entry answering at a reply URL (one queue per URL, in order)."""
    return OutboxEntry(
        kind="reply",
        topic="reply",
        destination=hashlib.sha256(url.encode()).hexdigest()[:40],
        app_id="",  # not NULL: entries for one URL then wait for the ones before
        payload={"url": url, "message": dump(message)},
        created_at=now,
    )


def record_change(
    uow: UnitOfWork,
    config: CoreConfig,
    *,
    before: AppState | None,
    after: AppState,
    operation: Operation,
    actor: Actor,
    now: datetime,
    changes: Sequence[FieldChange] = (),
    cost: CostImpact | None = None,
    request: Request | None = None,
    approvals: Sequence[Actor] = (),
    since: datetime | None = None,
    detail: str = "",
    wake: Callable[[], None] | None = None,
) -> int:
    """Write a change in the caller's transaction; the seq of its audit record.

    The audit record comes after everything but the messages that cite it: on the compiled
    runner everything before it is prepared before the writers' turn is taken.
    """
    if before is None:
        uow.apps.add(after, now)
    else:
        uow.apps.save(before, after, now)
    request_id = request.id if request else None
    uow.history.add(
        HistoryEntry(
            app_id=after.app_id,
            at=now,
            operation=operation.value,
            plan=after.plan,
            status=after.status,
            billing_mode=after.billing_mode,
            config=after.config,
            monthly_price=config.catalog.monthly_price(after.plan, after.config),
            actor=person(actor),
            request_id=request_id,
        )
    )
    uow.outbox.add(
        OutboxEntry(
            kind="provision",
            topic="provision",
            destination="provisioner",
            app_id=after.app_id,
            payload={
                "idempotency_key": request_id
                or f"{operation.value}:{after.app_id}:{after.version}",
                "operation": operation.value,
                "app_id": after.app_id,
                "before": snapshot(before) if before else None,
                "after": snapshot(after),
                "actor": {"id": actor.user_id, "name": actor.name},
                "at": now.isoformat(),
            },
            created_at=now,
            delivered=config.provisioning_recorded_only,
        )
    )
    requester = [request.requester.user_id] if request is not None else []
    home_changed(uow, now=now, app_ids=[after.app_id], users=requester)
    seq = uow.audit.append(
        AuditRecord(
            at=now,
            actor_id=actor.user_id,
            actor_name=actor.name,
            action=operation.value,
            outcome="applied",
            app_id=after.app_id,
            request_id=request_id,
            before=snapshot(before) if before else {},
            after=snapshot(after),
            cost=cost_record(cost),
            detail=detail,
        )
    )
    message = ChangeApplied(
        operation=operation,
        app_id=after.app_id,
        app_name=after.name,
        actor=person(actor),
        requester=person(request.requester) if request else None,
        approvals=tuple(person(a) for a in approvals),
        changes=tuple(changes),
        cost=cost,
        since=since,
        at=now,
        audit_seq=seq,
        request_id=request_id,
    )
    destinations = audience(config, after.owner_channel)
    if request is not None and request.needs_peers:
        destinations.append(request.requester.user_id)  # they hear how their request ended
    for destination in destinations:
        enqueue(uow, message, destination=destination, app_id=after.app_id, now=now, topic="audit")
    if wake is not None and (destinations or not config.provisioning_recorded_only):
        uow.after_commit(wake)
    return seq
