"""The names of plans, statuses, billing modes and roles on the home tab, the modals, the shell
and the command line, in the current language.

In English a name is the value itself (`developer`, `suspended`), as these surfaces always wrote
it; in another language it is the provider console's word for it (`개발 버전`, `일시 중단`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.i18n import ENGLISH, N_, _, language, number

__all__ = [
    "billing_name",
    "figure_name",
    "plan_name",
    "role_name",
    "status_name",
    "sweep_line",
]

_PLANS: Mapping[str, str] = {
    # Translators: the developer edition of an app (the provider console's 개발 버전)
    "developer": N_("developer"),
    # Translators: the standard edition of an app (스탠다드 버전)
    "standard": N_("standard"),
    # Translators: the premium edition of an app (프리미엄 버전)
    "premium": N_("premium"),
}
_STATUSES: Mapping[str, str] = {
    # Translators: an app's service status
    "active": N_("active"),
    # Translators: an app's service status (일시 중단)
    "suspended": N_("suspended"),
    # Translators: an app's service status (비활성화)
    "disabled": N_("disabled"),
    # Translators: an app's service status (영구 삭제)
    "purged": N_("purged"),
}
_BILLING: Mapping[str, str] = {
    # Translators: the provider's billing mode of an app (기존 과금 모드)
    "legacy": N_("legacy billing mode"),
    # Translators: the provider's billing mode of an app (현재 과금 모드)
    "current": N_("current billing mode"),
}
_ROLES: Mapping[str, str] = {
    # Translators: a person's role in planbot
    "nobody": N_("nobody"),
    # Translators: a person's role in planbot (조회자)
    "viewer": N_("viewer"),
    # Translators: a person's role in planbot (운영자)
    "operator": N_("operator"),
    # Translators: a person's role in planbot (관리자)
    "admin": N_("admin"),
}
#: the provider's daily figures, as the usage table and warnings name them
_FIGURES: Mapping[str, str] = {
    "active_users": N_("active users"),
    "logins": N_("logins"),
    "peak_online": N_("peak online"),
    "registered_users": N_("registered users"),
    "groups": N_("groups"),
    "messages": N_("messages sent"),
}


def _name(table: Mapping[str, str], value: object) -> str:
    key = str(value)
    if language() == ENGLISH or key not in table:
        return key
    return _(table[key])


def plan_name(plan: object) -> str:
    """A plan's name (`premium`, `프리미엄 버전`)."""
    return _name(_PLANS, plan)


def status_name(status: object) -> str:
    """A service status (`suspended`, `일시 중단`)."""
    return _name(_STATUSES, status)


def billing_name(mode: object) -> str:
    """A billing mode (`legacy billing mode`, `기존 과금 모드`); in English the value itself."""
    return _name(_BILLING, mode)


def role_name(role: object) -> str:
    """A role's name (`operator`, `운영자`); pass the role's label."""
    return _name(_ROLES, role)


def figure_name(figure: str) -> str:
    """One of the provider's daily figures (`active users`, `활성 사용자`)."""
    label = _FIGURES.get(figure)
    return _(label) if label else figure.replace("_", " ")


def sweep_line(report: Any) -> str:
    """One lifecycle sweep as one line (`core.SweepReport.summary`, in the current language)."""
    if language() == ENGLISH:
        return str(report.summary())
    line = _(
        "sweep at {at}: {suspended} suspended, {purged} purged, {reminders} expiry reminders, "
        "{purge_warnings} purge warnings, {statements} statements, {requests_expired} requests "
        "expired, {cards} approval cards updated"
    ).format(
        at=report.now.isoformat(),
        suspended=number(report.suspended),
        purged=number(report.purged),
        reminders=number(report.reminders),
        purge_warnings=number(report.purge_warnings),
        statements=number(report.statements),
        requests_expired=number(report.requests_expired),
        cards=number(report.approval_cards_expired),
    )
    line += "".join(f"; {note}" for note in report.notes)
    if report.failed:
        line += "; " + _("FAILED: {jobs}").format(jobs=", ".join(report.failed))
    return line
