"""What people see of the provider's figures: `/plan usage` and the status card's usage field.

Pure builders over what the core read (`ProviderView`, `AppStatus`): message dicts out, built
from `bot.kit`'s primitives and worded with `bot.words`, as `bot.blocks` is. The figures are the
provider's daily statistics, one row per app and day (the provider's day, UTC+8), fetched once a
day by the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton

from bot.i18n import ENGLISH, _, language, number
from bot.kit import Message, context, escape, message, section, text_message
from bot.names import figure_name, plan_name
from bot.tables import pad
from core import FIGURES, AppStatus, DailyUsage, ProviderView

__all__ = ["SPARKS", "sparkline", "status_fields", "usage_message"]

SPARKS = "▁▂▃▄▅▆▇█"
_MISSING = "·"


def sparkline(values: Sequence[int | None]) -> str:
    """One character per value, scaled from zero to the largest; `·` for a day not stored."""
    top = max((v for v in values if v is not None), default=0)
    chars = []
    for value in values:
        if value is None:
            chars.append(_MISSING)
        elif top <= 0:
            chars.append(SPARKS[0])
        else:
            chars.append(SPARKS[min(len(SPARKS) - 1, value * (len(SPARKS) - 1) // top)])
    return "".join(chars)


def _yesterday(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date() - timedelta(days=1)


def _free_mau(status: AppStatus) -> int:
    return int(status.limits.get("monthly_active_users", 0))


def _share(value: int, limit: int) -> str:
    if limit <= 0:
        return ""
    return " " + _("({percent}% of {limit} free MAU)").format(
        percent=value * 100 // limit, limit=number(limit)
    )


def _short(day: date) -> str:
    """'Nov 05' (in Korean '11월 5일')."""
    if language() == ENGLISH:
        return f"{day:%b %d}"
    return format_skeleton("MMMd", day, locale=language())


def _connector_off() -> str:
    return _(
        "the provider connector is off: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
    )


def status_fields(
    view: ProviderView | None, status: AppStatus, now: datetime, tz: ZoneInfo
) -> list[tuple[str, str]]:
    """The status card's field with yesterday's figures beside the plan's limit (none when off)."""
    if view is None or not view.enabled:
        return []
    day = _yesterday(now, tz)
    usage = view.on(status.app.app_id, day)
    label = _("Yesterday ({day})").format(day=_short(day))
    if usage is None:
        if view.has_key(status.app.app_id):
            return [(label, _("no figures from the provider"))]
        return [(label, _("no figures from the provider: planbot has no IM key for this app"))]
    text = _(
        "{active} active users{share} · {peak} peak online · {logins} logins · {messages} messages"
    ).format(
        active=number(usage.active_users),
        share=_share(usage.active_users, _free_mau(status)),
        peak=number(usage.peak_online),
        logins=number(usage.logins),
        messages=number(usage.messages),
    )
    return [(label, text)]


def usage_message(
    status: AppStatus, view: ProviderView | None, days: int, now: datetime, tz: ZoneInfo
) -> Message:
    """`/plan usage`: a sparkline per figure over the last `days` days, yesterday's value and
    the highest, with the plan's free monthly active users beside the active users."""
    app = status.app
    title = f"{escape(app.name)} (`{app.app_id}`)"
    if view is None or not view.enabled:
        return text_message(
            ":electric_plug: "
            + _("No usage figures for {app}: {why} (see the README).").format(
                app=title, why=_connector_off()
            )
        )
    last = _yesterday(now, tz)
    first = last - timedelta(days=days - 1)
    stored = {u.day: u for u in view.days(app.app_id, last=last, count=days)}
    notes = []
    if not view.has_key(app.app_id):
        notes.append(
            _(
                "planbot has no IM admin key for this app (PLANBOT_IM_KEYS), so it can't fetch "
                "its figures."
            )
        )
    if not stored:
        text = _("No usage figures stored for {app} from {first} to {last}.").format(
            app=title, first=first, last=last
        )
        if view.has_key(app.app_id):
            text += " " + _("The sweep fetches them from the provider once a day.")
        return text_message(" ".join([text, *notes]))
    limit = _free_mau(status)
    busiest = max(stored.values(), key=lambda u: (u.active_users, u.day))
    head = _("Usage of {app}").format(app=title)
    lines = [
        _("*{head}*, {first} to {last} ({days} days)").format(
            head=head, first=_short(first), last=_short(last), days=number(days)
        )
    ]
    if limit > 0:
        lines.append(
            _(
                "Plan {plan}: {limit} free monthly active users. Busiest day: "
                "{active} active users on {day}{share}."
            ).format(
                plan=plan_name(app.plan),
                limit=number(limit),
                active=number(busiest.active_users),
                day=_short(busiest.day),
                share=_share(busiest.active_users, limit),
            )
        )
    missing = days - len(stored)
    counts = {"stored": number(len(stored)), "days": number(days), "missing": _MISSING}
    if missing:
        stored_line = _(
            "The provider's daily figures (days in UTC+8), fetched once a day. {stored} of "
            "{days} days stored; `{missing}` is a day not stored."
        )
    else:
        stored_line = _(
            "The provider's daily figures (days in UTC+8), fetched once a day. {stored} of "
            "{days} days stored."
        )
    blocks = [
        section("\n".join(lines)),
        section(_table(stored, first, days, last)),
        context(stored_line.format(**counts)),
        *(section(note) for note in notes),
    ]
    text = _("Usage of {app} ({app_id}), last {days} days").format(
        app=escape(app.name), app_id=app.app_id, days=number(days)
    )
    return message(text, blocks)


def _table(stored: dict[date, DailyUsage], first: date, days: int, last: date) -> str:
    spark_width = max(days, len("last days"))
    rows = [
        pad("", 17)
        + pad(_("trend"), spark_width)
        + "  "
        + pad(_("yesterday"), 10, right=True)
        + "  "
        + pad(_("highest"), 10, right=True)
    ]
    for figure in FIGURES:
        values = [
            stored[d].figure(figure) if d in stored else None
            for d in (first + timedelta(days=i) for i in range(days))
        ]
        known = [v for v in values if v is not None]
        yesterday = f"{stored[last].figure(figure):,}" if last in stored else "-"
        rows.append(
            f"{pad(figure_name(figure), 17)}{sparkline(values):<{spark_width}}  "
            f"{yesterday:>10}  {max(known):>10,}"
        )
    return "```\n" + "\n".join(rows) + "\n```"
