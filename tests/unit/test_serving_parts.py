"""The parts that keep acks fast: group lookups off the ack path and the number of server
processes."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.cli import _workers
from bot.delivery import GroupDirectory
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


class SlowDirectory:
    """usergroups.users.list that answers from `members`, and waits while `gate` is closed."""

    def __init__(self, members: dict[str, list[str]]) -> None:
        self.members = members
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def usergroups_users_list(self, *, usergroup: str) -> dict[str, Any]:
        self.calls += 1
        self.gate.wait(5)
        if self.fail:
            raise OSError("Slack unreachable")
        return {"users": list(self.members[usergroup])}


def test_a_known_group_is_answered_at_once_and_refreshed_in_the_background() -> None:
    slack = SlowDirectory({"S1": ["U1"]})
    directory = GroupDirectory(slack, lambda: {"S1"}, ttl=0.05)  # type: ignore[arg-type]
    assert directory.groups_of("U1") == {"S1"}  # the first lookup is made while it waits
    assert slack.calls == 1
    time.sleep(0.1)  # stale now
    slack.members["S1"] = []  # U1 left the group in Slack
    slack.gate.clear()  # and Slack is slow to say so
    # the last known answer: a lookup made while it waits would have found U1 gone
    assert directory.groups_of("U1") == {"S1"}
    slack.gate.set()
    eventually(lambda: slack.calls == 2)
    eventually(lambda: directory.groups_of("U1") == frozenset())
    directory.close()


def test_a_failed_refresh_keeps_the_last_known_members() -> None:
    slack = SlowDirectory({"S1": ["U1"]})
    directory = GroupDirectory(slack, lambda: {"S1"}, ttl=0.05)  # type: ignore[arg-type]
    assert directory.groups_of("U1") == {"S1"}
    slack.fail = True
    time.sleep(0.1)
    directory.groups_of("U1")  # starts the refresh, which fails
    eventually(lambda: slack.calls == 2)
    time.sleep(0.05)
    assert directory.groups_of("U1") == {"S1"}
    directory.close()


def test_without_a_bot_token_nobody_is_in_any_group() -> None:
    assert GroupDirectory(None, lambda: {"S1"}).groups_of("U1") == frozenset()


def test_the_number_of_workers_is_a_positive_number_or_auto() -> None:
    assert _workers("3") == 3
    assert _workers("auto") >= 1
    for bad in ("0", "-1", "many", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="positive number of workers"):
            _workers(bad)
