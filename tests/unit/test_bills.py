"""Bills as people read them: `/plan bill` (Block Kit and the shell) and the posted statements.

One line per run of days charged alike (dates, days, plan and add-ons, amount), lines that add
up to the total, a month before the app or still to come said in words, and tables that stay in
line whatever the app names are made of.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot import blocks, tables
from bot.notices import render
from bot.shell.render import render_message
from bot.words import Words
from core import (
    AppCharges,
    AppState,
    BillingMode,
    Catalog,
    Plan,
    StatementIssued,
    Status,
    TeamStatement,
)
from core.money import RateSegment, Statement, statement
from tests.conftest import SHANGHAI

RETENTION = (("history_retention", "90d"),)


def local(y: int, m: int, d: int, h: int = 0) -> datetime:
    return datetime(y, m, d, h, tzinfo=SHANGHAI)


def seg(
    start: datetime,
    plan: Plan,
    monthly: int,
    status: Status = Status.ACTIVE,
    config: tuple[tuple[str, str], ...] = (),
) -> RateSegment:
    return RateSegment(start, plan, status, BillingMode.CURRENT, Decimal(monthly), config)


def app(name: str = "demo-chat", created: datetime | None = None) -> AppState:
    return AppState(
        app_id="1400000001",
        name=name,
        plan=Plan.PREMIUM,
        billing_mode=BillingMode.CURRENT,
        status=Status.ACTIVE,
        created_at=created or local(2026, 1, 5),
    )


def bill(
    catalog: Catalog,
    history: list[RateSegment],
    year: int,
    month: int,
    now: datetime,
    created: datetime | None = None,
) -> Statement:
    return statement(
        history,
        year=year,
        month=month,
        tz=SHANGHAI,
        now=now,
        catalog=catalog,
        created=created or local(2026, 1, 5),
    )


def texts(message: dict[str, Any]) -> str:
    found: list[str] = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found.extend(e["text"] for e in block.get("elements", []))
    return "\n".join(found)


def table_rows(message: dict[str, Any]) -> list[str]:
    """The rows of the code blocks, as Slack shows them (entities decoded)."""
    rows: list[str] = []
    for block in message["blocks"]:
        text = block.get("text", {}).get("text", "")
        if text.startswith("```"):
            body = text[3:-3].strip("\n")
            rows += [
                r.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
                for r in body.split("\n")
            ]
    return rows


def within_limits(message: dict[str, Any]) -> None:
    assert 1 <= len(message["blocks"]) <= 50
    for block in message["blocks"]:
        if block["type"] in ("section", "header"):
            assert len(block["text"]["text"]) <= (150 if block["type"] == "header" else 3000)


# --- /plan bill ----------------------------------------------------------------------------------


def test_a_full_month_is_one_line_at_exactly_the_monthly_price(catalog: Catalog) -> None:
    statement_ = bill(
        catalog, [seg(local(2026, 1, 5), Plan.PREMIUM, 699)], 2027, 3, local(2027, 4, 2)
    )
    message = blocks.bill_message(app(), statement_)
    rows = table_rows(message)
    assert rows == [
        f"{'Mar 01–31':<9}  31 days  {'premium':<24}  {'$699.00':>16}",
    ]
    assert "*Total for 2027-03: $699.00*" in texts(message)  # not 31 x 22.55 = $699.05
    within_limits(message)


def test_runs_of_days_show_their_plan_and_add_ons_and_add_up_to_the_total(
    catalog: Catalog,
) -> None:
    history = [
        seg(local(2026, 1, 5), Plan.STANDARD, 399),
        seg(local(2026, 10, 15, 12), Plan.PREMIUM, 699 + 99, config=RETENTION),
    ]
    message = blocks.bill_message(app(), bill(catalog, history, 2026, 10, local(2026, 10, 20, 9)))
    rows = table_rows(message)
    assert [r.split()[:3] for r in rows if not r.startswith(" ")] == [
        ["Oct", "01–14", "14"],
        ["Oct", "15–20", "6"],
        ["Oct", "21–31", "11"],
    ]
    assert rows[0].endswith("$180.20")
    assert rows[1].endswith("$154.45") and "premium" in rows[1]
    assert rows[2].strip() == "+ Message history retention: 90d"
    assert rows[3].endswith("$283.16  projected")
    assert rows[4].strip() == "+ Message history retention: 90d"
    body = texts(message)
    assert "*Total for 2026-10: $617.81*" in body  # 180.20 + 154.45 + 283.16
    assert "charged to date, today included: $334.65" in body
    within_limits(message)


def test_a_month_before_the_app_existed_says_when_it_was_created(catalog: Catalog) -> None:
    created = local(2026, 11, 21, 15)
    statement_ = bill(catalog, [], 2026, 10, local(2026, 12, 2), created=created)
    message = blocks.bill_message(app(created=created), statement_)
    body = texts(message)
    assert "was created on 2026-11-21, after 2026-10: there is nothing to bill" in body
    assert "Total" not in body and table_rows(message) == []


def test_the_month_an_app_was_created_is_billed_from_that_day(catalog: Catalog) -> None:
    created = local(2026, 11, 21, 15)
    history = [seg(created, Plan.STANDARD, 399)]
    message = blocks.bill_message(
        app(created=created), bill(catalog, history, 2026, 11, local(2026, 12, 2), created)
    )
    assert table_rows(message)[0].startswith("Nov 21–30  10 days  standard")
    assert "Created on 2026-11-21: billed from that day." in texts(message)


def test_a_month_still_to_come_says_it_has_not_started(catalog: Catalog) -> None:
    history = [seg(local(2026, 1, 5), Plan.PREMIUM, 699)]
    message = blocks.bill_message(app(), bill(catalog, history, 2027, 1, local(2026, 11, 5)))
    body = texts(message)
    assert "2027-01 has not started yet: nothing is charged for it so far" in body
    assert "If nothing changes, it will cost $699.00" in body
    assert table_rows(message) == []


def test_a_month_of_daily_changes_stays_within_slack_limits(catalog: Catalog) -> None:
    config = (("history_retention", "365d"), ("group_members", "6000"))
    history = [
        seg(local(2026, 12, d), plan, price, config=config if plan is Plan.PREMIUM else ())
        for d in range(1, 32)
        for plan, price in [(Plan.PREMIUM if d % 2 else Plan.STANDARD, 699 if d % 2 else 399)]
    ]
    message = blocks.bill_message(
        app("x" * 200), bill(catalog, history, 2026, 12, local(2026, 12, 9))
    )
    within_limits(message)
    rows = table_rows(message)
    assert len([r for r in rows if not r.startswith(" ")]) >= 30  # every run is shown
    assert "*Total for 2026-12:" in texts(message)


# --- the shell draws the same table ----------------------------------------------------------------


def test_the_shell_draws_the_bill_with_its_columns_in_line(catalog: Catalog) -> None:
    history = [
        seg(local(2026, 1, 5), Plan.STANDARD, 399),
        seg(local(2026, 10, 15, 12), Plan.PREMIUM, 699 + 99, config=RETENTION),
    ]
    message = blocks.bill_message(
        app("한국어 채팅"), bill(catalog, history, 2026, 10, local(2026, 11, 2))
    )
    drawn = render_message(message, color=False).text.splitlines()
    assert drawn[0] == "Bill for 한국어 채팅 (1400000001), 2026-10"
    amounts = [line for line in drawn if line.rstrip().endswith(("$180.20", "$437.61"))]
    assert len(amounts) == 2
    assert len({tables.width(line) for line in amounts}) == 1  # right edges in one column


# --- posted statements ---------------------------------------------------------------------------


def team_notice(catalog: Catalog, names: list[str]) -> StatementIssued:
    history = [
        seg(local(2026, 1, 5), Plan.STANDARD, 399),
        seg(local(2026, 10, 15, 12), Plan.PREMIUM, 699 + 99, config=RETENTION),
    ]
    statement_ = bill(catalog, history, 2026, 10, local(2026, 11, 1, 1))
    charges = tuple(
        AppCharges.of(
            app_id=f"14{i:08d}",
            name=name,
            plan=Plan.PREMIUM,
            status=Status.ACTIVE,
            statement=statement_,
        )
        for i, name in enumerate(names)
    )
    team = TeamStatement("CTEAM", 2026, 10, "USD", charges)
    return StatementIssued(
        statement=team,
        total=team.total,
        to_date=team.to_date,
        issued_on=datetime(2026, 11, 1, 1, tzinfo=UTC).astimezone(SHANGHAI).date(),
        billing_tz="Asia/Shanghai",
    )


def posted(catalog: Catalog, notice: StatementIssued) -> dict[str, Any]:
    return render(notice, Words(catalog, SHANGHAI))


def test_a_posted_statement_has_one_line_per_run_with_its_add_ons(catalog: Catalog) -> None:
    notice = team_notice(catalog, ["demo-chat"])
    assert [p.addons for p in notice.statement.apps[0].periods] == [
        (),
        ("Message history retention: 90d",),
    ]
    message = posted(catalog, notice)
    rows = table_rows(message)
    assert rows[0].startswith("demo-chat · 1400000000") and rows[0].endswith("$617.81")
    assert rows[1].startswith("  Oct 01–14  14 days  standard") and rows[1].endswith("$180.20")
    assert rows[2].startswith("  Oct 15–31  17 days  premium") and rows[2].endswith("$437.61")
    assert rows[3].strip() == "+ Message history retention: 90d"
    assert len(rows) == 4


@pytest.mark.parametrize(
    "names",
    [
        ["한국어 채팅", "demo-chat"],
        ["中文聊天应用", "日本語チャット", "mixed 한글 and ascii"],
        ["e\u0301te\u0301 (combining accents)", "plain"],
        ["아주 긴 이름" * 10, "short"],
    ],
)
def test_wide_names_keep_the_statement_columns_in_line(catalog: Catalog, names: list[str]) -> None:
    message = posted(catalog, team_notice(catalog, names))
    rows = table_rows(message)
    titles = [r for r in rows if not r.startswith(" ")]
    assert len(titles) == len(names)
    lines = [r for r in rows if r.rstrip().endswith(("$617.81", "$180.20", "$437.61"))]
    assert len(lines) == 3 * len(names)
    assert {tables.width(r) for r in lines} == {tables.LINE_WIDTH + 2}


def test_the_shell_draws_a_statement_of_wide_names_in_line(catalog: Catalog) -> None:
    message = posted(catalog, team_notice(catalog, ["한국어 채팅", "中文聊天", "demo-chat"]))
    drawn = render_message(message, color=False, width=100).text.splitlines()
    titles = [line for line in drawn if line.rstrip().endswith("$617.81")]
    assert [t.split(" · ")[0].strip() for t in titles] == ["한국어 채팅", "中文聊天", "demo-chat"]
    assert len({tables.width(line) for line in titles}) == 1


# --- the table helpers -------------------------------------------------------------------------------


def test_widths_count_wide_characters_twice_and_marks_not_at_all() -> None:
    assert tables.width("abc") == 3
    assert tables.width("한국어") == 6
    assert tables.width("e\u0301") == 1
    assert tables.pad("한국", 6) == "한국  "
    assert tables.pad("$1.00", 8, right=True) == "   $1.00"
    assert tables.fit("한국어 채팅", 6) == "한국…"
    assert tables.width(tables.fit("한국어 채팅", 6)) <= 6
