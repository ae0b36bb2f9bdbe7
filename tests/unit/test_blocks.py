"""Block Kit builders: within Slack's limits, escaped, and saying what a person needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import blocks
from bot.kit import plain_dates, units
from bot.words import Words
from core import (
    Actor,
    AppPage,
    ApprovalRule,
    AppState,
    BillingMode,
    ChangeRequest,
    CostImpact,
    Field,
    FieldChange,
    Notice,
    NoticeCode,
    Operation,
    Outcome,
    PendingRequest,
    PermissionDenied,
    Plan,
    Preview,
    Request,
    Status,
    load_catalog,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 3, tzinfo=UTC)


def walk_texts(node: Any) -> list[str]:
    """Every text string in a block tree."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                found.append(value)
            else:
                found.extend(walk_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(walk_texts(item))
    return found


def assert_within_limits(message: dict[str, Any]) -> None:
    """Slack's limits: 50 blocks, 3000 a section, 150 a header, 2000 a button value."""
    assert len(message.get("blocks", [])) <= 50
    for block in message.get("blocks", []):
        if block["type"] == "header":
            assert units(block["text"]["text"]) <= 150
        if block["type"] == "section":
            if "text" in block:
                assert units(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                assert units(field["text"]) <= 2000
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert units(element["value"]) <= 2000
                assert units(element["text"]["text"]) <= 75


WORDS = Words(load_catalog(), TZ)
COST = CostImpact(
    year=2026,
    month=11,
    currency="USD",
    before_month_total=Decimal("0.00"),
    after_month_total=Decimal("116.50"),
    monthly_before=Decimal(0),
    monthly_after=Decimal(699),
    billed_from=NOW.date().replace(month=12, day=1),
    billed_to=NOW.date().replace(month=12, day=3),
)
PLAN_CHANGE = FieldChange(field=Field.PLAN, before="developer", after="premium")


def pending(name: str, op: Operation = Operation.UPGRADE, *, peer: bool = False) -> PendingRequest:
    shown = Preview(
        operation=op,
        app_id="1400000001",
        app_name=name,
        plan_before=Plan.DEVELOPER,
        plan_after=Plan.PREMIUM,
        changes=(PLAN_CHANGE,),
        cost=COST,
        notices=(Notice(code=NoticeCode.IRREVERSIBLE_UPGRADE),),
    )
    request = Request(
        id="req123",
        change=ChangeRequest(op, app="1400000001", plan=Plan.PREMIUM),
        requester=Actor("U1", "ada"),
        app_id="1400000001",
        app_name=name,
        app_version=1,
        channel_id="C1",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        approvals_needed=1 if peer else 0,
    )
    return PendingRequest(request, shown, ApprovalRule("peer" if peer else "self"))


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e for b in message["blocks"] for e in b.get("elements", []) if e.get("type") == "button"
    ]


def test_preview_card_has_confirm_and_cancel_carrying_only_the_request_id() -> None:
    card = blocks.preview_card(pending("demo"), WORDS)
    confirm, cancel = buttons(card)
    assert (confirm["action_id"], confirm["value"]) == ("plan_confirm", "req123")
    assert (cancel["action_id"], cancel["value"]) == ("plan_cancel", "req123")
    assert confirm["style"] == "primary" and "confirm" not in confirm
    assert card["response_type"] == "ephemeral"
    text = "\n".join(walk_texts(card))
    assert "+$116.50" in text and "can't be undone" in text


def test_danger_operations_get_a_danger_button_with_a_confirm_dialog() -> None:
    for op in (Operation.DISABLE, Operation.MIGRATE):
        confirm = buttons(blocks.preview_card(pending("demo", op), WORDS))[0]
        assert confirm["style"] == "danger"
        assert confirm["confirm"]["confirm"]["text"] and confirm["confirm"]["deny"]["text"]


def test_a_peer_request_offers_no_confirm_to_the_requester() -> None:
    card = blocks.preview_card(pending("demo", peer=True), WORDS)
    assert [b["action_id"] for b in buttons(card)] == ["plan_cancel"]
    assert "approval" in "\n".join(walk_texts(card))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_any_app_name_stays_escaped_and_within_limits(name: str) -> None:
    card = blocks.preview_card(pending(name), WORDS)
    assert_within_limits(card)
    mrkdwn = [t for b in card["blocks"] if b["type"] != "header" for t in walk_texts(b)] + [
        card["text"]
    ]
    for text in mrkdwn:
        assert "<!" not in plain_dates(text).replace("<!subteam^", "")
        assert "<@" not in text or "<@U" in text


def test_refusal_names_the_admins_who_can_grant() -> None:
    message = blocks.refusal(PermissionDenied("disable this app", "admin", ["UA", "UB"]))
    text = message["blocks"][0]["text"]["text"]
    assert "`admin` role" in text and "<@UA>" in text and "<@UB>" in text


def test_outcome_card_replaces_the_original() -> None:
    outcome = Outcome(
        request_id="r",
        state="applied",
        operation=Operation.UPGRADE,
        app_id="1",
        app_name="<!here>",
        actor=Actor("U1", "ada"),
        changes=(PLAN_CHANGE,),
        cost=COST,
    )
    card = blocks.outcome_card(outcome, WORDS, NOW)
    assert card["replace_original"] is True
    assert "<!here>" not in str(card)


def test_list_of_a_full_page_stays_within_fifty_blocks() -> None:
    apps = tuple(
        AppState(
            app_id=f"14{n:08d}",
            name="x" * 80,
            plan=Plan.STANDARD,
            billing_mode=BillingMode.CURRENT,
            status=Status.ACTIVE,
            created_at=NOW,
        )
        for n in range(40)
    )
    message = blocks.list_message(AppPage(apps, 100_000, 1, 2500), contains=None)
    assert_within_limits(message)
    assert "page 1 of 2500" in "\n".join(walk_texts(message))
    assert "page=2" in "\n".join(walk_texts(message))
