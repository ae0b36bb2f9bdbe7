"""The connector's outbox messages: one frozen dataclass per kind, facts only.

They are part of `core.messages.Message` (a `kind` tells them apart), so the outbox stores them
with `core.messages.dump` and the bot words them when it delivers them (`bot.provider_notices`).

- `DriftChanged` (audit channel): the account's SDKAppIDs and planbot's apps drifted apart, or
  came back together.
- `UsageLevelReached` (owner channel): a figure reached 80% or 100% of the plan's limit.
- `ReconciliationDifferences` (audit channel): a month's bill differs from planbot's charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from core.domain import Plan
from core.provider.model import ReconciliationLine

__all__ = ["DriftChanged", "ProviderMessage", "ReconciliationDifferences", "UsageLevelReached"]


@dataclass(frozen=True, kw_only=True)
class DriftChanged:
    """The inventory drift changed since the last sync."""

    kind: Literal["provider_drift"] = "provider_drift"
    unknown: tuple[str, ...]
    missing: tuple[str, ...]
    new_unknown: tuple[str, ...] = ()
    new_missing: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    account_count: int
    at: datetime


@dataclass(frozen=True, kw_only=True)
class UsageLevelReached:
    """An app's figure reached `level`% of its plan's limit in `month` (YYYY-MM)."""

    kind: Literal["provider_usage_level"] = "provider_usage_level"
    app_id: str
    app_name: str
    plan: Plan
    month: str
    figure: str
    level: int
    value: int
    limit: int
    day: date

    @property
    def paid(self) -> bool:
        """Whether the plan is a paid one (its extra active users are billed, not refused)."""
        return self.plan.paid

    @property
    def over(self) -> int:
        """How far the figure is above the limit (0 when not above)."""
        return max(0, self.value - self.limit)


@dataclass(frozen=True, kw_only=True)
class ReconciliationDifferences:
    """The apps whose bill for `month` differs from planbot's charge by more than a cent."""

    kind: Literal["provider_reconciliation"] = "provider_reconciliation"
    month: str
    currency: str
    lines: tuple[ReconciliationLine, ...]
    apps_compared: int


#: the connector's messages, as `core.messages.Message` includes them
ProviderMessage = DriftChanged | UsageLevelReached | ReconciliationDifferences
