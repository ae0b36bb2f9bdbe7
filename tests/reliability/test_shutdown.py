"""SIGTERM while requests are in flight: they all finish, then the process exits 0 within 10 s.

To have requests really in flight, the test holds SQLite's write lock: every preview and
confirmation sent meanwhile waits inside the server for the database. SIGTERM arrives while they
wait; the lock is released a moment later, and every one of them must still be answered.
"""

from __future__ import annotations

import concurrent.futures
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from fakes.slack import FakeSlack
from tests.e2e.conftest import card_text, start_planbot
from tests.reliability.conftest import consistency_problems, query, record

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIRMS = [f"14000000{n:02d}" for n in range(31, 41)]
PREVIEWS = [f"14000000{n:02d}" for n in range(41, 51)]


def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    tmp_path: Path, slack: FakeSlack
) -> None:
    planbot = start_planbot(tmp_path, slack)
    planbot.http = httpx.Client(timeout=30)
    requests = {app: planbot.preview(f"extend {app}")[1] for app in CONFIRMS}

    lock = sqlite3.connect(tmp_path / "planbot.sqlite3", isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")  # the server's writers now wait for the database
    try:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            clicks = [
                pool.submit(planbot.click, "plan_confirm", rid, response=f"term-{app}")
                for app, rid in requests.items()
            ]
            previews = [pool.submit(planbot.command, f"extend {app}") for app in PREVIEWS]
            time.sleep(1.0)  # all 20 are inside the server, waiting for the database
            assert not any(f.done() for f in clicks + previews), "they should be waiting"
            planbot.process.send_signal(signal.SIGTERM)
            terminated = time.monotonic()
            time.sleep(0.5)
            lock.execute("ROLLBACK")
            answers = [f.result() for f in clicks + previews]
            answered_s = time.monotonic() - terminated
        code = planbot.process.wait(timeout=15)
        exited_s = time.monotonic() - terminated
    finally:
        lock.close()
        planbot.http.close()
        if planbot.process.poll() is None:
            planbot.process.kill()

    assert [a.status_code for a in answers] == [200] * 20
    for answer in answers[len(clicks) :]:
        assert "plan_confirm" in answer.text, answer.text  # a full preview card
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]
    assert exited_s < 10
    for app in CONFIRMS:  # the card replacements went out before the process ended
        assert "extended" in card_text(slack.wait_for_response(f"term-{app}", timeout=1))
    versions = {
        r.app_id: r.version for r in query(planbot.database_url, "SELECT app_id, version FROM app")
    }
    assert all(versions[app] == 2 for app in CONFIRMS)
    assert consistency_problems(planbot.database_url) == []
    record(
        "clean shutdown",
        in_flight=len(answers),
        answered_200=sum(a.status_code == 200 for a in answers),
        all_answered_after_s=round(answered_s, 2),
        exit_code=code,
        exited_after_s=round(exited_s, 2),
    )
