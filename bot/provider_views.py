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

from bot.kit import Message, context, escape, message, section, text_message
from bot.words import CONNECTOR_OFF, FIGURE_LABELS
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
    return f" ({value * 100 // limit}% of {limit:,} free MAU)" if limit > 0 else ""


def status_fields(
    view: ProviderView | None, status: AppStatus, now: datetime, tz: ZoneInfo
) -> list[tuple[str, str]]:
    """The status card's field with yesterday's figures beside the plan's limit (none when off)."""
    if view is None or not view.enabled:
        return []
    day = _yesterday(now, tz)
    usage = view.on(status.app.app_id, day)
    label = f"Yesterday ({day:%b %d})"
    if usage is None:
        why = "" if view.has_key(status.app.app_id) else ": planbot has no IM key for this app"
        return [(label, f"no figures from the provider{why}")]
    text = (
        f"{usage.active_users:,} active users{_share(usage.active_users, _free_mau(status))} · "
        f"{usage.peak_online:,} peak online · {usage.logins:,} logins · "
        f"{usage.messages:,} messages"
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
            f":electric_plug: No usage figures for {title}: {CONNECTOR_OFF} (see the README)."
        )
    last = _yesterday(now, tz)
    first = last - timedelta(days=days - 1)
    stored = {u.day: u for u in view.days(app.app_id, last=last, count=days)}
    notes = []
    if not view.has_key(app.app_id):
        notes.append(
            "planbot has no IM admin key for this app (PLANBOT_IM_KEYS), so it can't fetch "
            "its figures."
        )
    if not stored:
        text = f"No usage figures stored for {title} from {first} to {last}."
        if view.has_key(app.app_id):
            text += " The sweep fetches them from the provider once a day."
        return text_message(" ".join([text, *notes]))
    limit = _free_mau(status)
    busiest = max(stored.values(), key=lambda u: (u.active_users, u.day))
    lines = [f"*Usage of {title}*, {first:%b %d} to {last:%b %d} ({days} days)"]
    if limit > 0:
        lines.append(
            f"Plan {app.plan}: {limit:,} free monthly active users. Busiest day: "
            f"{busiest.active_users:,} active users on {busiest.day:%b %d}"
            f"{_share(busiest.active_users, limit)}."
        )
    missing = days - len(stored)
    blocks = [
        section("\n".join(lines)),
        section(_table(stored, first, days, last)),
        context(
            f"The provider's daily figures (days in UTC+8), fetched once a day. {len(stored)} "
            f"of {days} days stored" + (f"; `{_MISSING}` is a day not stored." if missing else ".")
        ),
        *(section(note) for note in notes),
    ]
    return message(f"Usage of {escape(app.name)} ({app.app_id}), last {days} days", blocks)


def _table(stored: dict[date, DailyUsage], first: date, days: int, last: date) -> str:
    spark_width = max(days, len("last days"))
    rows = [f"{'':<17}{'trend':<{spark_width}}  {'yesterday':>10}  {'highest':>10}"]
    for figure in FIGURES:
        values = [
            stored[d].figure(figure) if d in stored else None
            for d in (first + timedelta(days=i) for i in range(days))
        ]
        known = [v for v in values if v is not None]
        yesterday = f"{stored[last].figure(figure):,}" if last in stored else "-"
        rows.append(
            f"{FIGURE_LABELS[figure]:<17}{sparkline(values):<{spark_width}}  "
            f"{yesterday:>10}  {max(known):>10,}"
        )
    return "```\n" + "\n".join(rows) + "\n```"
