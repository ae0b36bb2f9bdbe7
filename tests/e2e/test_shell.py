"""`planbot shell` driven as a person would: one-shot commands, and a session on a pseudo-terminal.

Each test runs the real console script in its own working directory, so the shell creates and
seeds a fresh SQLite file there. `--no-color` keeps the output plain text (and the test checks
that not one escape code gets through). Every wait is bounded.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import blocks
from bot.shell import is_refusal, split_commands, wire_text
from core import AppNotFound

pytestmark = pytest.mark.e2e

PLANBOT = str(Path(sys.executable).with_name("planbot"))
PROMPT = "planbot> "
TIMEOUT = 30.0  # generous: a loaded CI machine starts Python slowly


def shell_env(home: Path) -> dict[str, str]:
    """The environment of a newcomer: no Slack credentials, no planbot settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "PLANBOT_", "DATABASE_URL", "NO_COLOR"))
    }
    env.update(HOME=str(home), USER="tester", TERM="dumb", LANG="C.UTF-8")
    return env


def run_shell(cwd: Path, *args: str, typed: str | None = None) -> subprocess.CompletedProcess[str]:
    """`planbot shell --no-color [args]` in `cwd`, `typed` piped to it as its input."""
    return subprocess.run(
        [PLANBOT, "shell", "--no-color", *args],
        input=typed,
        cwd=cwd,
        env=shell_env(cwd),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def one_shot(cwd: Path, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`planbot shell --no-color [options] -c COMMAND` in `cwd`."""
    return run_shell(cwd, *options, "-c", command)


def test_one_shot_status_prints_the_card_and_exits_0(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "/plan status demo-chat")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo-chat (1400000001)" in result.stdout
    assert "developer ($0.00/month)" in result.stdout
    assert "active" in result.stdout
    assert "\x1b" not in result.stdout
    assert "Traceback" not in result.stderr
    assert (tmp_path / "planbot.sqlite3").is_file()


def test_one_shot_refusal_is_readable_and_exits_1(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "/plan upgrade demo-premium standard")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "⛔" in result.stdout
    assert "developer" in result.stdout  # why: only developer apps can be upgraded
    assert "Traceback" not in result.stdout + result.stderr


def test_one_shot_typo_gets_the_usage_and_exits_1(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "upgrade demo-chat premum")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Did you mean `premium`?" in result.stdout
    assert "Usage: `/plan upgrade" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_acting_as_a_viewer_is_told_which_role_is_missing(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "/plan upgrade demo-chat premium", "--as", "UVIEWER")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs the `operator` role" in result.stdout
    assert "[1] Confirm" not in result.stdout
    # and nothing changed
    status = one_shot(tmp_path, "/plan status demo-chat")
    assert "developer ($0.00/month)" in status.stdout


def test_home_draws_the_home_tab(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "/home")
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    for section in ("Needs you", "Coming up in the next 30 days", "Your apps"):
        assert section in text
    assert "Developer app demo-chat (`1400000001`) expires on" in text
    assert "[2] Extend" in text
    assert "demo-premium (`1400000004`): premium, active" in text
    assert "$699.00 for the month if nothing changes" in text


def test_the_shortcut_modal_finds_apps_by_typing_previews_and_confirms(tmp_path: Path) -> None:
    typed = one_shot(tmp_path, "shortcut; 1 demo")
    assert "1) demo-chat (1400000001)" in typed.stdout and "demo-premium" in typed.stdout
    steps = "shortcut; 1 demo-ch; 5 upgrade; 10 premium; 11; 13"
    result = one_shot(tmp_path, steps)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "Upgrade demo-chat (1400000001) from developer to premium?" in text
    assert "[13] Confirm" in text
    assert "@USHELL upgraded demo-chat" in text  # the audit message
    assert "✅ demo-chat (1400000001) upgraded." in text
    status = one_shot(tmp_path, "/plan status demo-chat")
    assert "premium" in status.stdout


def test_input_that_ends_mid_question_leaves_the_field_empty_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """Piped input that runs out while the shell asks (an option, "Are you sure?") is no
    answer: the field stays empty, the danger is not done, and nothing is read as typed."""
    result = run_shell(tmp_path, typed="/plan\n1\ndemo-standard\n5\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1) Change the edition or add-ons" in result.stdout
    assert "Type `5 <text>` to fill in Operation." in result.stdout
    assert "No option" not in result.stdout
    preview = one_shot(tmp_path, "/plan disable demo-standard").stdout
    danger = run_shell(tmp_path, typed=f"/plan disable demo-standard\n{confirm_number(preview)}\n")
    assert "Are you sure?" in danger.stdout and "nothing changed" in danger.stdout
    status = one_shot(tmp_path, "/plan status demo-standard").stdout
    assert "active" in status and "disabled" not in status


def test_a_modal_refusal_shows_under_its_field_and_exits_1(tmp_path: Path) -> None:
    result = one_shot(tmp_path, "shortcut; 2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "⛔ Pick an app." in result.stdout
    viewer = one_shot(tmp_path, "shortcut; 1 demo-prem; 5 config", "--as", "UVIEWER")
    assert "There is nothing you may do to this app now." in viewer.stdout
    assert "Traceback" not in viewer.stdout + viewer.stderr


class Terminal:
    """The shell on a pseudo-terminal: type a line, read until a marker, never wait forever."""

    def __init__(self, cwd: Path, *options: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 100, 0, 0))
        self.process = subprocess.Popen(
            [PLANBOT, "shell", "--no-color", *options],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=shell_env(cwd),
            close_fds=True,
            start_new_session=True,
        )
        os.close(slave)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""
        self.transcript = ""

    def read_until(self, marker: str, timeout: float = TIMEOUT) -> str:
        """Everything shown before `marker` (which is consumed)."""
        deadline = time.monotonic() + timeout
        while marker not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {marker!r} within {timeout}s; screen:\n{self.pending}")
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the shell closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the shell ended before {marker!r}; screen:\n{self.pending}")
            text = self.decoder.decode(chunk).replace("\r\n", "\n").replace("\r", "")
            self.pending += text
            self.transcript += text
        shown, _, self.pending = self.pending.partition(marker)
        return shown

    def type(self, line: str) -> None:
        """Type a line and press Enter."""
        os.write(self.master, line.encode() + b"\n")

    def run(self, line: str) -> str:
        """Type a line; what was shown until the next prompt."""
        self.type(line)
        return self.read_until(PROMPT)

    def close(self) -> int | None:
        """Wait briefly for the shell to end (killing it if it does not); its exit status."""
        try:
            return self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
            return None
        finally:
            os.close(self.master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        yield term
    finally:
        if term.process.poll() is None:
            os.killpg(term.process.pid, signal.SIGKILL)
            term.process.wait(timeout=5)


def confirm_number(card: str) -> str:
    match = re.search(r"\[(\d+)\] Confirm", card)
    assert match, f"no Confirm button in:\n{card}"
    return match.group(1)


def test_a_session_upgrades_with_a_button_and_refuses_a_danger_answered_no(
    terminal: Terminal, tmp_path: Path
) -> None:
    banner = terminal.read_until(PROMPT)
    assert "You are USHELL (tester), admin" in banner
    assert "demo-chat" in banner

    # An upgrade: previewed, confirmed by pressing the button's number, audited, applied.
    preview = terminal.run("/plan upgrade demo-chat premium")
    assert "Upgrade demo-chat (1400000001) from developer to premium?" in preview
    assert "can't be undone" in preview
    outcome = terminal.run(confirm_number(preview))
    assert "demo-chat (1400000001) upgraded." in outcome
    assert "── #CAUDIT (audit) ──" in outcome
    audit = outcome.split("── #CAUDIT (audit) ──", 1)[1]
    assert "@USHELL upgraded demo-chat" in audit
    assert outcome.index("upgraded.") < outcome.index("── #CAUDIT")
    status = terminal.run("status demo-chat")
    assert "premium ($699.00/month)" in status

    # A danger button asks first; answering "n" changes nothing.
    preview = terminal.run("/plan disable demo-standard")
    assert "service stops at once" in preview
    terminal.type(confirm_number(preview))
    question = terminal.read_until("[y/N] ")
    assert "Are you sure?" in question
    answered = terminal.run("n")
    assert "nothing changed" in answered
    assert "#CAUDIT" not in answered
    status = terminal.run("/plan status demo-standard")
    assert "active" in status
    assert "disabled" not in status

    # Ctrl-D leaves; the session kept its history; not one escape code was drawn.
    os.write(terminal.master, b"\x04")
    assert terminal.close() == 0
    assert "\x1b" not in terminal.transcript
    history = (tmp_path / ".planbot_history").read_text()
    assert "/plan upgrade demo-chat premium" in history.splitlines()
    assert "n" not in history.splitlines()  # the answer to "Are you sure?" is not a command


def test_refusals_are_recognised_by_what_the_bot_builds() -> None:
    assert is_refusal(blocks.refusal(AppNotFound("demo-nope")))
    assert is_refusal(blocks.failure_message("abc123"))
    assert not is_refusal(blocks.text_message(":information_source: Already done."))
    assert not is_refusal(blocks.help_message("Usage: `/plan help`"))


def test_a_script_splits_on_newlines_and_semicolons_outside_quotes() -> None:
    script = '/plan status demo-chat; 1\n/plan create "a;b"\n\n'
    assert split_commands(script) == ["/plan status demo-chat", "1", '/plan create "a;b"']
    assert wire_text("access grant @UVIEWER1 operator #CTEAM1") == (
        "access grant <@UVIEWER1> operator <#CTEAM1>"
    )
    assert wire_text("create <b> & co") == "create &lt;b&gt; &amp; co"
