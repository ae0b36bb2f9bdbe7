"""The connector's outbox messages: one frozen dataclass per kind, facts only.

`to_payload()` gives the outbox payload (a JSON-ready dict with a "type"); the bot words it
when it is delivered (`bot.provider_notices`).

- `DriftChanged` (audit channel): the account's SDKAppIDs and planbot's apps drifted apart, or
  came back together.
- `UsageLevelReached` (owner channel): a figure reached 80% or 100% of the plan's limit.
- `ReconciliationDifferences` (audit channel): a month's bill differs from planbot's charges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from core.provider.model import ReconciliationLine

__all__ = ["DriftChanged", "ReconciliationDifferences", "UsageLevelReached"]


@dataclass(frozen=True)
class DriftChanged:
    """The inventory drift changed since the last sync."""

    unknown: tuple[str, ...]
    missing: tuple[str, ...]
    new_unknown: tuple[str, ...]
    new_missing: tuple[str, ...]
    resolved: tuple[str, ...]
    account_count: int
    at: datetime

    type: ClassVar[str] = "provider_drift"

    def to_payload(self) -> dict[str, Any]:
        """The outbox payload."""
        return {
            "type": self.type,
            "unknown": list(self.unknown),
            "missing": list(self.missing),
            "new_unknown": list(self.new_unknown),
            "new_missing": list(self.new_missing),
            "resolved": list(self.resolved),
            "account_count": self.account_count,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class UsageLevelReached:
    """An app's figure reached `level`% of its plan's limit in `month`."""

    app_id: str
    app_name: str
    plan: str
    paid: bool
    month: str
    figure: str
    level: int
    value: int
    limit: int
    day: date

    type: ClassVar[str] = "provider_usage_level"

    @property
    def over(self) -> int:
        """How far the figure is above the limit (0 when not above)."""
        return max(0, self.value - self.limit)

    def to_payload(self) -> dict[str, Any]:
        """The outbox payload."""
        return {
            "type": self.type,
            "app_id": self.app_id,
            "app_name": self.app_name,
            "plan": self.plan,
            "paid": self.paid,
            "month": self.month,
            "figure": self.figure,
            "level": self.level,
            "value": self.value,
            "limit": self.limit,
            "over": self.over,
            "day": self.day.isoformat(),
        }


@dataclass(frozen=True)
class ReconciliationDifferences:
    """The apps whose bill for `month` differs from planbot's charge by more than a cent."""

    month: str
    currency: str
    lines: tuple[ReconciliationLine, ...]
    apps_compared: int

    type: ClassVar[str] = "provider_reconciliation"

    def to_payload(self) -> dict[str, Any]:
        """The outbox payload (amounts as decimal strings)."""
        return {
            "type": self.type,
            "month": self.month,
            "currency": self.currency,
            "apps_compared": self.apps_compared,
            "lines": [
                {
                    "app_id": line.app_id,
                    "name": line.name,
                    "ours": str(line.ours),
                    "billed": str(line.billed),
                    "difference": str(line.difference),
                    "list_price": None if line.list_price is None else str(line.list_price),
                }
                for line in self.lines
            ],
        }
