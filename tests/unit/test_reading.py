"""What a person reads: Slack's limits in UTF-16, help whose examples all work, channels known
without asking Slack on the ack path, and who could approve a request."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import blocks, grammar
from bot.channels import ChannelDirectory, Reach
from bot.kit import MAX_HEADER, chunks, clip, date_token, header, plain_dates, units
from bot.words import Words
from core import (
    AccessPolicy,
    Approvers,
    ConfigChangeLimitReached,
    Grant,
    NotYourRequest,
    RequestAlreadyDecided,
    Role,
    load_catalog,
)
from core.access import approvers
from tests.conftest import SHANGHAI

CATALOG = load_catalog()
WORDS = Words(CATALOG, SHANGHAI)


# --- limits counted as Slack counts them -----------------------------------------------------------


def test_text_is_measured_in_utf16_code_units() -> None:
    assert units("abc") == 3
    assert units("한글") == 2  # the Basic Multilingual Plane: one unit each
    assert units("😀") == 2 and units("𠀋") == 2  # beyond it: a surrogate pair each


def test_a_clipped_header_of_emoji_stays_within_150_units_and_never_splits_a_pair() -> None:
    text = header("😀" * 200)["text"]["text"]
    assert units(text) <= MAX_HEADER
    assert text.endswith("…") and text[:-1] == "😀" * ((MAX_HEADER - 1) // 2)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.integers(1, 300))
def test_clip_and_chunks_keep_every_piece_within_the_limit(text: str, limit: int) -> None:
    clipped = clip(text, limit)
    assert units(clipped) <= max(limit, 1)
    assert clipped == text or clipped.endswith("…")
    for piece in chunks(text, limit):
        assert units(piece) <= limit
        piece.encode("utf-8")  # no lone surrogate


def test_a_date_token_falls_back_to_its_text_where_tokens_are_not_drawn() -> None:
    moment = datetime(2026, 12, 1, 11, 32, tzinfo=UTC)
    token = WORDS.moment(moment)
    assert token == date_token(moment, "2026-12-01 19:32 (Asia/Shanghai)")
    assert token.startswith(f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|")
    assert plain_dates(f"from {token}.") == "from 2026-12-01 19:32 (Asia/Shanghai)."


# --- help: every example works --------------------------------------------------------------------


def addon_help() -> list[grammar.AddonHelp]:
    return [
        grammar.AddonHelp(
            name=a.name,
            label=a.label,
            default=a.default,
            options=tuple((v, WORDS.money(p)) for v, p in a.options.items()),
        )
        for a in CATALOG.addons.values()
    ]


def every_help_text() -> list[str]:
    texts = [grammar.help_text(None, None, addons=addon_help())]
    texts += [grammar.help_text(None, name, addons=addon_help()) for name in grammar.SUBCOMMANDS]
    return texts


def shown_commands(text: str) -> list[str]:
    """Every `/plan ...` a help text shows as something to type (not a usage with blanks)."""
    typed = [
        c.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        for c in re.findall(r"`(/plan [^`]*)`", text)
    ]
    return [c for c in typed if not re.search(r"[<>\[\]|]|\.\.\.|…", c)]


def as_slack_sends(typed: str) -> str:
    """The command text Slack sends for what was typed, people and channels picked from its
    autocomplete (`@alice` arrives as `<@U…|alice>`, `#team-chat` as `<#C…|team-chat>`)."""

    def slack_id(prefix: str, name: str) -> str:
        return prefix + re.sub(r"[^A-Z0-9]", "", name.upper()) + "1"

    text = re.sub(r"(?<!\S)@([a-z][\w.-]*)", lambda m: f"<@{slack_id('U', m[1])}|{m[1]}>", typed)
    return re.sub(r"(?<!\S)#([a-z][\w-]*)", lambda m: f"<#{slack_id('C', m[1])}|{m[1]}>", text)


def test_every_example_help_shows_parses_and_every_config_example_is_in_the_catalog() -> None:
    shown = sorted({c for text in every_help_text() for c in shown_commands(text)})
    assert len(shown) >= len(grammar.SUBCOMMANDS), shown
    for command in shown:
        parsed = grammar.parse(
            as_slack_sends(command.removeprefix("/plan "))
        )  # raises if help lies
        if isinstance(parsed, grammar.Configure):
            CATALOG.check_addons(dict(parsed.addons))  # raises on an add-on that isn't sold


def test_the_help_of_config_lists_every_addon_with_each_value_and_its_price() -> None:
    text = grammar.help_text(None, "config", addons=addon_help())
    for addon in CATALOG.addons.values():
        line = next(x for x in text.splitlines() if x.startswith(f"• `{addon.name}`"))
        for value, price in addon.options.items():
            assert f"`{value}` {WORDS.money(price)}" in line
        assert f"`{addon.default}` $0.00 (default)" in line


# --- words ---------------------------------------------------------------------------------------


def test_refusals_name_people_by_mention_and_moments_by_token() -> None:
    assert "belongs to <@UOPER>" in WORDS.refusal(NotYourRequest("oper", "UOPER"))
    assert "rejected by <@UBOB>" in WORDS.refusal(RequestAlreadyDecided("rejected", "bob", "UBOB"))
    nxt = datetime(2026, 11, 30, 16, tzinfo=UTC)
    limit = WORDS.refusal(
        ConfigChangeLimitReached("1400000002", nxt.astimezone(SHANGHAI), nxt, "std-chat")
    )
    assert "App `std-chat` (`1400000002`)" in limit
    assert "from 2026-12-01 (billing day in Asia/Shanghai), that is <!date^" in limit
    assert "CST" not in limit


def test_a_request_past_the_last_page_says_how_many_pages_there_are() -> None:
    from core import AppPage

    said = blocks.list_message(AppPage((), 85, 9, 3), contains=None)
    assert (
        said["text"]
        == "Page 9 is past the end: 85 apps fill 3 pages. The last one is `/plan list page=3`."
    )
    assert (
        blocks.list_message(AppPage((), 0, 1, 1), contains="x")["text"] == "No apps matching `x`."
    )


# --- channels: known in the background ---------------------------------------------------------


class FakeWeb:
    """conversations.info and users.conversations, answered from sets, counting the calls."""

    def __init__(self, joined: set[str], outside: set[str]) -> None:
        self.joined, self.outside = joined, outside
        self.calls: list[str] = []
        self.answered = threading.Event()

    def users_conversations(self, **_: Any) -> dict[str, Any]:
        self.calls.append("users.conversations")
        return {"channels": [{"id": c} for c in sorted(self.joined)], "response_metadata": {}}

    def conversations_info(self, channel: str) -> dict[str, Any]:
        self.calls.append(f"conversations.info {channel}")
        self.answered.set()
        return {"channel": {"id": channel, "is_member": channel not in self.outside}}


def settled(directory: ChannelDirectory) -> None:
    """Wait for the background lookups queued so far."""
    directory._pool.submit(lambda: None).result(timeout=5)


def test_channels_are_known_from_the_start_and_a_new_one_is_looked_up_in_the_background() -> None:
    web = FakeWeb({"CTEAM"}, {"CNOT"})
    directory = ChannelDirectory(web, ttl=300)  # type: ignore[arg-type]
    assert directory.reach("D0123") is Reach.DIRECT and web.calls == []
    directory.warm()
    settled(directory)
    assert directory.reach("CTEAM") is Reach.MEMBER
    assert web.calls == ["users.conversations"], "no call while a command waits"

    assert directory.reach("CNEW") is Reach.UNKNOWN  # answered at once, looked up behind
    settled(directory)
    assert directory.reach("CNEW") is Reach.MEMBER
    assert directory.reach("CNOT") is Reach.UNKNOWN
    settled(directory)
    assert directory.reach("CNOT") is Reach.OUTSIDE
    web.outside.discard("CNOT")  # invited: the next try still says no, and looks again
    assert directory.reach("CNOT") is Reach.OUTSIDE
    settled(directory)
    assert directory.reach("CNOT") is Reach.MEMBER
    directory.close()


def test_without_slack_every_channel_but_a_direct_message_is_one_planbot_is_in() -> None:
    directory = ChannelDirectory(None)
    assert directory.reach("CSHELL") is Reach.MEMBER
    assert directory.reach("D0SHELL") is Reach.DIRECT and directory.reach(None) is Reach.DIRECT


# --- who could approve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "grants", "expected"),
    [
        (AccessPolicy(admins=frozenset({"UA"})), [], Approvers(Role.ADMIN)),
        (
            AccessPolicy(admins=frozenset({"UA", "UB"})),
            [Grant("user", "UC", Role.ADMIN), Grant("user", "UD", Role.OPERATOR)],
            Approvers(Role.ADMIN, users=("UB", "UC")),
        ),
        (
            AccessPolicy(admins=frozenset({"UA"})),
            [Grant("user", "UE", Role.ADMIN, "COTHER"), Grant("user", "UF", Role.ADMIN, "CTEAM")],
            Approvers(Role.ADMIN, users=("UF",)),
        ),
        (
            AccessPolicy(admins=frozenset({"UA"})),
            [Grant("group", "SLEADS", Role.ADMIN)],
            Approvers(Role.ADMIN, groups=("SLEADS",)),
        ),
        (AccessPolicy(default_role=Role.ADMIN), [], Approvers(Role.ADMIN, anyone=True)),
    ],
)
def test_who_could_approve_besides_the_requester(
    policy: AccessPolicy, grants: list[Grant], expected: Approvers
) -> None:
    found = approvers(role=Role.ADMIN, team="CTEAM", requester="UA", policy=policy, grants=grants)
    assert found == expected
    assert found.enough_for(1) is (expected != Approvers(Role.ADMIN))
