"""The home tab, the modals, the shell's drawing and the command line's lines in Korean: worded
in Korean, within Slack's limits, and aligned in a terminal.

What the renderers word (an operation's title on the home tab, a preview's changes and cost) is
theirs: the checks on English words below take those parts out, and check everything else.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import home, modals, provider_cli
from bot.doctor import run_doctor
from bot.i18n import speaking
from bot.kit import units
from bot.names import sweep_line
from bot.shell.render import _width, confirm_prompt, render_message
from bot.shell.views import draw_view
from core import (
    AppLine,
    AppState,
    ComingUp,
    HomeBoard,
    Operation,
    PendingRequest,
    Plan,
    ReconcileReport,
    ReconciliationLine,
    Status,
    SweepReport,
)
from tests.unit.test_blocks import pending
from tests.unit.test_home_view import CATALOG, NOW, WORDS, app, board, texts

HANGUL = re.compile("[\uac00-\ud7a3]")
#: words of the English sentences these surfaces say, none of which may be left in Korean
ENGLISH_WORDS = (
    "the",
    "and",
    "your",
    "you",
    "apps",
    "app",
    "expires",
    "charged",
    "month",
    "page",
    "approve",
    "reject",
    "withdraw",
    "extend",
    "enable",
    "team",
    "teams",
    "waits",
    "nothing",
    "developer",
    "standard",
    "premium",
    "active",
    "legacy",
    "billing",
    "next",
    "previous",
    "coming",
    "needs",
    "operation",
    "preview",
    "cancel",
    "confirm",
    "choose",
    "edition",
    "close",
    "validity",
    "until",
    "purged",
    "approval",
    "approvals",
    "request",
    "sure",
    "warnings",
)
_NOT_WORDS = re.compile(
    r"<[^<>]*>"  # mentions, channels, date tokens
    r"|`[^`]*`"  # ids and commands
    r"|US\$[0-9,.]+"  # amounts
    r"|\b14[0-9]{8}\b"  # app ids
    r"|\bapp-[0-9]+\b"  # the test apps' names
    r"|\breq[0-9]{4}x+\b"  # request ids
)


@pytest.fixture(autouse=True)
def korean() -> Iterator[None]:
    with speaking("ko"):
        yield


def english_left(text: str, *theirs: str) -> list[str]:
    """The English words left in `text` once names, ids, amounts and the renderers' parts
    (`theirs`) are taken out."""
    for part in sorted(theirs, key=len, reverse=True):
        text = text.replace(part, "")
    text = _NOT_WORDS.sub(" ", text)
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    return sorted(words & set(ENGLISH_WORDS))


def slack_limits(view: dict[str, Any]) -> None:
    """Slack's limits, counted as Slack counts them (UTF-16 code units)."""
    assert 1 <= len(view["blocks"]) <= 100
    for block in view["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert units(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert units(block["text"]["text"]) <= 150
        elements = [*block.get("elements", []), block.get("accessory") or {}]
        if block["type"] == "input":
            elements.append(block["element"])
            assert units(block["label"]["text"]) <= 2000
        for element in elements:
            if element.get("type") == "button":
                assert units(element["text"]["text"]) <= 75
            if "placeholder" in element:
                assert units(element["placeholder"]["text"]) <= 150
            for option in element.get("options", []):
                assert units(option["text"]["text"]) <= 75
                if "description" in option:
                    assert units(option["description"]["text"]) <= 75
    if view["type"] == "modal":
        assert units(view["title"]["text"]) <= 24
        assert units(view["close"]["text"]) <= 24
        if "submit" in view:
            assert units(view["submit"]["text"]) <= 24


def titles(view: dict[str, Any]) -> list[str]:
    """The operation titles the renderers word on a home tab (their part, not this one's)."""
    found = []
    for block in view["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        match = re.match(r":[a-z_]+: \*(?:내 요청: )?(.*?)\*\n", text)
        if match:
            found.append(match.group(1))
    return found


# --- the home tab ----------------------------------------------------------------------------


def test_the_korean_home_tab_is_korean_within_slacks_limits() -> None:
    view = home.home_view(board(20, 8, coming=8), WORDS)
    slack_limits(view)
    text = "\n".join(texts(view))
    assert HANGUL.search(text)
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["planbot", "처리할 항목", "향후 30일 내 예정", "내 애플리케이션"]
    buttons = {
        e["text"]["text"]
        for b in view["blocks"]
        for e in [*b.get("elements", []), b.get("accessory") or {}]
        if e.get("type") == "button"
    }
    assert {"새 플랜 작업", "승인", "거절", "요청 철회", "유효 기간 연장", "이전 페이지"} <= buttons
    assert "US$12.34 청구" in text and "이번 달 US$699.00" in text
    assert "3페이지 중 2페이지 · 애플리케이션 52개" in text
    assert "*app-0* (`1400000000`): 개발 버전, 활성" in text
    # days are date tokens (each reader's own day) with the billing day in Korean as fallback
    assert re.search(r"<!date\^[0-9]+\^\{date_long\}\|2026\. 11\. 26\.>", text)
    assert english_left(text, *titles(view)) == []


def test_a_korean_home_tab_warns_of_a_purge_with_the_glossarys_words() -> None:
    seen = board(1, 0, coming=0)
    standard = app(0, plan=Plan.STANDARD)
    disabled = AppState(
        **{**standard.__dict__, "status": Status.DISABLED, "disabled_at": NOW - timedelta(days=85)}
    )
    gone = HomeBoard(
        **{
            **seen.__dict__,
            "apps": (AppLine(disabled, Decimal(0), Decimal(0)),),
            "coming_up": (ComingUp(disabled, NOW + timedelta(days=5), Operation.ENABLE, True),),
        }
    )
    view = home.home_view(gone, WORDS)
    slack_limits(view)
    text = "\n".join(texts(view))
    assert "비활성화된 애플리케이션 *app-0*(`1400000000`)은(는) <!date^" in text
    assert "스탠다드 버전, 비활성화" in text and "이후 영구 삭제됩니다" in text
    assert "재활성화" in text  # the button
    assert english_left(text) == []


@settings(max_examples=30, deadline=None)
@given(
    apps=st.integers(0, 20),
    requests=st.integers(0, 8),
    coming=st.integers(0, 8),
    name=st.text(min_size=1, max_size=80),
)
def test_any_korean_home_tab_fits_in_a_home_view(
    apps: int, requests: int, coming: int, name: str
) -> None:
    with speaking("ko"):
        slack_limits(home.home_view(board(apps, requests, name, coming), WORDS))


def test_someone_who_sees_nothing_is_told_in_korean_how_to_get_a_role() -> None:
    seen = board(0, 0, coming=0)
    nothing = HomeBoard(**{**seen.__dict__, "sees_apps": False, "teams": ()})
    text = "\n".join(texts(home.home_view(nothing, WORDS)))
    assert "관리자가 역할을 부여할 수 있습니다: `/plan help`" in text
    assert english_left(text) == []


# --- the modals ------------------------------------------------------------------------------


def test_the_empty_korean_form_is_korean_within_slacks_limits() -> None:
    form = modals.form_view(catalog=CATALOG, words=WORDS, channel="CTEAM")
    slack_limits(form)
    assert (form["title"]["text"], form["submit"]["text"], form["close"]["text"]) == (
        "플랜 작업",
        "미리 보기",
        "취소",
    )
    assert english_left("\n".join(texts(form))) == []


@pytest.mark.parametrize("operation", [Operation.UPGRADE, Operation.CONFIGURE, None])
def test_the_korean_form_names_operations_and_editions_with_the_glossary(
    operation: Operation | None,
) -> None:
    dev = app(1)
    every = (
        Operation.UPGRADE,
        Operation.CONFIGURE,
        Operation.EXTEND,
        Operation.DISABLE,
        Operation.ENABLE,
        Operation.MIGRATE,
    )
    form = modals.form_view(
        catalog=CATALOG,
        words=WORDS,
        channel="CTEAM",
        app=dev,
        operations=every,
        operation=operation,
    )
    slack_limits(form)
    blocks = {b.get("block_id"): b for b in form["blocks"]}
    offered = [o["text"]["text"] for o in blocks[modals.OPERATION_BLOCK]["element"]["options"]]
    assert offered == [
        "유료 플랜으로 업그레이드",
        "버전 또는 부가 기능 구성 수정",
        "개발 버전 유효 기간 1개월 연장",
        "비활성화(서비스가 즉시 중단됩니다)",
        "재활성화",
        "현재 과금 모드로 과금 모드 전환",
    ]
    summary = "\n".join(texts(form))
    assert "개발 버전, 활성. 개발 버전 유효 기간: 2026. 12. 16.까지." in summary
    if operation is not None:
        editions = [o["text"]["text"] for o in blocks[modals.EDITION_BLOCK]["element"]["options"]]
        assert editions == ["스탠다드 버전: 월 US$399.00", "프리미엄 버전: 월 US$699.00"]
    if operation is Operation.CONFIGURE:
        # the shipped catalog's add-ons are named in Korean; their values are the catalog's own
        assert "메시지 이력 보관 기간" in summary and "그룹당 멤버 수" in summary
    values = [str(value) for addon in CATALOG.addons.values() for value in addon.options]
    assert english_left(summary, *values) == []


def test_an_operators_own_addon_label_is_shown_as_written_in_korean() -> None:
    shipped = CATALOG.addons["history_retention"]
    own = replace(shipped, label="Chat archive", description="Kept by our archive team.")
    catalog = replace(CATALOG, addons={**CATALOG.addons, "history_retention": own})
    form = modals.form_view(
        catalog=catalog,
        words=WORDS,
        channel="CTEAM",
        app=app(2),
        operations=(Operation.CONFIGURE,),
        operation=Operation.CONFIGURE,
    )
    summary = "\n".join(texts(form))
    assert "Chat archive" in summary and "Kept by our archive team." in summary
    assert "그룹당 멤버 수" in summary  # the other add-on is still the shipped one


def korean_pending(*, peer: bool, danger: bool) -> PendingRequest:
    return pending("chat", Operation.DISABLE if danger else Operation.UPGRADE, peer=peer)


def test_the_korean_confirmation_modal_asks_in_korean() -> None:
    view = modals.confirm_view(korean_pending(peer=False, danger=True), WORDS, channel="C1")
    slack_limits(view)
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == (
        "변경 확인",
        "확인",
        "취소",
    )
    ack = next(b for b in view["blocks"] if b.get("block_id") == modals.ACK_BLOCK)
    assert ack["label"]["text"] == "계속하시겠습니까?"
    assert ack["element"]["options"][0]["text"]["text"] == (
        "위의 경고를 읽었으며 계속 진행하겠습니다."
    )
    footer = view["blocks"][-1]["elements"][0]["text"]
    assert footer.startswith("만료: <!date^") and footer.endswith("· 요청 `req123`")


def test_a_korean_request_sent_for_approval_says_who_must_approve() -> None:
    view = modals.confirm_view(korean_pending(peer=True, danger=False), WORDS, channel="C1")
    slack_limits(view)
    assert view["title"]["text"] == "승인 요청됨" and "submit" not in view
    text = "\n".join(texts(view))
    approvers = korean_pending(peer=True, danger=False).approval.approvers
    assert f"필요한 역할을 가진 다른 사람 {approvers}명의 승인이 필요합니다" in text
    assert "홈 탭에서 요청을 철회할 수 있습니다" in text


def test_korean_picker_options_name_the_plan_and_status_within_slacks_limits() -> None:
    options = modals.app_options([app(1, "채팅" * 40), app(2, plan=Plan.STANDARD)])
    assert all(units(o["text"]["text"]) <= 75 for o in options)
    assert [o["description"]["text"] for o in options] == ["개발 버전, 활성", "스탠다드 버전, 활성"]


# --- the shell's drawing ---------------------------------------------------------------------


def test_wide_hangul_keeps_the_columns_of_fields_aligned() -> None:
    fields = [
        {"type": "mrkdwn", "text": "*플랜*\n개발 버전"},
        {"type": "mrkdwn", "text": "*상태*\n활성"},
        {"type": "mrkdwn", "text": "*월 비용*\nUS$0.00"},
        {"type": "mrkdwn", "text": "*과금 모드*\n현재 과금 모드"},
    ]
    drawn = render_message(
        {"blocks": [{"type": "section", "fields": fields}]},
        color=False,
        width=60,
    ).text.splitlines()
    # the right column starts at the same terminal column on every row
    right = ("상태", "활성", "과금 모드", "현재 과금 모드")
    assert [line.endswith(cell) for line, cell in zip(drawn, right, strict=True)] == [True] * 4
    starts = {_width(line) - _width(cell) for line, cell in zip(drawn, right, strict=True)}
    assert starts == {(60 - 3) // 2 + 3}, drawn
    header = render_message(
        {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "내 애플리케이션"}}]},
        color=False,
    ).text.splitlines()
    assert _width(header[1]) == _width(header[0]) == 15  # the rule as wide as the Hangul


def test_korean_text_wraps_within_the_terminal_width() -> None:
    long = "이 변경에는 필요한 역할을 가진 다른 사람 2명의 승인이 필요합니다. " * 5
    lines = render_message({"text": long}, color=False, width=40).text.splitlines()
    assert len(lines) > 3 and all(_width(line) <= 40 for line in lines)


def test_a_korean_modal_is_drawn_with_korean_hints_and_ends() -> None:
    form = modals.form_view(catalog=CATALOG, words=WORDS, channel="CTEAM")
    drawing = draw_view(form, {}, color=False, width=80, start=1)
    assert "┌─ 플랜 작업 ─" in drawing.text
    assert (
        "[1] 애플리케이션: 앱 이름 또는 ID를 입력하십시오   (이름 또는 ID 일부 입력)"
        in drawing.text
    )
    assert "[2] 미리 보기  [3] 취소" in drawing.text


def test_a_question_without_its_own_words_asks_in_korean() -> None:
    from bot.shell.render import Button

    button = Button(1, "승인", "a", None, "danger", {"text": {"type": "mrkdwn", "text": "?"}}, None)
    prompt = confirm_prompt(button)
    assert prompt is not None
    assert prompt.splitlines()[0] == "계속하시겠습니까?"
    assert prompt.endswith("예(y) 또는 취소(n)? [y/N] ")


# --- the command line ------------------------------------------------------------------------


def test_a_sweep_reads_in_korean_and_exactly_as_before_in_english() -> None:
    report = SweepReport(now=NOW, suspended=2, reminders=1, failed=("purge",))
    assert "일시 중단 2건" in sweep_line(report) and "실패: purge" in sweep_line(report)
    with speaking("en"):
        assert sweep_line(report) == report.summary()


def test_doctor_speaks_planbot_language_and_keeps_its_verdicts() -> None:
    out = io.StringIO()
    with speaking("en"):  # the environment chooses, whatever the caller speaks
        code = run_doctor({"PLANBOT_LANGUAGE": "ko"}, out=out)
    lines = out.getvalue().splitlines()
    assert code == 1
    assert lines[0].startswith("FAIL  설정: ") and "; 조치: SLACK_BOT_TOKEN과" in lines[0]
    assert lines[1] == "skip  데이터베이스: 설정이 필요합니다"
    assert lines[-1] == "점검 8개 중 1개 실패, 7개 건너뜀"


def test_the_reconciliation_table_keeps_its_columns_with_korean_headings() -> None:
    line = ReconciliationLine(
        app_id="1400000001",
        name="채팅",
        ours=Decimal("699.00"),
        billed=Decimal("700.00"),
        legacy=False,
    )
    report = ReconcileReport(month="2026-10", currency="USD", lines=(line,), posted=True)
    printed = io.StringIO()
    with redirect_stdout(printed):
        provider_cli._print_reconcile(report, type("S", (), {"audit_channel": "C1"})())  # type: ignore[arg-type]
    rows = printed.getvalue().splitlines()
    assert rows[0] == "2026-10 대사(USD): 애플리케이션 1개"
    assert _width(rows[1]) == 32 + 14 * 3
    assert rows[1].endswith("차액") and rows[2].split()[-2] == "+US$1.00"
    assert _width(rows[2].split("  불일치")[0]) == 32 + 14 * 3
