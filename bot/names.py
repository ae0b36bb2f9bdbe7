"""The names of plans, statuses, billing modes and roles on the home tab, the modals, the shell
and the command line, in the current language.

In English a name is the value itself (`developer`, `suspended`), as these surfaces always wrote
it; in another language it is the provider console's word for it (`개발 버전`, `일시 중단`). The
tables are the cards' own (`bot.words`): one name per value everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot import words
from bot.i18n import ENGLISH, N_, _, language, number
from bot.words import FIGURE_LABELS, ROLES

__all__ = [
    "billing_name",
    "figure_name",
    "plan_name",
    "role_name",
    "status_name",
    "sweep_line",
]

#: roles, and the word for holding none (the home tab and the shell say whose view it is)
_ROLES: Mapping[str, str] = {
    **ROLES,
    # Translators: a person's role in planbot: none
    "nobody": N_("nobody"),
}


def plan_name(plan: object) -> str:
    """A plan's name (`premium`, `프리미엄 버전`)."""
    return words.plan_name(str(plan))


def status_name(status: object) -> str:
    """A service status (`suspended`, `일시 중단`)."""
    return words.status_name(status)


def billing_name(mode: object) -> str:
    """A billing mode (`legacy`, `기존 과금 모드`)."""
    return words.billing_mode_name(mode)


def role_name(role: object) -> str:
    """A role's name (`operator`, `운영자`); pass the role's label."""
    known = _ROLES.get(str(role))
    return _(known) if known is not None else str(role)


def figure_name(figure: str) -> str:
    """One of the provider's daily figures (`active users`, `활성 사용자`)."""
    label = FIGURE_LABELS.get(figure)
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
