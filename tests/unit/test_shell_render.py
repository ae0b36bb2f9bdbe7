"""Block Kit drawn as terminal text: block kinds, buttons, confirm dialogs, mrkdwn, robustness."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.shell import render as textblocks
from bot.shell.render import Button, Rendered, confirm_prompt, render_message, render_mrkdwn

ANSI = re.compile(r"\x1b\[[0-9;]*m")
RED, GREEN, BOLD = "\x1b[31m", "\x1b[32m", "\x1b[1m"


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(label: str, action_id: str, value: str = "req-1", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": plain(label), "action_id": action_id, "value": value, **extra}


DISABLE_CONFIRM = {
    "title": plain("Disable demo-chat?"),
    "text": mrkdwn("Service stops *at once*. The app is purged after 90 days."),
    "confirm": plain("Disable"),
    "deny": plain("Keep it"),
    "style": "danger",
}

CARD = {
    "response_type": "ephemeral",
    "text": "Disable demo-chat?",
    "blocks": [
        {"type": "header", "text": plain("Disable demo-chat")},
        {
            "type": "section",
            "text": mrkdwn("*demo-chat* (1400123456) owned by <#C0123ABC|team-chat>"),
            "fields": [mrkdwn("*Before*\nactive"), mrkdwn("*After*\ndisabled")],
        },
        {"type": "divider"},
        {"type": "context", "elements": [mrkdwn(":warning: Service stops at once.")]},
        {
            "type": "actions",
            "block_id": "pending:req-1",
            "elements": [
                button("Confirm", "plan_confirm", style="danger", confirm=DISABLE_CONFIRM),
                button("Cancel", "plan_cancel"),
            ],
        },
    ],
}


def draw(message: dict[str, Any], *, color: bool = False, width: int = 80, start: int = 1) -> str:
    return render_message(message, color=color, width=width, start=start).text


def blocks(*items: dict[str, Any]) -> dict[str, Any]:
    return {"text": "fallback", "blocks": list(items)}


# --------------------------------------------------------------------------------------------------
# Blocks


def test_header_is_bold_and_underlined() -> None:
    text = draw(blocks({"type": "header", "text": plain("Upgrade demo-chat")}), color=True)
    assert text.splitlines()[0] == f"{BOLD}Upgrade demo-chat\x1b[22m"
    assert text.splitlines()[1] == "═" * len("Upgrade demo-chat")
    assert draw(blocks({"type": "header", "text": plain("Hi")})).splitlines() == ["Hi", "══"]


def test_section_text_and_fields_in_two_columns() -> None:
    text = draw(CARD, width=60)
    lines = text.splitlines()
    assert "demo-chat (1400123456) owned by #team-chat" in lines
    before = next(line for line in lines if line.startswith("Before"))
    assert before.rstrip().endswith("After")
    assert any(line.startswith("active") and line.rstrip().endswith("disabled") for line in lines)


def test_section_fields_stack_when_narrow() -> None:
    section = {"type": "section", "fields": [mrkdwn("*A*\n1"), mrkdwn("*B*\n2")]}
    assert draw(blocks(section), width=30).splitlines() == ["A", "1", "B", "2"]


def test_section_accessory_button_is_numbered() -> None:
    section = {
        "type": "section",
        "block_id": "app:1",
        "text": mrkdwn("demo-chat"),
        "accessory": button("Details", "app_details", value="1400123456"),
    }
    rendered = render_message(blocks(section), color=False, start=7)
    assert "[7] Details" in rendered.text
    assert rendered.buttons == [
        Button(7, "Details", "app_details", "1400123456", None, None, "app:1", None)
    ]


def test_context_mrkdwn_plain_and_image_alt() -> None:
    context = {
        "type": "context",
        "elements": [
            mrkdwn("Requested by <@U0123ABC|alice>"),
            {"type": "image", "image_url": "https://x/y.png", "alt_text": "logo"},
            plain("*not bold*"),
        ],
    }
    assert draw(blocks(context)) == "Requested by @alice · [logo] · *not bold*"
    assert draw(blocks(context), color=True).startswith("\x1b[2m")


def test_divider_spans_the_width() -> None:
    assert draw(blocks({"type": "divider"}), width=40) == "─" * 40


def test_actions_number_buttons_from_start_and_keep_their_data() -> None:
    rendered = render_message(CARD, color=False, start=3)
    assert "[3] Confirm  [4] Cancel" in rendered.text
    confirm, cancel = rendered.buttons
    assert (confirm.number, confirm.action_id, confirm.value) == (3, "plan_confirm", "req-1")
    assert confirm.style == "danger" and confirm.confirm == DISABLE_CONFIRM
    assert confirm.block_id == "pending:req-1"
    assert (cancel.number, cancel.style, cancel.confirm) == (4, None, None)


def test_numbering_continues_across_messages() -> None:
    first = render_message(CARD, color=False)
    second = render_message(CARD, color=False, start=len(first.buttons) + 1)
    assert [b.number for b in first.buttons + second.buttons] == [1, 2, 3, 4]


def test_danger_is_red_and_primary_green_with_color() -> None:
    actions = {
        "type": "actions",
        "elements": [
            button("Disable", "a", style="danger"),
            button("Upgrade", "b", style="primary"),
            button("Cancel", "c"),
        ],
    }
    text = draw(blocks(actions), color=True)
    assert f"[1] {RED}" in text and "Disable" in text
    assert f"[2] {GREEN}" in text
    assert "[3] Cancel" in text


def test_other_interactive_elements_are_placeholders() -> None:
    actions = {
        "type": "actions",
        "elements": [
            {"type": "static_select", "placeholder": plain("Pick a plan")},
            {"type": "datepicker"},
            button("Go", "go"),
        ],
    }
    rendered = render_message(blocks(actions), color=False)
    assert rendered.text == "[static_select: Pick a plan]  [datepicker]  [1] Go"
    assert [b.text for b in rendered.buttons] == ["Go"]


def test_actions_wrap_between_buttons() -> None:
    actions = {"type": "actions", "elements": [button(f"Button {i}", f"b{i}") for i in range(6)]}
    lines = draw(blocks(actions), width=30).splitlines()
    assert len(lines) > 1
    assert all(len(line) <= 30 for line in lines)
    assert all(re.fullmatch(r"(\[\d\] Button \d( {2}|$))+", line) for line in lines)


def test_url_button_shows_its_url() -> None:
    actions = {"type": "actions", "elements": [button("Docs", "docs", url="https://example.com")]}
    rendered = render_message(blocks(actions), color=False)
    assert rendered.text == "[1] Docs (https://example.com)"
    assert rendered.buttons[0].url == "https://example.com"


def test_rich_text() -> None:
    rich = {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "Hello "},
                    {"type": "text", "text": "world", "style": {"bold": True}},
                    {"type": "text", "text": " run ", "style": {}},
                    {"type": "text", "text": "/plan", "style": {"code": True}},
                    {"type": "emoji", "name": "tada", "unicode": "1f389"},
                    {"type": "link", "url": "https://x.test", "text": "docs"},
                ],
            },
            {
                "type": "rich_text_list",
                "style": "bullet",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U1"}]},
                    {
                        "type": "rich_text_section",
                        "elements": [{"type": "channel", "channel_id": "C1"}],
                    },
                ],
            },
            {
                "type": "rich_text_list",
                "style": "ordered",
                "indent": 1,
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "a"}]}
                ],
            },
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = 1"}]},
            {"type": "rich_text_quote", "elements": [{"type": "text", "text": "quoted"}]},
        ],
    }
    assert draw(blocks(rich)).splitlines() == [
        "Hello world run `/plan`🎉docs (https://x.test)",
        "• @U1",
        "• #C1",
        "  1. a",
        "  x = 1",
        "│ quoted",
    ]


def test_unknown_blocks_are_placeholders() -> None:
    text = draw(blocks({"type": "carousel"}, {"no": "type"}, "not a block"))  # type: ignore[arg-type]
    assert text.splitlines() == ["[carousel block]", "[? block]", "[not a block]"]


def test_image_input_and_markdown_blocks() -> None:
    text = draw(
        blocks(
            {"type": "image", "image_url": "https://x/y.png", "alt_text": "chart"},
            {"type": "input", "label": plain("Reason")},
            {"type": "markdown", "text": "*hi*"},
        )
    )
    assert text.splitlines() == ["[image: chart]", "[input: Reason]", "hi"]


# --------------------------------------------------------------------------------------------------
# Message shapes


def test_text_is_the_fallback_without_blocks() -> None:
    assert draw({"text": "Hello *there*"}) == "Hello there"
    assert draw({"text": "Hello *there*", "blocks": []}) == "Hello there"
    assert draw({"text": "*raw*", "mrkdwn": False}) == "*raw*"


def test_blocks_win_over_text() -> None:
    assert draw({"text": "fallback", "blocks": [{"type": "divider"}]}, width=20) == "─" * 20


def test_blocks_given_as_a_json_string() -> None:
    body = {"text": "x", "blocks": json.dumps([{"type": "section", "text": mrkdwn("from json")}])}
    assert draw(body) == "from json"


def test_response_url_payloads() -> None:
    replaced = {"replace_original": True, "text": "Upgraded *demo-chat* to premium."}
    assert draw(replaced) == "Upgraded demo-chat to premium."
    assert draw({"delete_original": True}) == "(message deleted)"
    assert draw({}) == "(empty message)"


def test_attachments() -> None:
    body = {
        "text": "Audit",
        "attachments": [
            {"color": "good", "title": "Upgrade", "text": "by <@U1|alice>", "footer": "planbot"}
        ],
    }
    lines = draw(body).splitlines()
    assert lines == ["Audit", "┃ Upgrade", "┃ by @alice", "┃ planbot"]


def test_rendered_is_text_and_buttons() -> None:
    rendered = render_message(CARD, color=False)
    assert isinstance(rendered, Rendered)
    assert isinstance(rendered.text, str)
    assert all(isinstance(b, Button) for b in rendered.buttons)


# --------------------------------------------------------------------------------------------------
# Confirm dialogs


def test_confirm_prompt_is_a_yes_no_question() -> None:
    danger = render_message(CARD, color=False).buttons[0]
    assert confirm_prompt(danger) == (
        "Disable demo-chat?\n"
        "Service stops at once. The app is purged after 90 days.\n"
        "Disable (y) or Keep it (n)? [y/N] "
    )
    coloured = confirm_prompt(danger, color=True)
    assert coloured is not None and f"{RED}Disable" in coloured


def test_confirm_prompt_none_without_dialog_and_defaults_when_sparse() -> None:
    cancel = render_message(CARD, color=False).buttons[1]
    assert confirm_prompt(cancel) is None
    sparse = Button(1, "Go", "go", None, None, {}, None)
    assert confirm_prompt(sparse) == "Are you sure?\nYes (y) or Cancel (n)? [y/N] "


# --------------------------------------------------------------------------------------------------
# mrkdwn


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("*bold*", "bold"),
        ("_italic_", "italic"),
        ("~strike~", "~strike~"),
        ("`code`", "`code`"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("<https://example.com|the docs>", "the docs (https://example.com)"),
        ("<https://example.com>", "https://example.com"),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("<@U123>", "@U123"),
        ("<@U123|alice>", "@alice"),
        ("<#C123|general>", "#general"),
        ("<#C123>", "#C123"),
        ("<!here>", "@here"),
        ("<!channel>", "@channel"),
        ("<!subteam^S1|@ops>", "@ops"),
        ("<!subteam^S1>", "@S1"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("&lt;b&gt; &amp; &amp;lt;", "<b> & &lt;"),
        ("`&lt;app&gt;`", "`<app>`"),
        ("`*not bold*`", "`*not bold*`"),
        ("> quoted *text*", "│ quoted text"),
        ("&gt; quoted", "│ quoted"),
        ("• item", "• item"),
        ("- item", "• item"),
        ("1. first", "1. first"),
        (":warning: careful :no_such_emoji:", "⚠️ careful :no_such_emoji:"),
        ("```\nday  total\n01   12.87\n```", "  day  total\n  01   12.87"),
        ("before ```code``` after", "before\n  code\nafter"),
        ("unclosed ``` fence", "unclosed ``` fence"),
    ],
)
def test_mrkdwn_without_color(source: str, shown: str) -> None:
    assert render_mrkdwn(source, color=False) == shown


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("*bold*", "\x1b[1mbold\x1b[22m"),
        ("_it_", "\x1b[3mit\x1b[23m"),
        ("~gone~", "\x1b[9mgone\x1b[29m"),
        ("`x`", "\x1b[36mx\x1b[39m"),
        ("_a *b*_", "\x1b[3ma \x1b[1mb\x1b[22m\x1b[23m"),
        ("*a _b_*", "\x1b[1ma \x1b[3mb\x1b[23m\x1b[22m"),
    ],
)
def test_mrkdwn_with_color(source: str, shown: str) -> None:
    assert render_mrkdwn(source, color=True) == shown


def test_wrapping_respects_width_and_hangs_bullets() -> None:
    text = "• " + "word " * 40
    lines = render_mrkdwn(text, color=False, width=30).splitlines()
    assert len(lines) > 1
    assert all(len(line) <= 30 for line in lines)
    assert all(line.startswith("  word") for line in lines[1:])


def test_wrapping_ignores_escape_codes_and_cuts_long_words() -> None:
    lines = render_mrkdwn("*" + "x" * 50 + "* " + "y" * 70, color=True, width=25).splitlines()
    assert all(len(ANSI.sub("", line)) <= 25 for line in lines)
    assert "".join(ANSI.sub("", line) for line in lines) == "x" * 50 + "y" * 70


def test_wide_characters_count_double() -> None:
    lines = render_mrkdwn("채팅 " * 20, color=False, width=20).splitlines()
    assert all(sum(2 for _ in line.replace(" ", "")) + line.count(" ") <= 20 for line in lines)


def test_no_escape_codes_at_all_without_color() -> None:
    hostile = {
        "text": "x",
        "blocks": [
            *CARD["blocks"],
            {"type": "section", "text": mrkdwn("name \x1b[31mred\x1b[0m \x9b2J *bold*")},
            {"type": "header", "text": plain("\x1b]0;title\x07")},
        ],
    }
    rendered = render_message(hostile, color=False)
    assert (
        "\x1b" not in rendered.text and "\x9b" not in rendered.text and "\x07" not in rendered.text
    )
    assert "�" in rendered.text
    coloured = render_message(hostile, color=True).text
    assert "\x1b[31mred" not in coloured  # input escapes are never passed through


# --------------------------------------------------------------------------------------------------
# The module's public surface


def test_all_is_honest() -> None:
    public = {
        name
        for name, value in vars(textblocks).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == textblocks.__name__
    }
    assert public == set(textblocks.__all__)
    for name in textblocks.__all__:
        assert getattr(textblocks, name).__doc__, name


# --------------------------------------------------------------------------------------------------
# Property: any JSON-like input renders, never raises

KEYS = [
    "type",
    "text",
    "blocks",
    "elements",
    "fields",
    "accessory",
    "style",
    "confirm",
    "title",
    "deny",
    "value",
    "action_id",
    "block_id",
    "url",
    "alt_text",
    "placeholder",
    "label",
    "indent",
    "offset",
    "unicode",
    "name",
    "timestamp",
    "fallback",
    "user_id",
    "range",
    "emoji",
    "mrkdwn",
    "attachments",
    "color",
    "footer",
    "pretext",
]
TYPES = [
    "header",
    "section",
    "context",
    "divider",
    "actions",
    "rich_text",
    "rich_text_section",
    "rich_text_list",
    "rich_text_preformatted",
    "rich_text_quote",
    "image",
    "input",
    "markdown",
    "file",
    "video",
    "button",
    "plain_text",
    "mrkdwn",
    "text",
    "link",
    "emoji",
    "user",
    "usergroup",
    "channel",
    "broadcast",
    "date",
    "static_select",
]
MRKDWN_BITS = ["*", "_", "~", "`", "```", "<", ">", "|", "&lt;", "&gt;", "&amp;", "<@U1|a>", "\n"]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(TYPES),
    st.lists(st.sampled_from([*MRKDWN_BITS, "a", " ", "b"]), max_size=12).map("".join),
)
json_like = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), children, max_size=6
        ),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(json_like, max_size=6),
    st.dictionaries(st.sampled_from(KEYS), json_like, max_size=4),
    st.booleans(),
    st.integers(min_value=-5, max_value=200),
    st.integers(min_value=1, max_value=50),
)
def test_any_json_like_blocks_render(
    block_list: list[Any], extra: dict[str, Any], color: bool, width: int, start: int
) -> None:
    message = {**extra, "blocks": block_list}
    rendered = render_message(message, color=color, width=width, start=start)
    assert isinstance(rendered.text, str)
    assert [b.number for b in rendered.buttons] == list(range(start, start + len(rendered.buttons)))
    if not color:
        assert "\x1b" not in rendered.text
    for pressed in rendered.buttons:
        prompt = confirm_prompt(pressed, color=color)
        assert prompt is None or prompt.endswith("[y/N] ")
        if prompt is not None and not color:
            assert "\x1b" not in prompt


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from([*MRKDWN_BITS, "x", " "])).map("".join)))
def test_any_mrkdwn_renders(text: str) -> None:
    assert "\x1b" not in render_mrkdwn(text, color=False, width=40)
    render_mrkdwn(text, color=True, width=40)
