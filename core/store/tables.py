"""The SQLModel tables: apps, plan history, pending requests, audit log, outbox, access grants."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = [
    "AccessGrantRow",
    "AppRow",
    "ApprovalRow",
    "AuditEventRow",
    "AuditHeadRow",
    "HomeViewerRow",
    "InboundEventRow",
    "LifecycleMarkRow",
    "OutboxRow",
    "PendingRequestRow",
    "PersonRow",
    "PlanHistoryRow",
    "ProviderDriftRow",
    "ProviderMarkRow",
    "ProviderReconciliationRow",
    "ProviderUsageRow",
    "ReceivedRequestRow",
    "UTCDateTime",
]


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so it is restored here)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False))


class AppRow(SQLModel, table=True):
    """An IM application and its current plan state."""

    __tablename__ = "app"
    __table_args__ = (
        sa.Index("ix_app_dev_due", "status", "dev_expires_at"),
        sa.Index("ix_app_purge_due", "status", "disabled_at"),
        sa.Index("ix_app_name_lower", sa.text("lower(name)")),
        sa.Index("ux_app_name_key", "name_key", unique=True),
    )

    app_id: str = Field(primary_key=True, max_length=20)
    name: str = Field(index=True, max_length=80)
    #: the name with case folded (`core.domain.name_key`): unique, so no two apps share a name
    #: whatever the case, and replicas creating the same name at once cannot both succeed
    name_key: str = Field(max_length=255)
    owner_channel: str | None = Field(default=None, index=True, max_length=40)
    plan: str = Field(max_length=16)
    billing_mode: str = Field(max_length=16)
    status: str = Field(max_length=16)
    created_at: datetime = _when()
    dev_expires_at: datetime | None = _when(nullable=True)
    disabled_at: datetime | None = _when(nullable=True)
    config_changed_at: datetime | None = _when(nullable=True)
    config: dict[str, str] = _json()
    version: int = 1
    updated_at: datetime = _when()
    #: when planbot came to know the app (created or imported); NULL (older rows): created_at
    known_since: datetime | None = _when(nullable=True)


class PlanHistoryRow(SQLModel, table=True):
    """The app's plan state from `effective_at` on, with the monthly price then in force."""

    __tablename__ = "plan_history"
    __table_args__ = (sa.Index("ix_plan_history_app", "app_id", "effective_at"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: str = Field(max_length=20)
    effective_at: datetime = _when()
    operation: str = Field(max_length=16)
    plan: str = Field(max_length=16)
    billing_mode: str = Field(max_length=16)
    status: str = Field(max_length=16)
    config: dict[str, str] = _json()
    monthly_price: str = Field(max_length=24)
    actor_id: str = Field(max_length=40)
    actor_name: str = Field(default="", max_length=120)
    request_id: str | None = Field(default=None, max_length=40)


class PendingRequestRow(SQLModel, table=True):
    """A previewed change waiting for its confirmation (or approval)."""

    __tablename__ = "pending_request"

    id: str = Field(primary_key=True, max_length=40)
    operation: str = Field(max_length=16)
    app_id: str | None = Field(default=None, index=True, max_length=20)
    params: dict[str, Any] = _json()
    actor_id: str = Field(max_length=40)
    actor_name: str = Field(default="", max_length=120)
    channel_id: str | None = Field(default=None, max_length=40)
    app_version: int | None = None
    created_at: datetime = _when()
    expires_at: datetime = _when(index=True)
    state: str = Field(default="pending", max_length=16, index=True)
    approvals_needed: int = 0
    decided_by: str | None = Field(default=None, max_length=40)
    decided_by_name: str | None = Field(default=None, max_length=120)
    decided_at: datetime | None = _when(nullable=True)
    result: dict[str, Any] = _json()


class ApprovalRow(SQLModel, table=True):
    """One approver's decision on a peer-approved request."""

    __tablename__ = "approval"
    __table_args__ = (sa.UniqueConstraint("request_id", "approver_id"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=40, index=True)
    approver_id: str = Field(max_length=40)
    approver_name: str = Field(default="", max_length=120)
    decision: str = Field(max_length=16)
    decided_at: datetime = _when()


class AuditEventRow(SQLModel, table=True):
    """One append-only audit record, chained to the previous one by its hash."""

    __tablename__ = "audit_event"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _when()
    actor_id: str = Field(max_length=40)
    actor_name: str = Field(default="", max_length=120)
    action: str = Field(max_length=40)
    outcome: str = Field(max_length=16)
    app_id: str | None = Field(default=None, index=True, max_length=20)
    request_id: str | None = Field(default=None, max_length=40)
    before: dict[str, Any] = _json()
    after: dict[str, Any] = _json()
    cost: str | None = Field(default=None, max_length=200)
    detail: str = Field(default="", max_length=2000)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHeadRow(SQLModel, table=True):
    """The newest audit record's sequence number and hash (one row; locked to append)."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)


class OutboxRow(SQLModel, table=True):
    """A message or provisioning call to deliver after the transaction that wrote it."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, max_length=200, unique=True)
    kind: str = Field(max_length=16)
    topic: str = Field(max_length=40)
    destination: str = Field(default="", max_length=200)
    app_id: str | None = Field(default=None, max_length=20)
    payload: dict[str, Any] = _json()
    created_at: datetime = _when()
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = _when()
    lease_until: datetime | None = _when(nullable=True)
    delivered_at: datetime | None = _when(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)
    receipt: dict[str, Any] = _json()


class LifecycleMarkRow(SQLModel, table=True):
    """How far a lifecycle job has looked (a watermark), or when a monthly job was done."""

    __tablename__ = "lifecycle_mark"

    name: str = Field(primary_key=True, max_length=80)
    at: datetime = _when()


class AccessGrantRow(SQLModel, table=True):
    """A role granted to a user or a user group, globally or for one owner team's apps."""

    __tablename__ = "access_grant"
    __table_args__ = (sa.UniqueConstraint("principal_kind", "principal_id", "role", "team"),)

    id: int | None = Field(default=None, primary_key=True)
    principal_kind: str = Field(max_length=8)
    principal_id: str = Field(max_length=40, index=True)
    principal_label: str = Field(default="", max_length=120)
    role: str = Field(max_length=16)
    team: str = Field(default="", max_length=40)
    granted_by: str = Field(max_length=40)
    granted_at: datetime = _when()


class HomeViewerRow(SQLModel, table=True):
    """Someone who opened planbot's home tab: who they are, and what they last looked at."""

    __tablename__ = "home_viewer"

    user_id: str = Field(primary_key=True, max_length=40)
    name: str = Field(default="", max_length=120)
    groups: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    team: str = Field(default="", max_length=40)  # the team filter ("": every team)
    page: int = 1
    opened_at: datetime = _when(index=True)


class InboundEventRow(SQLModel, table=True):
    """An event received from the chat platform, by its id: a retry of it is not processed."""

    __tablename__ = "inbound_event"

    event_id: str = Field(primary_key=True, max_length=80)
    received_at: datetime = _when(index=True)


class ReceivedRequestRow(SQLModel, table=True):
    """A state-changing request received, by its signature: the same request sent again (a
    replay) changes nothing."""

    __tablename__ = "received_request"

    signature: str = Field(primary_key=True, max_length=100)
    received_at: datetime = _when(index=True)


class ProviderUsageRow(SQLModel, table=True):
    """One app's figures for one day, as the provider's daily statistics gave them."""

    __tablename__ = "provider_usage"

    app_id: str = Field(primary_key=True, max_length=20)
    day: date = Field(primary_key=True)
    active_users: int = Field(default=0, sa_type=sa.BigInteger)
    logins: int = Field(default=0, sa_type=sa.BigInteger)
    peak_online: int = Field(default=0, sa_type=sa.BigInteger)
    registered_users: int = Field(default=0, sa_type=sa.BigInteger)
    groups: int = Field(default=0, sa_type=sa.BigInteger)
    messages: int = Field(default=0, sa_type=sa.BigInteger)
    fetched_at: datetime = _when()


class ProviderDriftRow(SQLModel, table=True):
    """An app id in the last known drift: in the account but not planbot's, or the reverse."""

    __tablename__ = "provider_drift"

    app_id: str = Field(primary_key=True, max_length=20)
    kind: str = Field(max_length=16)  # "unknown" (account only) or "missing" (planbot only)
    since: datetime = _when()


class ProviderReconciliationRow(SQLModel, table=True):
    """One app's charge for a month beside the amount the provider billed for it."""

    __tablename__ = "provider_reconciliation"

    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    app_id: str = Field(primary_key=True, max_length=20)
    ours: str = Field(max_length=24)
    billed: str = Field(max_length=24)
    list_price: str | None = Field(default=None, max_length=24)
    legacy: bool = False
    reconciled_at: datetime = _when()


class ProviderMarkRow(SQLModel, table=True):
    """When a provider job last ran or succeeded, and where a long job stopped (`note`)."""

    __tablename__ = "provider_mark"

    name: str = Field(primary_key=True, max_length=80)
    at: datetime = _when()
    note: str = Field(default="", max_length=500)


class PersonRow(SQLModel, table=True):
    """A person planbot talks to: the locale their chat account has (when read) and the
    language they chose (empty: follow the locale)."""

    __tablename__ = "person"

    user_id: str = Field(primary_key=True, max_length=40)
    locale: str = Field(default="", max_length=35)  # "" until read
    locale_read_at: datetime | None = _when(nullable=True)
    language: str = Field(default="", max_length=8)  # "" : follow the locale
    updated_at: datetime = _when()
