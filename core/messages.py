"""What leaves through the outbox for people: one typed fact per message kind.

The core writes these in the transaction of the change they report; the edge renders them when it
delivers them, in the reader's language. `dump` and `load` turn them into the JSON an outbox entry
stores and back (a `kind` field tells them apart).

- `ChangeApplied`: a change was applied (by a person, or by the lifecycle: suspend, purge).
- `RequestEvent`: something happened to a request that changed no app: a refused click that
  matters, a rejection, a partial approval, an expiry, a withdrawal.
- `AccessChanged`: a role was granted or revoked.
- `ApprovalRequested`: the card asking peers to approve a request (again, with its progress,
  as an update of it after each approval); `ApprovalCardUpdate` replaces it once the request is
  decided, withdrawn or expired; `ApprovalCardPosted` tells the requester where it went.
- `DevExpiryReminder`, `PurgeWarning`, `StatementIssued`: the lifecycle's notices.
- `CardDecided`: the reply that replaces a request's card once a click decided it.
- `Rendered`: a reply the edge already rendered (its own answers to a click).
- `HomeChanged`: something people see on their home tab changed (written with the change);
  delivering it queues a `HomePublish` for each recent viewer who sees it, whose delivery draws
  that person's home tab again.
- `DriftChanged`, `UsageLevelReached`, `ReconciliationDifferences`: the provider connector's
  (`core.provider.messages`).
- `DeliveryFailed`: messages to a destination can't be delivered (the audit channel hears it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field as Discriminated
from pydantic import TypeAdapter

from core.domain import Actor, BillingMode, Operation, Plan
from core.facts import FieldChange, Outcome, Preview, Refusal
from core.money import CostImpact
from core.provider.messages import ProviderMessage
from core.statements import TeamStatement

__all__ = [
    "AccessChanged",
    "ApprovalCardPosted",
    "ApprovalCardUpdate",
    "ApprovalRequested",
    "CardDecided",
    "ChangeApplied",
    "DeliveryFailed",
    "DevExpiryReminder",
    "HomeChanged",
    "HomePublish",
    "Message",
    "PurgeWarning",
    "Rendered",
    "RequestEvent",
    "StatementIssued",
    "dump",
    "load",
    "person",
]


def person(actor: Actor) -> Actor:
    """The actor as messages name them (without their groups)."""
    return Actor(actor.user_id, actor.name) if actor.groups or actor.pending_groups else actor


@dataclass(frozen=True, kw_only=True)
class ChangeApplied:
    """A change was applied to an app (audit channel, owner channel, and the requester)."""

    kind: Literal["change_applied"] = "change_applied"
    operation: Operation
    app_id: str
    app_name: str
    actor: Actor
    requester: Actor | None = None
    approvals: tuple[Actor, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    cost: CostImpact | None = None
    #: suspend: when the developer validity ended; purge: when the app was disabled
    since: datetime | None = None
    at: datetime
    audit_seq: int | None = None
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RequestEvent:
    """A request was refused, rejected, approved in part, expired or withdrawn: for the audit
    channel, or (`audience="requester"`) told to the person who asked."""

    kind: Literal["request_event"] = "request_event"
    event: Literal["refused", "rejected", "approved", "expired", "withdrawn"]
    audience: Literal["channel", "requester"] = "channel"
    operation: Operation
    app_id: str | None
    app_name: str
    actor: Actor
    requester: Actor | None = None
    refusal: Refusal | None = None
    approvals: tuple[Actor, ...] = ()
    approvals_needed: int = 0
    at: datetime
    audit_seq: int | None = None
    request_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class AccessChanged:
    """A role was granted or revoked."""

    kind: Literal["access_changed"] = "access_changed"
    granted: bool
    actor: Actor
    principal_kind: str  # "user" or "group"
    principal_id: str
    label: str
    role: str
    team: str | None
    at: datetime
    audit_seq: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested:
    """The card asking peers to approve or reject a request; after a partial approval, the same
    card again with the approvals so far (`update_of`: the outbox entry of the card it updates)."""

    kind: Literal["approval_requested"] = "approval_requested"
    request_id: str
    preview: Preview
    requester: Actor
    approvals_needed: int
    role: str
    expires_at: datetime
    approver_group: str | None = None
    approvals: tuple[Actor, ...] = ()
    update_of: int | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalCardUpdate:
    """What replaces an approval card once its request is no longer waiting: how it ended, who
    ended it (none for an expiry), and for an applied change what changed."""

    kind: Literal["approval_card_update"] = "approval_card_update"
    update_of: int  # the outbox entry of the card
    request_id: str
    state: Literal["expired", "withdrawn", "applied", "rejected", "refused"]
    operation: Operation
    app_id: str | None
    app_name: str
    requester: Actor
    by: Actor | None = None
    at: datetime
    expired_at: datetime | None = None
    role: str = ""
    approvals: tuple[Actor, ...] = ()
    approvals_needed: int = 0
    changes: tuple[FieldChange, ...] = ()
    cost: CostImpact | None = None
    refusal: Refusal | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalCardPosted:
    """The requester's card again, once the approval card is posted, with where it is.

    The delivery fills in `receipt` (where the card was posted; None when it could not be)
    and the edge the card's `permalink` when it can get one.
    """

    kind: Literal["approval_card_posted"] = "approval_card_posted"
    request_id: str
    preview: Preview
    approvals_needed: int
    role: str
    expires_at: datetime
    channel: str
    approver_group: str | None = None
    receipt: dict[str, Any] | None = None
    permalink: str | None = None
    #: who reads it (the requester's user id), for their language
    reader: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeliveryFailed:
    """Messages to a destination (a channel, a person) could not be delivered, for a reason
    retrying won't fix (`reason`: the platform's own code, e.g. `not_in_channel`)."""

    kind: Literal["delivery_failed"] = "delivery_failed"
    destination: str
    reason: str
    topic: str
    app_id: str | None = None
    at: datetime


@dataclass(frozen=True, kw_only=True)
class DevExpiryReminder:
    """A developer app expires soon (the owner channel), with an Extend button."""

    kind: Literal["dev_expiry_reminder"] = "dev_expiry_reminder"
    app_id: str
    app_name: str
    billing_mode: BillingMode
    notice_days: int
    expires_at: datetime
    at: datetime


@dataclass(frozen=True, kw_only=True)
class PurgeWarning:
    """A disabled app will be purged soon (the owner channel), with an Enable button."""

    kind: Literal["purge_warning"] = "purge_warning"
    app_id: str
    app_name: str
    plan: Plan
    notice_days: int
    disabled_at: datetime
    purge_at: datetime
    at: datetime


@dataclass(frozen=True, kw_only=True)
class StatementIssued:
    """A team's statement for the month before, posted on the 1st (late when posted after)."""

    kind: Literal["statement_issued"] = "statement_issued"
    statement: TeamStatement  # the apps listed (at most a thousand)
    apps_omitted: int = 0
    total: Decimal  # of every app, listed or not
    to_date: Decimal
    issued_on: date
    billing_tz: str


@dataclass(frozen=True, kw_only=True)
class CardDecided:
    """The card of a request, once a click decided it."""

    kind: Literal["card_decided"] = "card_decided"
    outcome: Outcome
    at: datetime
    #: who reads it (whose card it is: the clicker's, or the requester's), for their language
    reader: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """A reply the edge rendered itself."""

    kind: Literal["rendered"] = "rendered"
    message: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class HomeChanged:
    """What people see on their home tab changed: the apps of these teams (or these apps, whose
    teams are looked up when delivered), these people's requests, or (`everyone`) what anyone
    may see (a group's role changed)."""

    kind: Literal["home_changed"] = "home_changed"
    app_ids: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    everyone: bool = False
    at: datetime


@dataclass(frozen=True, kw_only=True)
class HomePublish:
    """Draw this person's home tab again, as it is when delivered."""

    kind: Literal["home_publish"] = "home_publish"
    user_id: str
    at: datetime


Message = (
    ChangeApplied
    | RequestEvent
    | AccessChanged
    | ApprovalRequested
    | ApprovalCardUpdate
    | ApprovalCardPosted
    | DeliveryFailed
    | DevExpiryReminder
    | PurgeWarning
    | StatementIssued
    | CardDecided
    | Rendered
    | HomeChanged
    | HomePublish
    | ProviderMessage
)

_CODEC: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Discriminated(discriminator="kind")])


def dump(message: Message) -> dict[str, Any]:
    """The JSON-ready payload of a message."""
    return _CODEC.dump_python(message, mode="json")


def load(payload: Mapping[str, Any]) -> Message:
    """The message a payload holds (pydantic.ValidationError when it holds none)."""
    return _CODEC.validate_python(payload)
