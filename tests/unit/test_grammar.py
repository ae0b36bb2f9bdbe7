"""The `/plan` grammar: every subcommand, every kind of mistake, and parser laws by property."""

from __future__ import annotations

import inspect
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import grammar
from bot.grammar import (
    MAX_TEXT_LENGTH,
    SUBCOMMANDS,
    AccessGrant,
    AccessList,
    AccessRevoke,
    AppUsage,
    Bill,
    Command,
    CommandSyntaxError,
    Configure,
    Create,
    Disable,
    Enable,
    Extend,
    Help,
    History,
    ListApps,
    Migrate,
    Principal,
    Status,
    Upgrade,
    help_text,
    parse,
    resolve_subcommand,
    unparse,
)
from bot.kit import escape

ALICE = Principal("user", "U0123ABC", "alice")
OPS = Principal("group", "S0123ABC", "ops")


def syntax_error(text: str) -> CommandSyntaxError:
    with pytest.raises(CommandSyntaxError) as caught:
        parse(text)
    return caught.value


def assert_safe_message(message: str) -> None:
    """Non-empty mrkdwn in which `&`, `<`, `>` only ever appear as entities."""
    assert message.strip()
    assert not re.search(r"[<>&]", re.sub(r"&(amp|lt|gt);", "", message)), message


# --------------------------------------------------------------------------------------------------
# Happy paths


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help(None)),
        ("   \n\t ", Help(None)),
        ("help", Help(None)),
        ("help upgrade", Help("upgrade")),
        ("help ls", Help("list")),
        ("HELP Configure", Help("config")),
        ("?", Help(None)),
        ("upgrade help", Help("upgrade")),
        ("access --help", Help("access")),
        ("list", ListApps(None)),
        ("ls premium", ListApps("premium")),
        ("list demo page=3", ListApps("demo", 3)),
        ("list page=2", ListApps(None, 2)),
        ('list "a=b"', ListApps("a=b")),
        ("status 1400123456", Status("1400123456")),
        ("info demo-chat", Status("demo-chat")),
        ("show demo-chat", Status("demo-chat")),
        ("STATUS Demo-Chat", Status("Demo-Chat")),
        ("upgrade 1400123456 premium", Upgrade("1400123456", "premium")),
        ("Upgrade demo-chat STANDARD", Upgrade("demo-chat", "standard")),
        ("config demo-chat edition=premium", Configure("demo-chat", "premium", ())),
        ("configure demo-chat Edition=Standard", Configure("demo-chat", "standard", ())),
        ("config demo-chat plan=premium", Configure("demo-chat", "premium", ())),
        (
            "config demo-chat Retention=30d edition=premium Extra-Pack=On",
            Configure("demo-chat", "premium", (("retention", "30d"), ("extra-pack", "On"))),
        ),
        ('config x retention="30 days"', Configure("x", None, (("retention", "30 days"),))),
        ("extend demo-dev", Extend("demo-dev")),
        ("disable demo-chat", Disable("demo-chat")),
        ("enable demo-old", Enable("demo-old")),
        ("reenable demo-old", Enable("demo-old")),
        ("re-enable demo-old", Enable("demo-old")),
        ("migrate demo-legacy", Migrate("demo-legacy")),
        ("create support-chat", Create("support-chat")),
        ('create "Support Chat"', Create("Support Chat")),
        ("create Support Chat", Create("Support Chat")),
        ("create  Support   Chat ", Create("Support Chat")),
        ("create 'Support Chat'", Create("Support Chat")),
        ("create ‘Support Chat’", Create("Support Chat")),
        ("create Bob's app", Create("Bob's app")),
        ("status 'support chat'", Status("support chat")),
        ("status 'Bob's app'", Status("Bob's app")),
        ("upgrade 'Support Chat' premium", Upgrade("Support Chat", "premium")),
        ("history demo-chat", History("demo-chat", 20)),
        ("history demo-chat 50", History("demo-chat", 50)),
        ("history demo-chat limit=5", History("demo-chat", 5)),
        ("bill demo-chat", Bill("demo-chat", None)),
        ("billing demo-chat 2025-03", Bill("demo-chat", (2025, 3))),
        ("bill demo-chat 2025-3", Bill("demo-chat", (2025, 3))),
        ("bill demo-chat 2024-12", Bill("demo-chat", (2024, 12))),
        ("usage demo-chat", AppUsage("demo-chat", 14)),
        ("usage demo-chat 30", AppUsage("demo-chat", 30)),
        ("stats demo-chat days=7", AppUsage("demo-chat", 7)),
        ("access", AccessList()),
        ("access list", AccessList()),
        ("access grant <@U0123ABC|alice> operator", AccessGrant(ALICE, "operator", None)),
        (
            "access grant <@U0123ABC|alice> Admin <#C0123ABC|team-chat>",
            AccessGrant(ALICE, "admin", "C0123ABC"),
        ),
        ("access revoke <!subteam^S0123ABC|@ops> viewer", AccessRevoke(OPS, "viewer", None)),
        (
            "access revoke <!subteam^S0123ABC|@ops> viewer C0123ABC",
            AccessRevoke(OPS, "viewer", "C0123ABC"),
        ),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert parse(text) == expected


def test_subcommand_words_are_case_insensitive() -> None:
    assert parse("UpGrAdE 1 PREMIUM") == Upgrade("1", "premium")
    assert resolve_subcommand("  LS ") == "list"
    assert resolve_subcommand("nope") is None


def test_every_subcommand_in_the_table_parses_its_own_example() -> None:
    for name, usage in SUBCOMMANDS.items():
        assert usage.example.startswith(f"/plan {name}")
        example = usage.example.removeprefix("/plan ")
        if name == "access":
            example = "access grant <@U0123ABC|alice> operator <#C0123ABC|team-chat>"
        assert parse(example).subcommand == name


def test_roles_of_subcommands() -> None:
    roles = {name: usage.role for name, usage in SUBCOMMANDS.items()}
    assert roles == {
        "help": "viewer",
        "list": "viewer",
        "status": "viewer",
        "history": "viewer",
        "bill": "viewer",
        "usage": "viewer",
        "upgrade": "operator",
        "config": "operator",
        "extend": "operator",
        "create": "operator",
        "disable": "admin",
        "enable": "admin",
        "migrate": "admin",
        "access": "admin",
        "lang": "viewer",
    }


# --------------------------------------------------------------------------------------------------
# Names, quotes and escaping


@pytest.mark.parametrize(
    ("text", "app"),
    [
        ('status "My Chat App"', "My Chat App"),
        ("status “My Chat App”", "My Chat App"),
        ("status ”My Chat App”", "My Chat App"),
        ('status "say \\"hi\\""', 'say "hi"'),
        ('status "back\\\\slash"', "back\\slash"),
        ("status back\\slash", "back\\slash"),
        ('status "  padded  "', "  padded  "),
        ("status A&amp;B", "A&B"),
        ("status &lt;!channel&gt;", "<!channel>"),
        ("status <!channel>", "<!channel>"),
        ("status &amp;lt;", "&lt;"),
        ("status 채팅앱", "채팅앱"),
        ('status "multi\nline"', "multi\nline"),
    ],
)
def test_app_names(text: str, app: str) -> None:
    assert parse(text) == Status(app)


def test_quoted_keyword_is_a_name_not_a_keyword() -> None:
    assert parse('status "help"') == Status("help")
    assert parse('list "page=2"') == ListApps("page=2")


def test_escape_mrkdwn() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("plain") == "plain"


def test_unparse_is_slack_wire_form() -> None:
    assert unparse(Status("My App")) == 'status "My App"'
    assert unparse(Status("<!channel>")) == 'status "&lt;!channel&gt;"'
    assert unparse(Upgrade("1400123456", "premium")) == "upgrade 1400123456 premium"
    assert unparse(Bill("x", (2025, 3))) == "bill x 2025-03"
    assert unparse(History("x")) == "history x"
    assert (
        unparse(AccessGrant(ALICE, "admin", "C1")) == "access grant <@U0123ABC|alice> admin <#C1>"
    )
    assert unparse(AccessRevoke(OPS, "viewer")) == "access revoke <!subteam^S0123ABC|@ops> viewer"
    assert Status("x").to_text() == unparse(Status("x"))


# --------------------------------------------------------------------------------------------------
# Mentions


@pytest.mark.parametrize(
    ("token", "principal"),
    [
        ("<@U0123ABC|alice>", ALICE),
        ("<@U0123ABC>", Principal("user", "U0123ABC", "U0123ABC")),
        ("<@W0123ABC|bob>", Principal("user", "W0123ABC", "bob")),
        ("<!subteam^S0123ABC|@ops>", OPS),
        ("<!subteam^S0123ABC|ops>", OPS),
        ("<!subteam^S0123ABC>", Principal("group", "S0123ABC", "S0123ABC")),
        ("U0123ABC", Principal("user", "U0123ABC", "U0123ABC")),
        ("S0123ABC", Principal("group", "S0123ABC", "S0123ABC")),
        ("&lt;@U0123ABC|alice&gt;", ALICE),
    ],
)
def test_principals(token: str, principal: Principal) -> None:
    assert parse(f"access grant {token} viewer") == AccessGrant(principal, "viewer", None)


def test_principal_mention() -> None:
    assert ALICE.mention() == "<@U0123ABC>"
    assert OPS.mention() == "<!subteam^S0123ABC>"


@pytest.mark.parametrize("team", ["<#C0123ABC|team-chat>", "<#C0123ABC>", "C0123ABC"])
def test_team_channel(team: str) -> None:
    assert parse(f"access grant <@U0123ABC|alice> operator {team}").team == "C0123ABC"  # type: ignore[attr-defined]


def test_bare_at_name_cannot_be_resolved() -> None:
    error = syntax_error("access grant @alice operator")
    assert "`@alice`" in error.message
    assert "autocomplete" in error.message
    assert error.subcommand == "access"
    assert_safe_message(error.message)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("access grant alice operator", ["`alice`", "autocomplete"]),
        ("access grant <!here> operator", ["@here", "one person or one user group"]),
        ("access grant <#C0123ABC|team> operator", ["channel"]),
        ("access grant operator <@U0123ABC>", ["person or group first"]),
        ("access grant <@U0123ABC> operator #team-chat", ["`#team-chat`", "autocomplete"]),
        ("access grant <@U0123ABC> operator team-chat", ["not a channel"]),
        ("access grant <@U0123ABC>", ["needs a person or group and a role"]),
        ("access grant", ["needs a person or group and a role"]),
        ("access grnat <@U0123ABC> admin", ["Did you mean `grant`?"]),
        ("access list everything", ["Too many words"]),
        ("access grant <@U0123ABC> admin C0123ABC extra", ["Too many words"]),
    ],
)
def test_access_errors(text: str, words: list[str]) -> None:
    error = syntax_error(text)
    for word in words:
        assert word in error.message
    assert error.subcommand == "access"
    assert "/plan access grant" in error.message  # the usage comes with it
    assert_safe_message(error.message)


def test_role_typo_suggests_nearest() -> None:
    error = syntax_error("access grant <@U0123ABC> operater")
    assert error.suggestion == "operator"
    assert "Did you mean `operator`?" in error.message
    error = syntax_error("access revoke <@U0123ABC> owner")
    assert error.suggestion is None
    assert "`viewer`, `operator` or `admin`" in error.message


# --------------------------------------------------------------------------------------------------
# Mistakes


def test_unknown_subcommand_suggests_nearest_with_its_usage() -> None:
    error = syntax_error("upgarde 1400 premium")
    assert error.message.startswith("Unknown subcommand `upgarde`. Did you mean `upgrade`?")
    assert "`/plan upgrade &lt;app&gt; &lt;standard|premium&gt;`" in error.message
    assert error.suggestion == "upgrade"
    assert error.subcommand is None


def test_unknown_subcommand_without_a_near_word_points_to_help() -> None:
    error = syntax_error("frobnicate")
    assert "Unknown subcommand `frobnicate`." in error.message
    assert "/plan help" in error.message
    assert error.suggestion is None


def test_an_app_id_alone_suggests_status() -> None:
    error = syntax_error("1400123456")
    assert "`/plan status 1400123456`" in error.message
    assert error.suggestion == "status"


def test_alias_typo_suggests_canonical_name() -> None:
    assert syntax_error("biling x").suggestion == "bill"


@pytest.mark.parametrize(
    ("text", "subcommand", "needle"),
    [
        ("upgrade", "upgrade", "needs an app and a plan"),
        ("upgrade demo", "upgrade", "needs a plan after the app"),
        ("upgrade premium", "upgrade", "needs the app before the plan"),
        ("status", "status", "needs an app"),
        ("extend", "extend", "needs an app"),
        ("disable", "disable", "needs an app"),
        ("enable", "enable", "needs an app"),
        ("migrate", "migrate", "needs an app"),
        ("history", "history", "needs an app"),
        ("bill", "bill", "needs an app"),
        ("usage", "usage", "needs an app"),
        ("usage demo 0", "usage", "not a valid number of days"),
        ("usage demo 91", "usage", "from 1 to 90"),
        ("usage demo weeks=2", "usage", "Unknown option `weeks`"),
        ("create", "create", "needs a name"),
        ("config", "config", "needs the app first"),
        ("config edition=premium", "config", "needs the app first"),
        ("config demo", "config", "at least one change"),
    ],
)
def test_missing_arguments(text: str, subcommand: str, needle: str) -> None:
    error = syntax_error(text)
    assert needle in error.message
    assert error.subcommand == subcommand
    assert f"Usage: `/plan {subcommand}" in error.message
    assert_safe_message(error.message)


@pytest.mark.parametrize(
    ("text", "subcommand"),
    [
        ("status My Chat App", "status"),
        ("upgrade demo premium now", "upgrade"),
        ("extend a b", "extend"),
        ("history demo 5 6", "history"),
        ("bill demo 2025-03 2025-04", "bill"),
        ("usage demo 7 8", "usage"),
        ("help upgrade now", "help"),
        ("list a b", "list"),
    ],
)
def test_extra_arguments(text: str, subcommand: str) -> None:
    error = syntax_error(text)
    assert "Too many words" in error.message
    assert error.subcommand == subcommand
    assert_safe_message(error.message)


def test_extra_words_hint_at_quotes_for_names() -> None:
    assert "double quotes" in syntax_error("status My Chat App").message


def test_bad_plan_suggests_premium() -> None:
    error = syntax_error("upgrade 1400 premum")
    assert error.suggestion == "premium"
    assert "`premum` is not a plan. Did you mean `premium`?" in error.message
    assert "Usage: `/plan upgrade" in error.message


def test_plan_with_no_near_word() -> None:
    error = syntax_error("upgrade 1400 gold")
    assert error.suggestion is None
    assert "choose `standard` or `premium`" in error.message


@pytest.mark.parametrize("word", ["developer", "Developer", "dev", "develper"])
def test_no_downgrade_to_developer(word: str) -> None:
    error = syntax_error(f"upgrade 1400 {word}")
    assert "no downgrade to the developer plan" in error.message
    assert "`standard` or `premium`" in error.message
    assert_safe_message(error.message)


def test_config_edition_developer_is_refused_too() -> None:
    assert "no downgrade" in syntax_error("config x edition=developer").message


def test_config_edition_typo() -> None:
    error = syntax_error("config x edition=premim")
    assert error.suggestion == "premium"
    assert "is not an edition" in error.message


def test_config_key_typo_for_edition() -> None:
    error = syntax_error("config x editon=premium")
    assert error.suggestion == "edition"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("config x retention", "is not a setting"),
        ("config x =30", "is not a setting name"),
        ("config x 9lives=3", "is not a setting name"),
        ('config x "a b"=3', "is not a setting name"),
        ("config x retention=", "has no value"),
        ('config x retention=" "', "has no value"),
        ("config x premium", "`edition=premium`"),
    ],
)
def test_bad_key_value(text: str, needle: str) -> None:
    error = syntax_error(text)
    assert needle in error.message
    assert error.subcommand == "config"
    assert_safe_message(error.message)


@pytest.mark.parametrize(
    "text",
    [
        "config x retention=1 retention=2",
        "config x retention=1 RETENTION=2",
        "config x edition=premium edition=standard",
        "config x edition=premium plan=premium",
    ],
)
def test_duplicate_keys(text: str) -> None:
    error = syntax_error(text)
    assert "given twice" in error.message


@pytest.mark.parametrize(
    ("month", "needle"),
    [
        ("2025-13", "must be 01 to 12"),
        ("2025-00", "must be 01 to 12"),
        ("03/2025", "write it `YYYY-MM`"),
        ("2025", "write it `YYYY-MM`"),
        ("1969-12", "too far back"),
    ],
)
def test_bad_month(month: str, needle: str) -> None:
    error = syntax_error(f"bill demo {month}")
    assert needle in error.message
    assert f"`{month}`" in error.message
    assert error.subcommand == "bill"


@pytest.mark.parametrize(
    "text",
    ["history x 0", "history x 101", "history x many", "history x limit=-1", "history x ²"],
)
def test_bad_history_limit(text: str) -> None:
    assert "1 to 100" in syntax_error(text).message


def test_history_unknown_option() -> None:
    assert "Unknown option" in syntax_error("history x top=5").message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("list page=0", "1 to 10,000"),
        ("list page=x", "1 to 10,000"),
        ("list pgae=2", "Did you mean `page`?"),
        ("list page=1 page=2", "given twice"),
    ],
)
def test_bad_list_options(text: str, needle: str) -> None:
    assert needle in syntax_error(text).message


def test_unknown_help_topic_suggests() -> None:
    error = syntax_error("help upgarde")
    assert error.suggestion == "upgrade"
    assert error.subcommand == "help"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("create 12345", "all digits"),
        ("create \u0661\u0662\u0663", "all digits"),  # Arabic-Indic digits read as an id too
        ('create "   "', "empty"),
        ('create "two\nlines"', "one line"),
        ("create dev-1\u200b", "U+200B"),
        ("create pay\u202eevil", "U+202E"),
        ('status ""', "empty"),
    ],
)
def test_bad_names(text: str, needle: str) -> None:
    assert needle in syntax_error(text).message


def test_unclosed_quote() -> None:
    error = syntax_error('status "My App')
    assert "quote is not closed" in error.message
    assert error.subcommand == "status"
    assert_safe_message(error.message)


def test_input_length_is_capped() -> None:
    error = syntax_error("status " + "x" * MAX_TEXT_LENGTH)
    assert "too long" in error.message
    assert f"{MAX_TEXT_LENGTH:,}" in error.message


def test_user_text_is_escaped_in_errors() -> None:
    for text in [
        "<!channel>",
        "upgrade x <!channel>",
        "access grant <!everyone> admin",
        "&lt;b&gt;",
    ]:
        error = syntax_error(text)
        assert_safe_message(error.message)
        assert "<!" not in error.message


def test_long_user_words_are_shortened_in_errors() -> None:
    error = syntax_error("x" * 500)
    assert len(error.message) < 300


# --------------------------------------------------------------------------------------------------
# Help


def test_help_lists_everything_by_default() -> None:
    text = help_text()
    for name in SUBCOMMANDS:
        assert f"`/plan {name}" in text
    assert_safe_message(text)


def test_help_lists_only_what_the_roles_allow() -> None:
    viewer = help_text({"viewer"})
    assert "/plan status" in viewer
    assert "/plan upgrade" not in viewer
    assert "/plan disable" not in viewer
    operator = help_text({"operator"})
    assert "/plan upgrade" in operator and "/plan status" in operator
    assert "/plan disable" not in operator and "/plan access" not in operator
    admin = help_text({"admin", "unknown-role"})
    assert "/plan access grant" in admin and "/plan list" in admin


def test_help_for_nobody_says_how_to_get_access() -> None:
    text = help_text(set())
    assert "no planbot role" in text
    assert "/plan status" not in text


def test_help_topic_has_usage_example_and_role() -> None:
    text = help_text(topic="upgrade")
    assert "Usage: `/plan upgrade &lt;app&gt; &lt;standard|premium&gt;`" in text
    assert "Example: `/plan upgrade 1400123456 premium`" in text
    assert "Needs the *operator* role." in text
    assert_safe_message(text)


def test_help_topic_by_alias_and_missing_role() -> None:
    text = help_text({"viewer"}, topic="ls")
    assert "*/plan list*" in text
    assert "You don't have it" not in text
    assert "You don't have it" in help_text({"viewer"}, topic="disable")


def test_help_unknown_topic_is_escaped_and_suggests() -> None:
    text = help_text(topic="<!channel>")
    assert_safe_message(text)
    assert "Did you mean `upgrade`?" in help_text(topic="upgarde")


# --------------------------------------------------------------------------------------------------
# The module's public surface


def test_all_is_honest() -> None:
    public = {
        name
        for name, value in vars(grammar).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == grammar.__name__
    }
    assert public <= set(grammar.__all__)
    for name in grammar.__all__:
        assert hasattr(grammar, name), name
        value = getattr(grammar, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__ and value.__doc__.strip(), name


def test_commands_are_frozen() -> None:
    command = Status("x")
    with pytest.raises(AttributeError):
        command.app = "y"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Properties

GRAMMAR_WORDS = [
    *grammar._ALIASES,
    "list",
    "grant",
    "revoke",
    "add",
    "rm",
    "standard",
    "premium",
    "premum",
    "developer",
    "viewer",
    "operator",
    "admin",
    "admni",
    "edition=premium",
    "edition=developer",
    "plan=standard",
    "retention=30d",
    "Retention=7",
    "page=2",
    "page=0",
    "limit=5",
    "2025-03",
    "2025-13",
    "1400123456",
    "50",
    "0",
    "demo-chat",
    "<@U0123ABC|alice>",
    "<@U0123ABC>",
    "<!subteam^S0123ABC|@ops>",
    "<#C0123ABC|team-chat>",
    "<!channel>",
    "&lt;!here&gt;",
    "C0123ABC",
    "U0123ABC",
    "@alice",
    "#team",
    "&amp;",
    "=",
    "==",
    "\\",
    '\\"',
    '"',
    "“",
    "”",
    "<",
    ">",
    "&",
    "`",
    "*",
    "help",
    "-h",
    "?",
]

grammar_texts = st.lists(
    st.one_of(st.sampled_from(GRAMMAR_WORDS), st.text(max_size=8)), max_size=7
).flatmap(
    lambda words: st.lists(
        st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "", '"', "“", "”", "="]),
        min_size=len(words),
        max_size=len(words),
    ).map(lambda gaps: "".join(g + w for g, w in zip(gaps, words, strict=True)))
)


def check_law(text: str) -> None:
    """The parser's laws for one input: a Command that round-trips, or a safe error."""
    try:
        command = parse(text)
    except CommandSyntaxError as error:
        assert isinstance(error.message, str)
        assert_safe_message(error.message)
        assert error.subcommand is None or error.subcommand in SUBCOMMANDS
        return
    assert isinstance(command, Command)
    assert parse(unparse(command)) == command


@settings(max_examples=400)
@given(st.text())
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    check_law(text)


@settings(max_examples=1500)
@given(grammar_texts)
def test_grammar_like_text_parses_or_raises_a_syntax_error(text: str) -> None:
    check_law(text)


@settings(max_examples=300)
@given(st.text(min_size=1).filter(lambda s: s.strip()))
def test_any_app_name_round_trips(app: str) -> None:
    for command in (
        Status(app),
        Upgrade(app, "premium"),
        Bill(app, (2025, 1)),
        History(app, 7),
        AppUsage(app, 30),
    ):
        assert parse(unparse(command)) == command
    configured = Configure(app, "standard", (("note", app),))
    assert parse(unparse(configured)) == configured


@settings(max_examples=200)
@given(
    st.from_regex(r"[A-Z0-9]{1,12}", fullmatch=True),
    st.text(min_size=1).filter(lambda s: ">" not in s and not s.startswith("@")),
    st.sampled_from(["user", "group"]),
    st.sampled_from(["viewer", "operator", "admin"]),
    st.none() | st.from_regex(r"C[A-Z0-9]{1,10}", fullmatch=True),
)
def test_access_commands_round_trip(
    id_: str, label: str, kind: str, role: str, team: str | None
) -> None:
    principal = Principal(kind, id_, label)  # type: ignore[arg-type]
    for command in (AccessGrant(principal, role, team), AccessRevoke(principal, role, team)):
        assert parse(unparse(command)) == command


def test_long_input_near_the_cap_does_not_crash() -> None:
    check_law("history x " + "9" * (MAX_TEXT_LENGTH - 10))
    check_law('status "' + "\\" * (MAX_TEXT_LENGTH - 10))
