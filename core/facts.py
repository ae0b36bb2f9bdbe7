"""What the core tells the edge about a change: facts, never sentences.

A preview says which fields change (before -> after, as canonical values), what it costs and
which notices apply; an outcome says what became of a request. The bot words them in the
reader's language; nothing here is meant to be shown as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core import errors
from core.domain import Actor, AppState, Operation, Plan
from core.money import Catalog, CostImpact

__all__ = [
    "Field",
    "FieldChange",
    "Notice",
    "NoticeCode",
    "Outcome",
    "Preview",
    "Refusal",
    "changed_fields",
    "config_text",
    "parse_config_text",
]


class Field(enum.StrEnum):
    """A field of an app a change can alter, in the order they are shown."""

    PLAN = "plan"
    STATUS = "status"
    BILLING_MODE = "billing_mode"
    ADDONS = "addons"
    MONTHLY_PRICE = "monthly_price"
    DEV_EXPIRES_AT = "dev_expires_at"
    PURGE_AT = "purge_at"


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    """One field's value before and after a change, canonical: a plan, status or billing mode
    value; add-ons as `name=value;...` (empty: none); a price as a decimal string; a moment as
    an ISO 8601 string; None where the field does not apply."""

    field: Field
    before: str | None
    after: str | None


class NoticeCode(enum.StrEnum):
    """A notice a preview carries (what the person must know before confirming)."""

    IRREVERSIBLE_UPGRADE = "irreversible_upgrade"
    CONFIG_ONCE_A_MONTH = "config_once_a_month"  # `at`: when the next change is possible
    SERVICE_STOPS = "service_stops"
    REENABLE_UNTIL = "reenable_until"  # `at`: the purge moment
    SERVICE_RESUMES = "service_resumes"
    ONE_WAY_MIGRATION = "one_way_migration"
    REACTIVATES = "reactivates"
    DEVELOPER_VALID_UNTIL = "developer_valid_until"  # `at`: the new app's expiry


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A notice, with the moment it refers to (when it has one)."""

    code: NoticeCode
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Preview:
    """What a change will do: before -> after, its cost, and the notices that apply."""

    operation: Operation
    app_id: str | None  # None for a new app
    app_name: str
    plan_before: Plan | None
    plan_after: Plan
    changes: tuple[FieldChange, ...]
    cost: CostImpact | None
    notices: tuple[Notice, ...]

    @property
    def irreversible(self) -> bool:
        """Whether the change can't be undone (upgrade, migrate)."""
        return self.operation in (Operation.UPGRADE, Operation.MIGRATE)

    @property
    def danger(self) -> bool:
        """Whether confirming needs a second thought (service stops, one-way)."""
        return self.operation in (Operation.DISABLE, Operation.MIGRATE)


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """A refusal as a fact: the `PlanError`'s kind, its parameters, and its plain message."""

    code: str
    params: Mapping[str, Any]
    message: str

    @classmethod
    def of(cls, error: errors.PlanError) -> Refusal:
        """The refusal an error describes."""
        return cls(code=type(error).__name__, params=error.params, message=error.message)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of a request after a click (or, for the requester's card, after others
    decided it or time ran out).

    `state`: applied, cancelled, rejected, approved (recorded, more approvals needed), expired,
    or refused (`refusal` says why: the app changed, or the rule no longer allows it).
    """

    request_id: str
    state: str
    operation: Operation
    app_id: str | None
    app_name: str
    actor: Actor
    changes: tuple[FieldChange, ...] = ()
    cost: CostImpact | None = None
    approvals: tuple[Actor, ...] = ()
    approvals_needed: int = 0
    refusal: Refusal | None = None


# --- building facts --------------------------------------------------------------------------


def config_text(config: Mapping[str, str]) -> str:
    """The canonical text of an add-on configuration: `name=value;...`, sorted."""
    return ";".join(f"{k}={v}" for k, v in sorted(config.items()))


def parse_config_text(text: str | None) -> dict[str, str]:
    """The configuration a `config_text` describes."""
    pairs = (part.partition("=") for part in (text or "").split(";") if part)
    return {name: value for name, _, value in pairs}


def _fields(state: AppState | None, catalog: Catalog) -> dict[Field, str | None]:
    if state is None:
        return {}
    shown = {
        k: v
        for k, v in state.config.items()
        if k in catalog.addons and catalog.addons[k].default != v
    }
    return {
        Field.PLAN: state.plan.value,
        Field.STATUS: state.status.value,
        Field.BILLING_MODE: state.billing_mode.value,
        Field.ADDONS: config_text(shown) if state.plan.paid else None,
        Field.MONTHLY_PRICE: str(catalog.monthly_price(state.plan, state.config)),
        Field.DEV_EXPIRES_AT: _iso(state.dev_expires_at),
        Field.PURGE_AT: _iso(state.purge_at),
    }


def changed_fields(
    before: AppState | None, after: AppState, catalog: Catalog, *, same_day: Any = None
) -> tuple[FieldChange, ...]:
    """The fields a change alters, in display order.

    `same_day(a, b)`: whether two moments fall on the same billing day (dates are shown by the
    day, so a moment moving within a day is no visible change); exact comparison when None.
    """
    old, new = _fields(before, catalog), _fields(after, catalog)
    changes = []
    for field in Field:
        was, now = old.get(field), new.get(field)
        if was == now or (was is None and now == ""):
            continue
        if _same(field, was, now, same_day):
            continue
        changes.append(FieldChange(field=field, before=was, after=now))
    return tuple(changes)


def _same(field: Field, was: str | None, now: str | None, same_day: Any) -> bool:
    """Whether two values read the same (a moment by its day, a price by its amount)."""
    if was is None or now is None:
        return False
    if field in (Field.DEV_EXPIRES_AT, Field.PURGE_AT) and same_day is not None:
        return bool(same_day(datetime.fromisoformat(was), datetime.fromisoformat(now)))
    return field is Field.MONTHLY_PRICE and Decimal(was) == Decimal(now)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
