"""What the core needs to know, read once by the entrypoint and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from core.access import AccessPolicy
from core.money import Catalog

__all__ = ["CoreConfig"]


@dataclass(frozen=True)
class CoreConfig:
    """Everything the core needs to know, read once by the entrypoint."""

    catalog: Catalog
    billing_tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    request_ttl: timedelta = timedelta(minutes=15)
    approval_ttl: timedelta = timedelta(hours=24)
    audit_channel: str | None = None
    access: AccessPolicy = field(default_factory=AccessPolicy)
    #: how long the reply URL of a person's command can still be answered (Slack: 30 minutes)
    reply_ttl: timedelta = timedelta(minutes=30)
    #: True when the provisioning port only records (no webhook): the outbox row written with
    #: the change is then the record itself, and nothing is left to deliver.
    provisioning_recorded_only: bool = False
