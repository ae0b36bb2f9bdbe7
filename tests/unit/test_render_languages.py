"""What planbot writes in Korean and in English: every card, channel message and refusal.

Each kind is rendered in Korean and read as a Korean reader would: in Hangul, with the console's
words (개발 버전, 업그레이드, 비활성화, ...), the amounts, ids and commands left as they are. Then,
for every message the outbox can carry and every refusal, in both languages: rendering never
fails and stays within Slack's limits.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import blocks, tables
from bot.i18n import speaking
from bot.kit import MAX_BLOCKS, MAX_BUTTON, MAX_HEADER, MAX_SECTION, escape, units
from bot.notices import _BUILDERS, render
from bot.words import Words, worded_refusal
from core import (
    AccessChanged,
    Actor,
    AppPage,
    ApprovalCardPosted,
    ApprovalCardUpdate,
    ApprovalRequested,
    AppState,
    AppStatus,
    BillingMode,
    CardDecided,
    ChangeApplied,
    DeliveryFailed,
    Field,
    FieldChange,
    Grant,
    HistoryEntry,
    Notice,
    NoticeCode,
    Operation,
    Outcome,
    Plan,
    PlanError,
    Preview,
    Refusal,
    Rendered,
    RequestEvent,
    Status,
    dump_message,
    errors,
    load_catalog,
    load_message,
)
from core.access import Role
from core.domain import app_name
from core.money import RateSegment, bill_month, statement
from core.provider.messages import (
    DriftChanged,
    ReconciliationDifferences,
    ReconciliationLine,
    UsageLevelReached,
)
from tests.conftest import SHANGHAI
from tests.unit.test_blocks import COST, pending
from tests.unit.test_blocks import walk_texts as texts
from tests.unit.test_notices import expired_card, reminder, team_statement, warning

WORDS = Words(load_catalog(), SHANGHAI)
NOW = datetime(2026, 11, 26, 3, tzinfo=UTC)
HANGUL = re.compile(r"[\uac00-\ud7a3]")
CHANGES = (
    FieldChange(field=Field.PLAN, before="developer", after="premium"),
    FieldChange(field=Field.STATUS, before="active", after="disabled"),
    FieldChange(field=Field.BILLING_MODE, before="legacy", after="current"),
    FieldChange(field=Field.ADDONS, before="", after=""),
    FieldChange(field=Field.MONTHLY_PRICE, before="0", after="699"),
    FieldChange(field=Field.DEV_EXPIRES_AT, before=NOW.isoformat(), after=None),
    FieldChange(field=Field.PURGE_AT, before=None, after=(NOW + timedelta(days=90)).isoformat()),
)
ADA, BOB = Actor("UADA", "Ada"), Actor("UBOB", "Bob")
PLANBOT = Actor("planbot", "planbot")


def said(message: dict[str, Any]) -> str:
    return "\n".join(texts(message))


def within_slack_limits(message: dict[str, Any]) -> None:
    """Slack's limits for a message: its text, 50 blocks, sections, headers, buttons, dialogs."""
    json.dumps(message)
    assert isinstance(message["text"], str) and message["text"]
    assert units(message["text"]) <= 40_000
    assert 1 <= len(message["blocks"]) <= MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "header":
            assert units(block["text"]["text"]) <= MAX_HEADER
        if block["type"] == "section":
            if "text" in block:
                assert units(block["text"]["text"]) <= MAX_SECTION
            assert len(block.get("fields", [])) <= 10
            assert all(units(f["text"]) <= 2000 for f in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(units(e["text"]) <= MAX_SECTION for e in block["elements"])
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert units(element["text"]["text"]) <= MAX_BUTTON
                assert units(element["value"]) <= 2000
                dialog = element.get("confirm")
                if dialog:
                    assert units(dialog["title"]["text"]) <= 100
                    assert units(dialog["text"]["text"]) <= 300


def korean(message: dict[str, Any], *words: str) -> str:
    """The message's texts, checked to be Korean and to use `words`."""
    text = said(message)
    assert HANGUL.search(message["text"]), message["text"]
    for word in words:
        assert word in text, (word, text)
    return text


def delivered(notice: Any, language: str) -> dict[str, Any]:
    """Rendered as the delivery worker does (from the stored payload), in `language`."""
    stored = load_message(json.loads(json.dumps(dump_message(notice))))
    with speaking(language):
        return render(stored, WORDS)


# --- every refusal ---------------------------------------------------------------------------


def every_refusal() -> list[PlanError]:
    """At least one of each PlanError, in each shape its message takes."""
    nxt = datetime(2026, 11, 30, 16, tzinfo=UTC)
    return [
        errors.AppNotFound("chat"),
        errors.AppNotFound("chat", ["chat-1", "chat-2"]),
        errors.AmbiguousAppName("chat", ["1400000001", "1400000002"]),
        errors.AppNameTaken("chat", "1400000001"),
        *(refused_name(name) for name in ("  ", "dev-1\u200b", "x" * 81, "1234")),
        errors.AppPurged("1400000001", "chat"),
        errors.AppPurged("1400000001"),
        errors.LegacyBillingMode("1400000001", "upgraded", "chat"),
        errors.LegacyBillingMode("1400000001", "reconfigured"),
        errors.AlreadyCurrentBilling("1400000001", "chat"),
        errors.UpgradeNotAllowed("1400000001", "premium", "chat"),
        errors.UpgradeNotAllowed("1400000001", "developer (disabled)", "chat"),
        errors.InvalidTargetPlan("gold"),
        errors.ConfigChangeNotAllowed(
            "1400000001",
            "it is on the developer plan. Upgrade it first with `/plan upgrade 1400000001 "
            "standard` (or premium).",
            "chat",
        ),
        errors.ConfigChangeNotAllowed(
            "1400000001", "it is disabled. Re-enable it first with `/plan enable 1400000001`."
        ),
        errors.ConfigChangeLimitReached("1400000001", nxt.astimezone(SHANGHAI), nxt, "chat"),
        errors.UnknownAddon("gold", ["history", "members"]),
        errors.InvalidAddonValue("history", "1y", ["7d", "90d"]),
        errors.NothingToChange("1400000001", "that configuration", "chat"),
        *(refused_month(year, month, made) for year, month, made in BAD_MONTHS),
        errors.ExtendNotAllowed("1400000001", "standard", "chat"),
        errors.DisableNotAllowed(
            "1400000001",
            "it is a developer app; a suspended developer app is left to expire.",
            "chat",
        ),
        errors.DisableNotAllowed(
            "1400000001",
            "disabling is for standard and premium apps; a developer app simply expires at the "
            "end of its validity.",
        ),
        errors.DisableNotAllowed("1400000001", "it is already disabled.", "chat"),
        errors.EnableNotAllowed("1400000001", "active", "chat"),
        errors.PurgeDeadlinePassed("1400000001", nxt, "chat"),
        errors.RequestNotFound(),
        errors.RequestExpired(nxt),
        errors.RequestAlreadyDecided("expired", None),
        errors.RequestAlreadyDecided("stale", None),
        errors.RequestAlreadyDecided("refused", None),
        errors.RequestAlreadyDecided("applied", "bob", "UBOB"),
        errors.RequestAlreadyDecided("cancelled", "bob"),
        errors.RequestAlreadyDecided("rejected", None),
        errors.AppChangedSincePreview("1400000001", "chat"),
        errors.PermissionDenied("disable this app", "admin", ["UA", "UB"]),
        errors.PermissionDenied("see this team's bill", "viewer"),
        errors.PermissionDenied("create apps", "operator"),
        errors.NotYourRequest("ada", "UADA"),
        errors.NotYourRequest("ada"),
        errors.AwaitingApproval(1),
        errors.AwaitingApproval(2),
        errors.AlreadyApproved(1),
        errors.AlreadyApproved(3),
        errors.NoApproverAvailable("disable", "admin", 1),
        errors.NoApproverAvailable("disable", "admin", 2, ["UADA"]),
        errors.NoApproverAvailable("migrate", "admin", 3, ["UADA", "UBOB"]),
        errors.SelfApprovalNotAllowed(),
        errors.ChannelNotAllowed(["CALLOWED"]),
        errors.CsvImportError(["row 2: no app id", "row 3: bad plan"]),
        errors.CsvImportError([f"row {n}: bad" for n in range(60)]),
        errors.CsvImportError([f"row {n}: bad" for n in range(50)], total=300),
        errors.DatabaseBusy(2.0, "a preview"),
        errors.GroupsNotYetKnown(["S1"]),
        errors.RequestReplayed(),
    ]


#: impossible months, for an app created (or not known to be) at some time
BAD_MONTHS = [(2026, 13, True), (1969, 1, False), (9999, 12, True), (2030, 1, False)]


def refused_name(name: str) -> PlanError:
    """What the core's one name rule says of `name`."""
    try:
        app_name(name)
    except errors.InvalidAppName as err:
        return err
    raise AssertionError(f"{name!r} was accepted")


def refused_month(year: int, month: int, created: bool) -> PlanError:
    """What the core says of a bill asked for an impossible month."""
    made = datetime(2025, 6, 1, tzinfo=UTC) if created else None
    try:
        bill_month(year, month, now=datetime(2026, 11, 30, tzinfo=UTC), tz=SHANGHAI, created=made)
    except errors.InvalidBillMonth as err:
        return err
    raise AssertionError(f"{year}-{month} was accepted")


REFUSALS = every_refusal()


def test_the_samples_cover_every_refusal() -> None:
    kinds = {type(err).__name__ for err in REFUSALS}
    assert kinds == set(errors.__all__) - {"PlanError"}


@pytest.mark.parametrize("err", REFUSALS, ids=lambda err: type(err).__name__)
def test_each_refusal_worded_from_its_facts_reads_in_english_as_the_core_says_it(
    err: PlanError,
) -> None:
    """The English of each message worded from a refusal's facts is the core's own message: the
    Korean translates exactly what an English reader sees."""
    refusal = Refusal.of(err)
    worded = worded_refusal(refusal)
    if type(err).__name__ in ("ConfigChangeLimitReached", "RequestExpired", "AlreadyApproved"):
        return  # worded with people and moments as tokens, in both languages, by `Words`
    assert worded == escape(err.message)


@pytest.mark.parametrize("err", REFUSALS, ids=lambda err: type(err).__name__)
def test_each_refusal_reads_in_korean_with_ids_and_commands_intact(err: PlanError) -> None:
    with speaking("ko"):
        text = WORDS.refusal(err)
        card = blocks.refusal(err, WORDS)
        bare = blocks.refusal(err)
    assert HANGUL.search(text), text
    for kept in re.findall(r"`[^`]*`", escape(err.message)):
        if kept.startswith("`/plan") or re.fullmatch(r"`[0-9]+`", kept):
            assert kept in text or kept.replace("<", "&lt;").replace(">", "&gt;") in text, kept
    within_slack_limits(card)
    within_slack_limits(bare)


def test_korean_refusals_use_the_console_words() -> None:
    with speaking("ko"):
        legacy = WORDS.refusal(errors.LegacyBillingMode("1400000001", "upgraded", "chat"))
        upgrade = WORDS.refusal(errors.UpgradeNotAllowed("1400000001", "premium", "chat"))
        denied = blocks.refusal(errors.PermissionDenied("disable this app", "admin", ["UA"]))
        limit = WORDS.refusal(
            errors.ConfigChangeLimitReached(
                "1400000002",
                datetime(2026, 11, 3, tzinfo=SHANGHAI),
                datetime(2026, 11, 30, 16, tzinfo=UTC),
                "std-chat",
            )
        )
    assert (
        "기존 과금 모드" in legacy
        and "업그레이드" in legacy
        and "`/plan migrate 1400000001`" in legacy
    )
    assert "프리미엄 버전" in upgrade and "개발 버전" in upgrade
    assert "관리자: <@UA>" in said(denied) and "`admin`" in said(denied)
    assert "2026년 12월 1일(Asia/Shanghai 기준 청구일)" in limit and "<!date^" in limit
    assert "`std-chat` (`1400000002`)" in limit


# --- each kind in Korean -------------------------------------------------------------------------


def test_a_korean_preview_card_speaks_korean_and_keeps_amounts_and_ids() -> None:
    with speaking("ko"):
        card = blocks.preview_card(pending("demo"), WORDS)
    text = korean(card, "업그레이드", "개발 버전", "프리미엄 버전", "확인", "취소", "비용")
    assert "US$116.50" in text and "US$699.00" in text and "`req123`" in text
    assert "2026년 11월" in text and "12월 1일~3일" in text
    assert "{date_short_pretty} {time}|2026년 11월 26일 오전 11:15 (Asia/Shanghai)>" in text
    within_slack_limits(card)


def test_a_korean_waiting_card_names_the_role_and_offers_withdraw() -> None:
    with speaking("ko"):
        card = blocks.preview_card(pending("demo", peer=True), WORDS)
    korean(card, "승인", "운영자", "요청 철회")
    within_slack_limits(card)


def test_korean_danger_dialogs_and_outcomes() -> None:
    with speaking("ko"):
        card = blocks.preview_card(pending("demo", Operation.MIGRATE), WORDS)
        outcome = blocks.outcome_card(
            Outcome(
                request_id="r",
                state="applied",
                operation=Operation.UPGRADE,
                app_id="1400000001",
                app_name="chat",
                actor=ADA,
                changes=CHANGES[:1],
                cost=COST,
                approvals=(BOB,),
            ),
            WORDS,
            NOW,
        )
    dialog = next(e for b in card["blocks"] for e in b.get("elements", []) if "confirm" in e)
    assert dialog["confirm"]["confirm"]["text"] == "예, 진행합니다"
    korean(card, "과금 모드 전환")
    text = korean(outcome, "업그레이드되었습니다", "적용: <@UADA>", "승인: <@UBOB>")
    assert "chat (1400000001)" in text


@pytest.mark.parametrize("state", ["cancelled", "rejected", "approved", "expired", "refused"])
def test_every_korean_outcome_says_nothing_was_changed_or_what_is_left(state: str) -> None:
    outcome = Outcome(
        request_id="r",
        state=state,
        operation=Operation.DISABLE,
        app_id="1400000001",
        app_name="chat",
        actor=BOB,
        approvals=(BOB,),
        approvals_needed=2,
        refusal=Refusal.of(errors.AppChangedSincePreview("1400000001", "chat")),
    )
    with speaking("ko"):
        card = blocks.outcome_card(outcome, WORDS, NOW)
    text = korean(card)
    assert "변경된 내용은 없습니다" in text or "승인 1/2" in text or "적용되지" in text


def test_korean_status_list_history_and_access() -> None:
    app = AppState(
        app_id="1400000002",
        name="표준 채팅",
        plan=Plan.STANDARD,
        billing_mode=BillingMode.LEGACY,
        status=Status.DISABLED,
        created_at=NOW,
        disabled_at=NOW,
    )
    status = AppStatus(
        app=app,
        monthly_price=Decimal(399),
        currency="USD",
        config_text="no add-ons",
        config_change_used=False,
        next_config_change=None,
        purge_at=NOW + timedelta(days=90),
        limits={"monthly_active_users": 10_000, "members_per_group": 2000, "history_days": 30},
    )
    entry = HistoryEntry(
        app_id=app.app_id,
        at=NOW,
        operation="disable",
        plan=Plan.STANDARD,
        status=Status.DISABLED,
        billing_mode=BillingMode.LEGACY,
        monthly_price=Decimal(399),
        actor=ADA,
    )
    with speaking("ko"):
        shown = blocks.status_message(status, WORDS)
        listed = blocks.list_message(AppPage((app,), 85, 1, 3), contains="채팅")
        past = blocks.list_message(AppPage((), 85, 9, 3), contains=None)
        history = blocks.history_message(app, [entry], WORDS)
        access = blocks.access_list_message(
            [(Grant("user", "UBOB", Role.OPERATOR, "CTEAM"), "")], ["UADA"]
        )
    text = korean(
        shown, "스탠다드 버전", "비활성화", "기존 과금 모드", "부가 기능 없음", "US$399.00"
    )
    assert "10,000" in text and "`/plan migrate 1400000002`" in text
    korean(listed, "애플리케이션 85개", "1/3 페이지", "`/plan list 채팅 page=2`")
    korean(past, "`/plan list page=3`")
    korean(history, "비활성화", "월 US$399.00", "<@UADA>")
    korean(access, "관리자", "운영자", "<#CTEAM>")


def test_a_korean_bill_keeps_its_columns_aligned_and_adds_up() -> None:
    segments = [
        RateSegment(
            datetime(2026, 1, 1, tzinfo=UTC),
            Plan.DEVELOPER,
            Status.ACTIVE,
            BillingMode.CURRENT,
            Decimal(0),
        ),
        RateSegment(
            datetime(2026, 10, 20, tzinfo=UTC),
            Plan.PREMIUM,
            Status.ACTIVE,
            BillingMode.LEGACY,
            Decimal(699),
        ),
    ]
    bill = statement(segments, year=2026, month=10, tz=SHANGHAI, now=NOW)
    app = AppState(
        app_id="1400000001",
        name="한국어 채팅",
        plan=Plan.PREMIUM,
        billing_mode=BillingMode.CURRENT,
        status=Status.ACTIVE,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with speaking("ko"):
        message = blocks.bill_message(app, bill, "Asia/Shanghai")
    text = korean(message, "2026년 10월 합계", "청구일", "Asia/Shanghai 기준 청구일")
    rows = [
        line
        for block in message["blocks"]
        if block["type"] == "section"
        for line in block["text"]["text"].split("\n")
        if line and not line.startswith("```") and "\n```" in block["text"]["text"]
    ]
    assert rows and all(tables.width(r) == tables.LINE_WIDTH for r in rows if "+ " not in r)
    assert any("개발 버전" in r for r in rows) and any("기존 과금" in r for r in rows)
    assert any("10/21~31" in r and "11일" in r for r in rows)
    assert "US$" in text


def test_korean_channel_messages() -> None:
    applied = ChangeApplied(
        operation=Operation.UPGRADE,
        app_id="1400000001",
        app_name="chat",
        actor=ADA,
        requester=BOB,
        approvals=(BOB,),
        changes=CHANGES[:2],
        cost=COST,
        at=NOW,
        audit_seq=7,
        request_id="req1",
    )
    suspended = ChangeApplied(
        operation=Operation.SUSPEND,
        app_id="1400000001",
        app_name="chat",
        actor=PLANBOT,
        since=NOW,
        at=NOW,
    )
    korean(
        delivered(applied, "ko"), "<@UADA> 님이", "업그레이드했습니다", "감사 #7", "요청자: <@UBOB>"
    )
    korean(delivered(suspended, "ko"), "일시 중단되었습니다", "`/plan extend 1400000001`")
    korean(
        delivered(reminder(), "ko"),
        "7일 후 만료",
        "유효 기간 연장",
        "`/plan upgrade 1400000001 standard`",
    )
    korean(delivered(reminder(left=timedelta(hours=5)), "ko"), "5시간 후 만료")
    korean(delivered(warning(), "ko"), "30일 후", "영구 삭제", "재활성화")
    korean(delivered(expired_card(), "ko"), "만료됨", "<@UADA>", "`/plan disable 1400000002`")
    statement_text = korean(delivered(team_statement(2), "ko"), "2028년 2월 월별 명세서", "합계")
    assert "US$798.00" in statement_text
    korean(
        delivered(
            AccessChanged(
                granted=True,
                actor=ADA,
                principal_kind="user",
                principal_id="UBOB",
                label="bob",
                role="operator",
                team=None,
                at=NOW,
            ),
            "ko",
        ),
        "부여했습니다",
        "운영자",
        "모든 애플리케이션",
    )
    korean(
        delivered(
            DeliveryFailed(destination="CLOST", reason="not_in_channel", topic="notice", at=NOW),
            "ko",
        ),
        "<#CLOST>",
        "`not_in_channel`",
        "`/invite @planbot`",
    )


# --- every outbox message and refusal, in both languages, within Slack's limits ----------------

names = st.text(max_size=120)
moments = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)
actors = st.builds(Actor, st.sampled_from(["UADA", "UBOB", "planbot", "W0CY"]), names)
app_ids = st.one_of(st.sampled_from(["1400000001", "14000000012345678901"]), st.none())
plans = st.sampled_from(list(Plan))
operations = st.sampled_from(list(Operation))
changes = st.lists(st.sampled_from(CHANGES), max_size=7, unique=True).map(tuple)
costs = st.one_of(st.none(), st.just(COST))
refusals = st.one_of(st.none(), st.sampled_from(REFUSALS).map(Refusal.of))
previews = st.builds(
    Preview,
    operation=operations,
    app_id=app_ids,
    app_name=names,
    plan_before=st.one_of(st.none(), plans),
    plan_after=plans,
    changes=changes,
    cost=costs,
    notices=st.lists(
        st.builds(Notice, code=st.sampled_from(list(NoticeCode)), at=st.one_of(st.none(), moments)),
        max_size=3,
    ).map(tuple),
)
approvals = st.lists(actors, max_size=12).map(tuple)

outbox = st.one_of(
    st.builds(
        ChangeApplied,
        operation=operations,
        app_id=st.just("1400000001"),
        app_name=names,
        actor=actors,
        requester=st.one_of(st.none(), actors),
        approvals=approvals,
        changes=changes,
        cost=costs,
        since=st.one_of(st.none(), moments),
        at=moments,
        audit_seq=st.one_of(st.none(), st.integers(0, 10**9)),
        request_id=st.one_of(st.none(), names),
    ),
    st.builds(
        RequestEvent,
        event=st.sampled_from(["refused", "rejected", "approved", "expired", "withdrawn"]),
        audience=st.sampled_from(["channel", "requester"]),
        operation=operations,
        app_id=app_ids,
        app_name=names,
        actor=actors,
        requester=st.one_of(st.none(), actors),
        refusal=refusals,
        approvals=approvals,
        approvals_needed=st.integers(0, 12),
        at=moments,
    ),
    st.builds(
        AccessChanged,
        granted=st.booleans(),
        actor=actors,
        principal_kind=st.sampled_from(["user", "group", "other"]),
        principal_id=st.sampled_from(["UBOB", "S0GROUP"]),
        label=names,
        role=st.sampled_from(["admin", "operator", "viewer", "nobody"]),
        team=st.one_of(st.none(), st.just("CTEAM")),
        at=moments,
    ),
    st.builds(
        ApprovalRequested,
        request_id=st.sampled_from(["req1", "r" * 64]),
        preview=previews,
        requester=actors,
        approvals_needed=st.integers(1, 12),
        role=st.sampled_from(["admin", "operator"]),
        expires_at=moments,
        approver_group=st.one_of(st.none(), st.just("S0GROUP")),
        approvals=approvals,
    ),
    st.builds(
        ApprovalCardUpdate,
        update_of=st.integers(1, 100),
        request_id=st.just("req1"),
        state=st.sampled_from(["expired", "withdrawn", "applied", "rejected", "refused"]),
        operation=operations,
        app_id=app_ids,
        app_name=names,
        requester=actors,
        by=st.one_of(st.none(), actors),
        at=moments,
        expired_at=st.one_of(st.none(), moments),
        approvals=approvals,
        approvals_needed=st.integers(0, 12),
        changes=changes,
        cost=costs,
        refusal=refusals,
    ),
    st.builds(
        ApprovalCardPosted,
        request_id=st.just("req1"),
        preview=previews,
        approvals_needed=st.integers(1, 12),
        role=st.sampled_from(["admin", "operator"]),
        expires_at=moments,
        channel=st.just("CAPPROVALS"),
        approver_group=st.one_of(st.none(), st.just("S0GROUP")),
        receipt=st.one_of(st.none(), st.just({"channel": "CAPPROVALS", "ts": "1.2"})),
        permalink=st.one_of(st.none(), st.just("https://example.slack.com/archives/C/p1")),
    ),
    st.builds(
        DeliveryFailed,
        destination=st.sampled_from(["CLOST", "UADA"]),
        reason=st.sampled_from(["not_in_channel", "channel_not_found", "is_archived", "other"]),
        topic=st.sampled_from(["notice", "approval", "audit", "other"]),
        app_id=st.one_of(st.none(), st.just("1400000001")),
        at=moments,
    ),
    st.builds(
        reminder,
        app_name=names,
        at=moments,
        billing_mode=st.sampled_from(list(BillingMode)),
    ),
    st.builds(warning, app_name=names, at=moments),
    st.builds(
        team_statement,
        apps=st.integers(1, 60),
        name=names,
        upgraded=st.booleans(),
        issued=st.sampled_from([date(2028, 3, 1), date(2028, 3, 4)]),
    ),
    st.builds(
        CardDecided,
        outcome=st.builds(
            Outcome,
            request_id=st.just("req1"),
            state=st.sampled_from(
                ["applied", "cancelled", "rejected", "approved", "expired", "refused", "odd"]
            ),
            operation=operations,
            app_id=app_ids,
            app_name=names,
            actor=actors,
            changes=changes,
            cost=costs,
            approvals=approvals,
            approvals_needed=st.integers(0, 12),
            refusal=refusals,
        ),
        at=moments,
    ),
    st.builds(Rendered, message=st.just({"text": "done", "blocks": [{"type": "divider"}]})),
    st.builds(
        DriftChanged,
        unknown=st.lists(st.just("1400000999"), max_size=3).map(tuple),
        missing=st.lists(st.just("1400000998"), max_size=3).map(tuple),
        resolved=st.lists(st.just("1400000103"), max_size=2).map(tuple),
        account_count=st.integers(0, 10_000),
        at=moments,
    ),
    st.builds(
        UsageLevelReached,
        app_id=st.just("1400000101"),
        app_name=names,
        plan=plans,
        month=st.just("2026-11"),
        figure=st.sampled_from(["active_users", "logins", "groups"]),
        level=st.sampled_from([80, 100]),
        value=st.integers(0, 10**7),
        limit=st.integers(1, 10**6),
        day=st.just(date(2026, 11, 9)),
    ),
    st.builds(
        ReconciliationDifferences,
        month=st.just("2026-10"),
        currency=st.just("USD"),
        lines=st.lists(
            st.builds(
                ReconciliationLine,
                st.just("1400000102"),
                names,
                st.decimals(0, 10_000, places=2),
                st.decimals(0, 10_000, places=2),
            ),
            max_size=5,
        ).map(tuple),
        apps_compared=st.integers(0, 1000),
    ),
)


def test_the_property_covers_every_kind_the_worker_renders() -> None:
    covered = {
        ChangeApplied,
        RequestEvent,
        AccessChanged,
        ApprovalRequested,
        ApprovalCardUpdate,
        ApprovalCardPosted,
        DeliveryFailed,
        type(reminder()),
        type(warning()),
        type(team_statement(1)),
        CardDecided,
        Rendered,
        DriftChanged,
        UsageLevelReached,
        ReconciliationDifferences,
    }
    assert covered == set(_BUILDERS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notice=outbox, language=st.sampled_from(["en", "ko"]))
def test_any_outbox_message_renders_within_slack_limits_in_either_language(
    notice: Any, language: str
) -> None:
    within_slack_limits(delivered(notice, language))


@settings(max_examples=150, deadline=None)
@given(
    err=st.sampled_from(REFUSALS),
    language=st.sampled_from(["en", "ko"]),
    name=names,
)
def test_any_refusal_renders_within_slack_limits_in_either_language(
    err: PlanError, language: str, name: str
) -> None:
    with speaking(language):
        for message in (blocks.refusal(err, WORDS), blocks.refusal(err)):
            within_slack_limits(message)
        outcome = Outcome(
            request_id="r",
            state="refused",
            operation=Operation.UPGRADE,
            app_id="1400000001",
            app_name=name,
            actor=ADA,
            refusal=Refusal.of(err),
        )
        within_slack_limits(blocks.outcome_card(outcome, WORDS, NOW))


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**9), max_value=10**9, places=4),
    currency=st.sampled_from(["USD", "EUR", "JPY", "KRW"]),
    language=st.sampled_from(["en", "ko"]),
)
def test_amounts_read_as_babel_writes_them(amount: Decimal, currency: str, language: str) -> None:
    """Amounts are formatted once per language and currency, and read exactly as Babel's."""
    from bot.i18n import money
    from bot.words import money_text

    with speaking(language):
        assert money_text(amount, currency) == money(amount, currency)
