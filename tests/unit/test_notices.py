"""Channel messages: the outbox's typed messages rendered for Slack, escaped, within its limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kit import MAX_BLOCKS, MAX_SECTION, escape, units
from bot.notices import ENABLE_ACTION, EXTEND_ACTION, render, statement_message
from bot.words import Words
from core import (
    Actor,
    AppCharges,
    ApprovalCardUpdate,
    BillingMode,
    DeliveryFailed,
    DevExpiryReminder,
    Message,
    Operation,
    Plan,
    PurgeWarning,
    StatementIssued,
    Status,
    TeamStatement,
    dump_message,
    load_catalog,
    load_message,
)
from core.money import RateSegment, statement
from tests.conftest import SHANGHAI

NASTY = "<!channel> & <@U123|boss> `code` *bold*"
WORDS = Words(load_catalog(), SHANGHAI)
EXPIRES = datetime(2028, 1, 30, 16, tzinfo=UTC)


def reminder(*, left: timedelta = timedelta(days=7), **overrides: Any) -> DevExpiryReminder:
    values: dict[str, Any] = {
        "app_id": "1400000001",
        "app_name": "dev-chat",
        "billing_mode": BillingMode.CURRENT,
        "notice_days": 7,
        "expires_at": EXPIRES,
        "at": EXPIRES - left,
    }
    return DevExpiryReminder(**{**values, **overrides})


def warning(*, left: timedelta = timedelta(days=30), **overrides: Any) -> PurgeWarning:
    purge = datetime(2028, 3, 31, tzinfo=UTC)
    values: dict[str, Any] = {
        "app_id": "1400000003",
        "app_name": "off-chat",
        "plan": Plan.PREMIUM,
        "notice_days": 30,
        "disabled_at": datetime(2028, 1, 1, tzinfo=UTC),
        "purge_at": purge,
        "at": purge - left,
    }
    return PurgeWarning(**{**values, **overrides})


def expired_card(**overrides: Any) -> ApprovalCardUpdate:
    values: dict[str, Any] = {
        "update_of": 17,
        "request_id": "abc123",
        "state": "expired",
        "operation": Operation.DISABLE,
        "app_id": "1400000002",
        "app_name": "std-chat",
        "requester": Actor("UADA", "Ada"),
        "at": datetime(2028, 5, 11, 4, 1, tzinfo=UTC),
        "expired_at": datetime(2028, 5, 11, 4, tzinfo=UTC),
    }
    return ApprovalCardUpdate(**{**values, **overrides})


def team_statement(
    apps: int, *, name: str = "chat", upgraded: bool = False, issued: date = date(2028, 3, 1)
) -> StatementIssued:
    """What the sweep would post for `apps` such apps in February 2028."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    if upgraded:  # developer until 20 February, premium from then
        segments = [
            RateSegment(start, Plan.DEVELOPER, Status.ACTIVE, BillingMode.CURRENT, Decimal(0)),
            RateSegment(
                datetime(2028, 2, 20, tzinfo=UTC),
                Plan.PREMIUM,
                Status.ACTIVE,
                BillingMode.CURRENT,
                Decimal(699),
            ),
        ]
    else:
        segments = [
            RateSegment(start, Plan.STANDARD, Status.ACTIVE, BillingMode.CURRENT, Decimal(399))
        ]
    bill = statement(
        segments, year=2028, month=2, tz=SHANGHAI, now=datetime(2028, 3, 1, tzinfo=UTC)
    )
    charges = tuple(
        AppCharges.of(
            app_id=f"14{i:08d}",
            name=f"{name}-{i}",
            plan=Plan.PREMIUM,
            status=Status.ACTIVE,
            statement=bill,
        )
        for i in range(apps)
    )
    team = TeamStatement("CTEAM", 2028, 2, "USD", charges)
    return StatementIssued(
        statement=team,
        total=team.total,
        to_date=team.to_date,
        issued_on=issued,
        billing_tz="Asia/Shanghai",
    )


def texts(message: dict[str, Any]) -> list[str]:
    found = [message["text"]]
    for block in message["blocks"]:
        if block["type"] in ("section", "header"):
            found.append(block["text"]["text"])
        elif block["type"] == "context":
            found.extend(e["text"] for e in block["elements"])
    return found


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def within_limits(message: dict[str, Any]) -> None:
    json.dumps(message)
    assert isinstance(message["text"], str) and message["text"]
    assert 1 <= len(message["blocks"]) <= MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert units(block["text"]["text"]) <= MAX_SECTION
        if block["type"] == "header":
            assert units(block["text"]["text"]) <= 150
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["value"]) <= 2000
                assert len(element["text"]["text"]) <= 75


def delivered(message: Message) -> dict[str, Any]:
    """Rendered as the delivery worker does: from the stored payload."""
    return render(load_message(json.loads(json.dumps(dump_message(message)))), WORDS)


# --- reminders and warnings --------------------------------------------------------------------


def test_reminder_says_when_and_offers_extend() -> None:
    message = delivered(reminder())
    within_limits(message)
    assert "expires in 7 days" in message["text"]
    assert "2028-01-31 00:00 (Asia/Shanghai)" in message["text"]
    [extend] = buttons(message)
    assert (extend["action_id"], extend["value"]) == (EXTEND_ACTION, "1400000001")
    body = "\n".join(texts(message))
    assert "<!date^1832860800^" in body  # shown in the reader's own time zone
    assert "suspended" in body


@pytest.mark.parametrize(
    ("left", "said"),
    [
        (timedelta(hours=50), "in 2 days"),
        (timedelta(hours=30), "in 1 day"),
        (timedelta(hours=12, minutes=5), "in 12 hours"),
        (timedelta(minutes=20), "within the hour"),
    ],
)
def test_reminder_says_what_is_true_now(left: timedelta, said: str) -> None:
    assert f"expires {said}" in delivered(reminder(left=left))["text"]


def test_reminder_for_a_legacy_app_points_to_migration() -> None:
    message = delivered(reminder(billing_mode=BillingMode.LEGACY))
    assert "/plan migrate 1400000001" in "\n".join(texts(message))


def test_purge_warning_offers_enable_and_says_only_admins_can() -> None:
    message = delivered(warning(left=timedelta(days=7, hours=2)))
    within_limits(message)
    assert "purged in 7 days" in message["text"]
    [enable] = buttons(message)
    assert (enable["action_id"], enable["value"]) == (ENABLE_ACTION, "1400000003")
    body = "\n".join(texts(message))
    assert "Only planbot admins can re-enable" in body
    assert "can't be recovered" in body


# --- escaping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "notice",
    [
        reminder(app_name=NASTY),
        warning(app_name=NASTY),
        expired_card(app_name=NASTY, requester=Actor("U0ADA", NASTY)),
    ],
    ids=["reminder", "warning", "approval_expired"],
)
def test_user_text_is_escaped(notice: Message) -> None:
    dumped = json.dumps(delivered(notice))
    assert "<!channel>" not in dumped and "<@U123" not in dumped
    assert escape("<!channel> & <@U123|boss>") in dumped


def test_statement_names_are_escaped_and_cannot_close_the_code_block() -> None:
    message = delivered(team_statement(2, name="```<!channel> & co"))
    tables = [t for t in texts(message) if t.startswith("```")]
    assert tables
    for table in tables:
        assert table.count("```") == 2
        assert "<!channel>" not in table
        assert "&lt;!channel&gt; &amp; co" in table


# --- statements --------------------------------------------------------------------------------


def test_statement_lists_each_app_with_plan_days_and_total() -> None:
    notice = team_statement(2, upgraded=True)
    message = delivered(notice)
    within_limits(message)
    body = "\n".join(texts(message))
    total = WORDS.money(notice.total)
    assert "Statement for February 2028" in body
    assert f"*Total: {total}* for 2 apps" in body
    assert "billed on 2028-03-01 to 2028-03-03" in body
    assert "developer" in body and "premium" in body
    assert "Feb 01–19" in body and "Feb 20–29" in body
    for app in notice.statement.apps:
        assert WORDS.money(app.total) in body
    assert "late" not in message["text"]


def test_a_late_statement_says_so() -> None:
    message = delivered(team_statement(1, issued=date(2028, 3, 5)))
    assert "(late)" in message["text"]
    assert "This statement is late: it was due on 2028-03-01" in "\n".join(texts(message))


def test_a_month_in_progress_says_what_is_projected() -> None:
    bill = statement(
        [
            RateSegment(
                datetime(2027, 1, 1, tzinfo=UTC),
                Plan.STANDARD,
                Status.ACTIVE,
                BillingMode.CURRENT,
                Decimal(399),
            )
        ],
        year=2028,
        month=2,
        tz=SHANGHAI,
        now=datetime(2028, 2, 10, tzinfo=UTC),
    )
    app = AppCharges.of(
        app_id="1", name="x", plan=Plan.STANDARD, status=Status.ACTIVE, statement=bill
    )
    team = TeamStatement("CTEAM", 2028, 2, "USD", (app,))
    notice = StatementIssued(
        statement=team,
        total=team.total,
        to_date=team.to_date,
        issued_on=date(2028, 2, 10),
        billing_tz="Asia/Shanghai",
    )
    assert f"{WORDS.money(team.to_date)} so far" in "\n".join(texts(delivered(notice)))


@pytest.mark.parametrize("apps", [1, 40, 300, 2000])
def test_big_statements_stay_within_slack_limits(apps: int) -> None:
    message = delivered(team_statement(apps, upgraded=True))
    within_limits(message)
    tables = [t for t in texts(message) if t.startswith("```")]
    rows = [row for t in tables for row in t.split("\n")[1:-1]]
    shown = len([row for row in rows if not row.startswith("  ")])  # one title row per app
    more = [t for t in texts(message) if "more app" in t]
    if shown < apps:
        [note] = more
        assert f"{apps - shown} more app" in note
    else:
        assert more == []
    assert shown >= min(apps, 300)


def test_an_app_with_very_many_periods_is_cut_with_a_mark() -> None:
    periods = [
        {"label": f"plan-{i}", "first": "2028-02-01", "last": "2028-02-01", "days": 1}
        for i in range(400)
    ]
    message = statement_message({"apps": [{"app_id": "1", "name": "x", "periods": periods}]})
    within_limits(message)
    assert "  …" in "\n".join(texts(message))


# --- the expired approval card -----------------------------------------------------------------


def test_approval_expired_replaces_the_card_without_buttons() -> None:
    message = delivered(expired_card())
    within_limits(message)
    assert buttons(message) == []
    body = "\n".join(texts(message))
    assert "*Expired:* Disable std-chat (1400000002), requested by <@UADA>" in body
    assert "nothing was changed" in body
    assert "`/plan disable 1400000002`" in body
    assert message["text"].startswith("Expired:")


# --- every kind renders, whatever it holds -----------------------------------------------------

names = st.text(max_size=120)
moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=150, deadline=None)
@given(
    notice=st.one_of(
        st.builds(reminder, app_name=names, at=moments, notice_days=st.sampled_from([7, 1])),
        st.builds(warning, app_name=names, at=moments),
        st.builds(expired_card, app_name=names, at=moments),
        st.builds(team_statement, apps=st.integers(1, 60), name=names),
    )
)
def test_any_notice_renders_within_limits(notice: Message) -> None:
    within_limits(delivered(notice))


@settings(max_examples=60, deadline=None)
@given(
    state=st.sampled_from(["expired", "withdrawn", "applied", "rejected", "refused"]),
    name=names,
    at=moments,
)
def test_any_approval_card_update_renders_within_limits(state: str, name: str, at: Any) -> None:
    notice = expired_card(state=state, app_name=name, at=at, by=Actor("UBOB", name))
    message = delivered(notice)
    within_limits(message)
    assert buttons(message) == []


# --- approval cards through their life, and lost deliveries ------------------------------------


@pytest.mark.parametrize(
    ("state", "by", "said"),
    [
        ("withdrawn", Actor("UADA", "Ada"), "Withdrawn by <@UADA> on <!date^"),
        ("rejected", Actor("UBOB", "Bob"), "Rejected by <@UBOB> on <!date^"),
        ("applied", Actor("UBOB", "Bob"), "with the approval of <@UBOB>, <@UCY>"),
        ("expired", None, "without the approvals it needed (2 of 3 approvals: <@UBOB>, <@UCY>)"),
    ],
)
def test_every_ending_of_an_approval_card_says_by_whom_without_buttons(
    state: str, by: Actor | None, said: str
) -> None:
    notice = expired_card(
        state=state,
        by=by,
        approvals=(Actor("UBOB", "Bob"), Actor("UCY", "Cy")),
        approvals_needed=3,
    )
    message = delivered(notice)
    within_limits(message)
    assert buttons(message) == []
    assert said in "\n".join(texts(message))
    assert "(s)" not in json.dumps(message)


def test_a_statement_footer_shows_the_app_placeholder_escaped() -> None:
    footer = texts(delivered(team_statement(1)))[-1]
    assert "`/plan bill &lt;app&gt; 2028-02`" in footer and "<app>" not in footer


def test_a_statement_names_the_billing_zone_of_its_days() -> None:
    body = "\n".join(texts(delivered(team_statement(1))))
    assert "billed on 2028-03-01 to 2028-03-03 (billing days in Asia/Shanghai)" in body


def test_a_lost_delivery_says_where_why_and_the_fix() -> None:
    notice = DeliveryFailed(
        destination="CGONE", reason="not_in_channel", topic="notice", app_id="1400000001", at=NOW
    )
    message = delivered(notice)
    within_limits(message)
    body = "\n".join(texts(message))
    assert "planbot can't post to <#CGONE>: planbot is not a member of that channel" in body
    assert "expiry reminders, purge warnings and statements (app `1400000001`)" in body
    assert "`/invite @planbot`" in body
    person = delivered(DeliveryFailed(destination="UADA", reason="x", topic="audit", at=NOW))
    assert "<@UADA>" in "\n".join(texts(person))


NOW = datetime(2028, 5, 11, 4, tzinfo=UTC)


def test_the_requester_card_says_where_the_approval_card_is_or_that_it_could_not_be_posted() -> (
    None
):
    from core import ApprovalCardPosted, Preview

    preview = Preview(
        operation=Operation.DISABLE,
        app_id="1400000002",
        app_name="std-chat",
        plan_before=Plan.STANDARD,
        plan_after=Plan.STANDARD,
        changes=(),
        cost=None,
        notices=(),
    )
    posted = ApprovalCardPosted(
        request_id="abc123",
        preview=preview,
        approvals_needed=1,
        role="admin",
        expires_at=NOW,
        channel="CAPPROVALS",
        receipt={"channel": "CAPPROVALS", "ts": "1.2"},
        permalink="https://team.slack.com/archives/CAPPROVALS/p12",
    )
    linked = delivered(posted)
    assert linked["replace_original"] is True
    assert "<https://team.slack.com/archives/CAPPROVALS/p12|open it>" in "\n".join(texts(linked))
    assert [b["action_id"] for b in buttons(linked)] == ["plan_cancel"]
    lost = "\n".join(texts(delivered(replace(posted, receipt=None, permalink=None))))
    assert "could not be posted in <#CAPPROVALS>" in lost and "`/invite @planbot`" in lost
