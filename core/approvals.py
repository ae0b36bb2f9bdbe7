"""The two cards of a request that needs peers' approval, kept true as the request moves on.

The approval card (in the approvals channel, or the app's owner channel) asks peers to approve;
the requester's card (ephemeral, the answer to their command) waits with a Withdraw button.

- When the request is made, the approval card is queued, and the requester's card is queued
  again after it, with where the approval card went (the delivery fills in the posted message,
  so the edge can link to it).
- After each approval that is not the last, the approval card is updated with the progress and
  keeps its whole preview and its buttons.
- When the request ends (applied, rejected, withdrawn, expired, refused), the approval card is
  replaced at once by how it ended and by whom, without buttons; the requester's card is
  replaced too (without Withdraw) while their command's reply URL still answers.

Everything is written in the caller's unit of work, with the decision it follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from core.access import ROLE_FOR
from core.config import CoreConfig
from core.domain import Actor
from core.facts import FieldChange, Outcome, Preview, Refusal
from core.messages import (
    ApprovalCardPosted,
    ApprovalCardUpdate,
    ApprovalRequested,
    CardDecided,
    load,
    person,
)
from core.money import CostImpact
from core.records import enqueue, reply
from core.requests import Request
from core.store.ports import OutboxEntry, UnitOfWork

__all__ = [
    "approval_channel",
    "card_key",
    "close_card",
    "post_card",
    "tell_requester",
    "update_progress",
]

Ending = Literal["expired", "withdrawn", "applied", "rejected", "refused"]


def card_key(request_id: str) -> str:
    """The outbox key of a request's approval card."""
    return f"approval:{request_id}"


def approval_channel(
    config: CoreConfig, owner_channel: str | None, asked_in: str | None
) -> str | None:
    """Where a request's approval card goes: the approvals channel, else the app's owner
    channel, else the audit channel, else where it was asked."""
    return config.access.approvals_channel or owner_channel or config.audit_channel or asked_in


def post_card(
    uow: UnitOfWork,
    config: CoreConfig,
    request: Request,
    preview: Preview,
    channel: str,
    now: datetime,
) -> None:
    """Queue the approval card, and the requester's card again once it is posted."""
    card = ApprovalRequested(
        request_id=request.id,
        preview=preview,
        requester=person(request.requester),
        approvals_needed=request.approvals_needed,
        role=ROLE_FOR[request.operation].label,
        expires_at=request.expires_at,
        approver_group=config.access.approver_group,
    )
    key = card_key(request.id)
    enqueue(
        uow, card, destination=channel, app_id=request.app_id, now=now, topic="approval", key=key
    )
    if request.reply_url:
        posted = ApprovalCardPosted(
            request_id=request.id,
            preview=preview,
            approvals_needed=request.approvals_needed,
            role=card.role,
            expires_at=request.expires_at,
            channel=channel,
            approver_group=card.approver_group,
            reader=request.requester.user_id,
        )
        entry = reply(request.reply_url, posted, now)
        uow.outbox.add(_after(entry, key))


def _after(entry: OutboxEntry, key: str) -> OutboxEntry:
    """The reply, delivered once the entry with `key` is (with where it was posted)."""
    return OutboxEntry(
        kind=entry.kind,
        topic=entry.topic,
        destination=entry.destination,
        app_id=entry.app_id,
        payload={**entry.payload, "after_key": key},
        created_at=entry.created_at,
    )


def _card(uow: UnitOfWork, request: Request) -> OutboxEntry | None:
    """The request's approval card, if it was queued and can still be updated."""
    card = uow.outbox.by_key(card_key(request.id))
    if card is None or card.id is None or card.status == "dead":
        return None
    return card


def update_progress(
    uow: UnitOfWork, request: Request, approvals: Sequence[Actor], now: datetime
) -> None:
    """The approval card again, with the approvals given so far (its buttons kept)."""
    card = _card(uow, request)
    if card is None:
        return
    asked = load(card.payload)
    if not isinstance(asked, ApprovalRequested):
        return
    update = ApprovalRequested(
        request_id=asked.request_id,
        preview=asked.preview,
        requester=asked.requester,
        approvals_needed=asked.approvals_needed,
        role=asked.role,
        expires_at=asked.expires_at,
        approver_group=asked.approver_group,
        approvals=tuple(person(a) for a in approvals),
        update_of=card.id,
    )
    enqueue(
        uow, update, destination=card.destination, app_id=card.app_id, now=now, topic="approval"
    )


def close_card(
    uow: UnitOfWork,
    request: Request,
    state: Ending,
    *,
    now: datetime,
    by: Actor | None = None,
    approvals: Sequence[Actor] = (),
    changes: Sequence[FieldChange] = (),
    cost: CostImpact | None = None,
    refusal: Refusal | None = None,
    key: str | None = None,
) -> bool:
    """Replace the approval card by how the request ended (no buttons); whether one was queued."""
    card = _card(uow, request)
    if card is None:
        return False
    update = ApprovalCardUpdate(
        update_of=card.id or 0,
        request_id=request.id,
        state=state,
        operation=request.operation,
        app_id=request.app_id,
        app_name=request.app_name,
        requester=person(request.requester),
        by=person(by) if by is not None else None,
        at=now,
        expired_at=request.expires_at if state == "expired" else None,
        role=ROLE_FOR[request.operation].label,
        approvals=tuple(person(a) for a in approvals),
        approvals_needed=request.approvals_needed,
        changes=tuple(changes),
        cost=cost,
        refusal=refusal,
    )
    enqueue(
        uow,
        update,
        destination=card.destination,
        app_id=card.app_id,
        now=now,
        topic="approval",
        key=key,
    )
    return True


def tell_requester(
    uow: UnitOfWork, config: CoreConfig, request: Request, outcome: Outcome, now: datetime
) -> bool:
    """Replace the requester's card by the outcome (no Withdraw left), while the reply URL of
    their command still answers; whether it was queued."""
    if not request.reply_url or now >= request.created_at + config.reply_ttl:
        return False
    decided = CardDecided(outcome=outcome, at=now, reader=request.requester.user_id)
    uow.outbox.add(reply(request.reply_url, decided, now))
    return True
