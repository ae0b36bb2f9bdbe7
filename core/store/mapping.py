"""Between rows and domain values: one mapping per row type, used by every implementation.

Rows are plain mappings of column name to value (as SQLAlchemy's column types give them back:
aware UTC datetimes, dicts for JSON); domain values are the frozen dataclasses of `core`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.access import Grant, Role
from core.domain import (
    Actor,
    AppState,
    BillingMode,
    HistoryEntry,
    Operation,
    Plan,
    Status,
    name_key,
)
from core.money import RateSegment
from core.provider.model import FIGURES, DailyUsage, ReconciliationLine
from core.requests import Approval, ChangeRequest, Request, RequestState

__all__ = [
    "app_row",
    "app_state",
    "approval",
    "approval_row",
    "daily_usage",
    "grant",
    "history_entry",
    "history_row",
    "reconciliation_line",
    "reconciliation_row",
    "request",
    "request_decided",
    "request_row",
    "segment",
    "usage_row",
]

Row = Mapping[str, Any]


# --- apps ------------------------------------------------------------------------------------


def app_state(row: Row) -> AppState:
    """The domain value of an app row."""
    return AppState(
        app_id=row["app_id"],
        name=row["name"],
        plan=Plan(row["plan"]),
        billing_mode=BillingMode(row["billing_mode"]),
        status=Status(row["status"]),
        created_at=row["created_at"],
        owner_channel=row["owner_channel"],
        dev_expires_at=row["dev_expires_at"],
        disabled_at=row["disabled_at"],
        config_changed_at=row["config_changed_at"],
        config=dict(row["config"] or {}),
        version=row["version"],
        known_since=row.get("known_since"),
    )


def app_row(state: AppState, now: datetime) -> dict[str, Any]:
    """Every column of an app row holding `state`, written at `now`."""
    return {
        "app_id": state.app_id,
        "name": state.name,
        "name_key": name_key(state.name),
        "owner_channel": state.owner_channel,
        "plan": state.plan.value,
        "billing_mode": state.billing_mode.value,
        "status": state.status.value,
        "created_at": state.created_at,
        "dev_expires_at": state.dev_expires_at,
        "disabled_at": state.disabled_at,
        "config_changed_at": state.config_changed_at,
        "config": dict(state.config),
        "version": state.version,
        "updated_at": now,
        "known_since": state.known_since or now,
    }


# --- plan history ----------------------------------------------------------------------------


def history_row(entry: HistoryEntry) -> dict[str, Any]:
    """The columns of a history row."""
    return {
        "app_id": entry.app_id,
        "effective_at": entry.at,
        "operation": entry.operation,
        "plan": entry.plan.value,
        "billing_mode": entry.billing_mode.value,
        "status": entry.status.value,
        "config": dict(entry.config),
        "monthly_price": str(entry.monthly_price),
        "actor_id": entry.actor.user_id,
        "actor_name": entry.actor.name,
        "request_id": entry.request_id,
    }


def history_entry(row: Row) -> HistoryEntry:
    """The history entry of a row."""
    return HistoryEntry(
        app_id=row["app_id"],
        at=row["effective_at"],
        operation=row["operation"],
        plan=Plan(row["plan"]),
        status=Status(row["status"]),
        billing_mode=BillingMode(row["billing_mode"]),
        config=row["config"] or {},
        monthly_price=Decimal(row["monthly_price"]),
        actor=Actor(row["actor_id"], row["actor_name"] or ""),
        request_id=row["request_id"],
    )


def segment(row: Row) -> RateSegment:
    """The rate segment a history row starts."""
    return RateSegment(
        start=row["effective_at"],
        plan=Plan(row["plan"]),
        status=Status(row["status"]),
        billing_mode=BillingMode(row["billing_mode"]),
        monthly=Decimal(row["monthly_price"]),
        config=tuple(sorted((row["config"] or {}).items())),
    )


# --- requests --------------------------------------------------------------------------------


def request_row(request: Request) -> dict[str, Any]:
    """Every column of a request row."""
    change = request.change
    return {
        "id": request.id,
        "operation": change.operation.value,
        "app_id": request.app_id,
        "params": {
            "app": change.app,
            "plan": change.plan.value if change.plan else None,
            "addons": dict(change.addons),
            "name": change.name,
            "owner_channel": request.channel_id,
            "requester_groups": sorted(request.requester.groups),
            "app_name": request.app_name,
            **({"reply_url": request.reply_url} if request.reply_url else {}),
        },
        "actor_id": request.requester.user_id,
        "actor_name": request.requester.name,
        "channel_id": request.channel_id,
        "app_version": request.app_version,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "approvals_needed": request.approvals_needed,
        **request_decided(request),
    }


def request_decided(request: Request) -> dict[str, Any]:
    """The columns that say how a request ended."""
    by = request.decided_by
    return {
        "state": request.state.value,
        "decided_by": by.user_id if by else None,
        "decided_by_name": by.name if by else None,
        "decided_at": request.decided_at,
        "result": {"app_id": request.result_app_id} if request.result_app_id else {},
    }


def request(row: Row, approvals: Sequence[Row] = ()) -> Request:
    """The request of a row (with its approval rows)."""
    params = row["params"] or {}
    plan = params.get("plan")
    decided_by = row["decided_by"]
    return Request(
        id=row["id"],
        change=ChangeRequest(
            operation=Operation(row["operation"]),
            app=params.get("app") or row["app_id"],
            plan=Plan(plan) if plan else None,
            addons=params.get("addons") or {},
            name=params.get("name"),
        ),
        requester=Actor(
            row["actor_id"],
            row["actor_name"] or "",
            frozenset(params.get("requester_groups") or ()),
        ),
        app_id=row["app_id"],
        app_name=str(params.get("app_name") or params.get("name") or ""),
        app_version=row["app_version"],
        channel_id=params.get("owner_channel", row["channel_id"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        approvals_needed=row["approvals_needed"] or 0,
        state=RequestState(row["state"]),
        decided_by=Actor(decided_by, row["decided_by_name"] or "") if decided_by else None,
        decided_at=row["decided_at"],
        approvals=tuple(approval(a) for a in approvals),
        result_app_id=(row["result"] or {}).get("app_id"),
        reply_url=params.get("reply_url"),
    )


def approval_row(request_id: str, given: Approval) -> dict[str, Any]:
    """The columns of an approval row."""
    return {
        "request_id": request_id,
        "approver_id": given.approver.user_id,
        "approver_name": given.approver.name,
        "decision": given.decision,
        "decided_at": given.at,
    }


def approval(row: Row) -> Approval:
    """The approval of a row."""
    return Approval(
        Actor(row["approver_id"], row["approver_name"] or ""), row["decision"], row["decided_at"]
    )


# --- grants ----------------------------------------------------------------------------------


def grant(row: Row) -> tuple[Grant, str]:
    """A grant and its label."""
    return (
        Grant(
            row["principal_kind"], row["principal_id"], Role.parse(row["role"]), row["team"] or None
        ),
        row["principal_label"] or "",
    )


# --- the provider connector --------------------------------------------------------------------


def usage_row(usage: DailyUsage, fetched_at: datetime) -> dict[str, Any]:
    """Every column of an app's day of usage."""
    return {
        "app_id": usage.app_id,
        "day": usage.day,
        **{name: usage.figure(name) for name in FIGURES},
        "fetched_at": fetched_at,
    }


def daily_usage(row: Row) -> DailyUsage:
    """The day of usage of a row."""
    return DailyUsage(row["app_id"], row["day"], **{name: int(row[name]) for name in FIGURES})


def reconciliation_row(month: str, line: ReconciliationLine, at: datetime) -> dict[str, Any]:
    """Every column of one app's reconciled month."""
    return {
        "month": month,
        "app_id": line.app_id,
        "ours": str(line.ours),
        "billed": str(line.billed),
        "list_price": None if line.list_price is None else str(line.list_price),
        "legacy": line.legacy,
        "reconciled_at": at,
    }


def reconciliation_line(row: Row) -> ReconciliationLine:
    """The reconciliation line of a row (with the app's `name`)."""
    listed = row["list_price"]
    return ReconciliationLine(
        app_id=row["app_id"],
        name=row["name"] or "",
        ours=Decimal(row["ours"]),
        billed=Decimal(row["billed"]),
        list_price=None if listed is None else Decimal(listed),
        legacy=bool(row["legacy"]),
    )
