"""Statements: an app's month as runs of days, and an owner team's statement of its apps.

`/plan bill` shows one app's month; the lifecycle posts each team its statement on the 1st. Both
are built from `core.money.statement`, so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.domain import Plan, Status
from core.money import Statement

__all__ = ["AppCharges", "PlanDays", "TeamStatement", "plan_days"]


@dataclass(frozen=True)
class PlanDays:
    """A run of consecutive days of one app's statement billed the same way (one line)."""

    label: str
    first: date
    last: date
    days: int
    daily_rate: Decimal
    amount: Decimal
    #: the add-ons billed with the plan, as the catalog describes them (none when at default)
    addons: tuple[str, ...] = ()
    #: whether these days are still to come (a projection)
    projected: bool = False


@dataclass(frozen=True)
class AppCharges:
    """One app's lines in a team statement."""

    app_id: str
    name: str
    plan: Plan
    status: Status
    periods: tuple[PlanDays, ...]
    #: the app's bill for the month (the same as `PlanService.statement` gives)
    total: Decimal
    #: the charges up to and including today
    to_date: Decimal
    #: whether some days are a projection (the month is not over)
    projected: bool = False

    @classmethod
    def of(
        cls, *, app_id: str, name: str, plan: Plan, status: Status, statement: Statement
    ) -> AppCharges:
        """The lines of one app's statement."""
        return cls(
            app_id=app_id,
            name=name,
            plan=plan,
            status=status,
            periods=plan_days(statement),
            total=statement.total,
            to_date=statement.to_date,
            projected=statement.projected,
        )


@dataclass(frozen=True)
class TeamStatement:
    """An owner team's statement for a month: its paid apps and the total."""

    team: str | None
    year: int
    month: int
    currency: str
    apps: tuple[AppCharges, ...]

    @property
    def total(self) -> Decimal:
        """The sum of the apps' bills."""
        return sum((a.total for a in self.apps), Decimal("0.00"))

    @property
    def to_date(self) -> Decimal:
        """The charges up to and including today."""
        return sum((a.to_date for a in self.apps), Decimal("0.00"))

    @property
    def projected(self) -> bool:
        """Whether the month is not over (some days are a projection)."""
        return any(a.projected for a in self.apps)


# --- statements (shared by the posted statement and `/plan bill`) ------------------------------


def plan_days(statement: Statement) -> tuple[PlanDays, ...]:
    """The statement's lines: runs of consecutive days billed the same way, whose amounts add
    up to the month's total exactly (the same runs `/plan bill` shows)."""
    return tuple(
        PlanDays(
            label=run.label,
            first=run.first,
            last=run.last,
            days=run.days,
            daily_rate=run.rate,
            amount=run.amount,
            addons=run.addons,
            projected=run.projected,
        )
        for run in statement.runs
    )
