"""A new team's first week, through the real server and a fake Slack: what they meet, each case.

One `planbot serve` for the module, with one configured admin, peer approval for disable (one
peer) and migrate (two), an approvals channel and an approver group, and a fake Slack that
knows planbot is not in `CNOTIN` and `CGONE`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import SqlStore, make_engine
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    AUDIT,
    PLANBOT,
    TEAM,
    Served,
    card_text,
    planbot_env,
    start_planbot,
    stop_planbot,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

APPROVALS = "CAPPROVALS"
APPROVERS = "SAPPROVERS"
BOB = "UBOB"
VIEWER = "UVIEWER"
ENV = {
    "PLANBOT_APPROVALS": "disable=peer,migrate=peer:2",
    "PLANBOT_APPROVALS_CHANNEL": APPROVALS,
    "PLANBOT_APPROVER_GROUP": APPROVERS,
}
SHANGHAI = ZoneInfo("Asia/Shanghai")
DATE_TOKEN = re.compile(r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[^>]+ \(Asia/Shanghai\)>")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    with FakeSlack() as slack:
        slack.outside |= {"CNOTIN", "CGONE", "CNOTIN2"}
        tmp = tmp_path_factory.mktemp("week")
        served = start_planbot(tmp, slack, extra=ENV)
        try:
            yield served, tmp
        finally:
            stop_planbot(served)


def say(served: Served, text: str, *, user: str = ADMIN, channel: str = TEAM, **kw: Any) -> Any:
    """The bot's answer to `/plan <text>` (the JSON of the ack)."""
    response = served.command(text, user=user, channel=channel, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["action_id"]: e["value"]
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if e.get("type") == "button"
    }


def audit_records(served: Served, **match: Any) -> list[dict[str, Any]]:
    engine = make_engine(served.database_url)
    try:
        with SqlStore(engine).unit_of_work(write=False) as uow:
            return [e for e in uow.audit.records() if all(e.get(k) == v for k, v in match.items())]
    finally:
        engine.dispose()


def every_text_sent(slack: FakeSlack) -> str:
    """Everything planbot sent to Slack so far: posts, updates and replies to clicks."""
    calls = [c.body for c in slack.calls() if c.method.startswith("chat.")]
    names = [k.split("/", 1)[1] for k in slack.counts() if k.startswith("response/")]
    replies = [b for name in names for b in slack.responses(name)]
    return "\n".join(card_text(b) for b in [*calls, *replies])


# --- money: statements only for months planbot saw ---------------------------------------------


def test_a_fresh_install_posts_no_statement_for_a_month_it_never_saw(
    week: tuple[Served, Path],
) -> None:
    served, _ = week
    time.sleep(1.0)  # the first sweep is done; what it queued is delivered within a second
    statements = [m for m in served.slack.messages() if "Statement for" in str(m)]
    assert statements == [], "the apps were imported today: last month was never planbot's"
    # a person may still ask for any month since the app's creation
    local = datetime.now(UTC).astimezone(SHANGHAI)
    last = f"{local.year - (local.month == 1)}-{(local.month - 2) % 12 + 1:02d}"
    bill = card_text(say(served, f"bill e2e-std-1 {last}"))
    assert f"Total for {last}: $399.00" in bill


# --- approvals: who may approve, and where the card is -------------------------------------------


def test_a_request_nobody_else_could_approve_is_refused_at_once(
    week: tuple[Served, Path],
) -> None:
    served, _ = week
    alone = card_text(say(served, "disable e2e-std-1"))
    assert alone.startswith(":no_entry: Nothing was requested: `/plan disable` needs approval")
    assert "nobody else has that role" in alone
    assert "Who has the `admin` role besides you: nobody." in alone
    time.sleep(0.5)
    assert not served.slack.messages(APPROVALS), "no card nobody could press"

    assert "now has the `admin` role" in card_text(say(served, f"access grant <@{BOB}> admin"))
    waiting = say(served, "disable e2e-std-1")
    text = card_text(waiting)
    assert "needs approval by 1 other person with the *admin* role" in text
    assert f"(<!subteam^{APPROVERS}>)" in text
    request_id = buttons(waiting)["plan_cancel"]
    card = served.slack.wait_for(
        lambda c: c.method == "chat.postMessage" and request_id in str(c.body), timeout=10
    ).body
    assert card["channel"] == APPROVALS
    assert "with the *admin* role" in card_text(card)
    assert f"<!subteam^{APPROVERS}>" in card_text(card), "the approvers are mentioned"

    two = card_text(say(served, "migrate e2e-legacy-1"))
    assert "needs approval by 2 other people" in two
    assert "only 1 other person has that role" in two
    assert f"Who has the `admin` role besides you: <@{BOB}>." in two

    # a group's members are not known in advance: the request goes ahead, and says so
    say(served, "access grant <!subteam^SLEADS|@leads> admin")
    hopeful = card_text(say(served, "migrate e2e-legacy-1"))
    assert "needs approval by 2 other people with the *admin* role" in hopeful
    assert "members of <!subteam^SLEADS> have it; planbot can't tell in advance" in hopeful
    say(served, "access revoke <!subteam^SLEADS|@leads> admin")


# --- channels ----------------------------------------------------------------------------------


def test_an_app_is_not_created_where_planbot_cannot_post(week: tuple[Served, Path]) -> None:
    served, _ = week
    direct = card_text(say(served, "create dm-chat", channel="D0123DM"))
    assert direct.startswith(":no_entry: An app belongs to a team's channel")
    assert "`/invite @planbot`" in direct and "plan_confirm" not in direct

    first = card_text(say(served, "create lost-chat", channel="CNOTIN"))
    assert "Try again in a few seconds" in first or "is not a member" in first

    def answer() -> str:
        return card_text(say(served, "create lost-chat", channel="CNOTIN"))

    said = eventually(
        answer, 10, "a refusal", until=lambda said: "is not a member" in said, every=0.2
    )
    assert "planbot is not a member of <#CNOTIN>" in said
    assert "Invite it with `/invite @planbot` in <#CNOTIN>" in said

    served.slack.outside.discard("CNOTIN")  # someone invites planbot
    card = eventually(
        lambda: say(served, "create lost-chat", channel="CNOTIN"),
        10,
        "a preview in <#CNOTIN>",
        until=lambda card: "plan_confirm" in str(card),
        every=0.2,
    )
    assert "Create developer app lost-chat?" in card_text(card)

    granted = card_text(say(served, f"access grant <@{VIEWER}> operator <#CNOTIN2>"))
    assert granted.startswith(":no_entry: A team's role can't be granted for <#CNOTIN2> yet.")
    grants = audit_records(served, action="access.grant")
    assert not [g for g in grants if "CNOTIN2" in str(g["after"])], "nothing was granted"


def test_messages_to_a_channel_planbot_left_are_reported_once(week: tuple[Served, Path]) -> None:
    served, tmp = week
    now = datetime.now(UTC)
    rows = [
        "app_id,name,plan,created_at,status,owner_channel,dev_expires_at",
        *(
            f"14000077{n},gone-{n},developer,{(now - timedelta(days=40)).isoformat()},active,"
            f"CGONE,{(now - timedelta(hours=n + 1)).isoformat()}"
            for n in range(2)
        ),
    ]
    csv = tmp / "gone.csv"
    csv.write_text("\n".join(rows) + "\n")
    env = planbot_env(served.slack, served.database_url, ENV)
    for argv in ([PLANBOT, "apps", "import", str(csv)], [PLANBOT, "tick"]):
        done = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    report = served.slack.wait_for(
        lambda c: (
            c.method == "chat.postMessage"
            and c.body.get("channel") == AUDIT
            and "CGONE" in str(c.body)
        ),
        timeout=10,
    )
    text = card_text(report.body)
    assert "planbot can't post to <#CGONE>: planbot is not a member of that channel" in text
    assert "`not_in_channel`" in text and "`/invite @planbot`" in text
    assert len(served.slack.failures("chat.postMessage")) >= 2, "both suspensions were refused"
    time.sleep(1.0)
    reports = [m for m in served.slack.messages(AUDIT) if "can't post to <#CGONE>" in str(m)]
    assert len(reports) == 1, "reported once, not once per lost message"


# --- reading -----------------------------------------------------------------------------------


def test_times_are_date_tokens_and_people_are_mentions(week: tuple[Served, Path]) -> None:
    served, _ = week
    card = say(served, "extend e2e-dev-3", response="ext3")
    context = card["blocks"][-1]["elements"][0]["text"]
    assert DATE_TOKEN.search(context), context
    status = card_text(say(served, "status e2e-dev-3"))
    assert len(DATE_TOKEN.findall(status)) == 2, status  # created, and valid until

    clicked = served.click("plan_confirm", buttons(card)["plan_confirm"], response="ext3")
    assert clicked.status_code == 200
    outcome = served.slack.wait_for_response("ext3", 10)
    assert f"Applied by <@{ADMIN}> · <!date^" in card_text(outcome)
    history = card_text(say(served, "history e2e-dev-3"))
    assert f"*extend* → developer, active · $0.00/month · <@{ADMIN}>" in history
    assert DATE_TOKEN.search(history)
    served.slack.wait_for(lambda c: "1400000003" in str(c.body) and c.body.get("channel") == AUDIT)
    sent = every_text_sent(served.slack)
    assert not re.search(r"\d{2}:\d{2} [A-Z]{3}\b", sent), "no ambiguous zone abbreviations"
    assert ADMIN.lower() not in sent, "nobody is named by their old username"


def test_help_lists_every_addon_with_its_values_and_prices(week: tuple[Served, Path]) -> None:
    served, _ = week
    text = card_text(say(served, "help config"))
    assert '`retention="30 days"`' not in text
    assert "`history_retention` (Message history retention): `plan` $0.00 (default)" in text
    assert "`90d` $99.00, `180d` $199.00, `365d` $299.00" in text
    assert "`group_members` (Members per group): `plan` $0.00 (default), `3000` $99.00" in text
    assert "mau_pack" not in text  # the provider bills extra active users after the month
    example = re.search(r"Example: `/plan (config [^`]+)`\n", text)
    assert example is not None
    assert "plan_confirm" in str(say(served, example.group(1).replace("demo-chat", "e2e-std-7")))


def test_status_says_what_the_rules_say(week: tuple[Served, Path]) -> None:
    served, _ = week
    disabled = card_text(say(served, "status e2e-disabled-1"))
    assert "Configuration change this month" in disabled
    assert "not possible while disabled: re-enable it first" in disabled
    assert "available" not in disabled

    card = say(served, "config e2e-prem-1 history_retention=90d", response="ret90")
    served.click("plan_confirm", buttons(card)["plan_confirm"], response="ret90")
    served.slack.wait_for_response("ret90", 10)
    status = card_text(say(served, "status e2e-prem-1"))
    assert "90 days history" in status and "30 days history" not in status
    assert "used (next change from " in status and "(billing day in Asia/Shanghai)" in status


def test_names_match_in_any_case_quotes_and_a_near_miss_suggests(
    week: tuple[Served, Path],
) -> None:
    served, _ = week
    miss = card_text(say(served, "status e2e-dve-4"))
    assert miss.startswith(":no_entry: No app `e2e-dve-4` found. Did you mean `e2e-dev-4`")
    assert "Developer validity until" in card_text(say(served, "status 'E2E-DEV-4'"))
    assert "Developer validity until" in card_text(say(served, 'status "e2e-DEV-4"'))
    created = say(served, "create Support Chat", response="support")
    assert "Create developer app Support Chat?" in card_text(created)
    served.click("plan_confirm", buttons(created)["plan_confirm"], response="support")
    served.slack.wait_for_response("support", 10)
    assert "Developer validity until" in card_text(say(served, 'status "support chat"'))
    assert "Developer validity until" in card_text(say(served, "status 'SUPPORT CHAT'"))


def test_the_audit_channel_hears_only_refusals_that_matter(week: tuple[Served, Path]) -> None:
    served, _ = week
    _, first = served.preview("upgrade e2e-dev-5 standard")
    _, second = served.preview("upgrade e2e-dev-5 premium")
    served.click("plan_confirm", first, response="dev5-a")
    served.slack.wait_for_response("dev5-a", 10)
    served.click("plan_confirm", second, response="dev5-b")
    stale = served.slack.wait_for_response("dev5-b", 10)
    assert "changed since this preview was shown" in card_text(stale)
    assert [e["outcome"] for e in audit_records(served, request_id=second)] == ["refused"]

    _, other = served.preview("extend e2e-dev-6")
    served.click("plan_confirm", other, user="UMALLORY", response="mallory")
    served.slack.wait_for_response("mallory", 10)
    served.slack.wait_for(lambda c: c.body.get("channel") == AUDIT and "UMALLORY" in str(c.body))
    time.sleep(0.5)
    about = [card_text(m) for m in served.slack.messages(AUDIT)]
    assert not any(second in m for m in about), "a stale click is recorded, not announced"
    assert any("Refused: <@UMALLORY> on extend" in m for m in about)


def test_the_small_ones(week: tuple[Served, Path]) -> None:
    served, _ = week
    premium = card_text(say(served, "upgrade e2e-prem-2 premium"))
    assert "App `e2e-prem-2` (`1400000202`) is on the premium plan" in premium
    past = card_text(say(served, "list e2e page=99"))
    assert re.search(r"Page 99 is past the end: \d+ apps matching `e2e` fill \d+ pages", past)
    assert "No apps" not in past
    viewer = card_text(say(served, "help", user=VIEWER))
    assert f"ask a planbot admin (<@{ADMIN}>" in viewer and "`operator` role" in viewer
    sent = every_text_sent(served.slack)
    assert "(s)" not in sent


def test_the_shell_prints_date_tokens_by_their_fallback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PLANBOT_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'shell.sqlite3'}"
    done = subprocess.run(
        [PLANBOT, "--no-color", "-c", "/plan status demo-chat"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "<!date" not in done.stdout
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \(Asia/Shanghai\)", done.stdout)


def test_text_limits_are_counted_as_slack_counts_them(week: tuple[Served, Path]) -> None:
    served, _ = week
    card = say(served, "create " + "😀" * 70)  # 70 characters, 140 UTF-16 code units
    title = card["blocks"][0]["text"]["text"]
    assert title.startswith("Create developer app 😀") and title.endswith("…")
    assert len(title.encode("utf-16-le")) // 2 <= 150, "Slack's header limit, in code units"
    assert "\ud83d" not in title.replace("😀", ""), "no emoji cut in half"
