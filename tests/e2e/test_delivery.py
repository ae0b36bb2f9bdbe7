"""The delivery worker beside `planbot serve`: audit messages and card replacements leave from it.

A click is acked (and applied) by the server; what reaches Slack afterwards (the audit message, the
card that replaces the preview) is delivered from the outbox by `planbot deliver`, which `serve`
starts, restarts and never leaves behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    AUDIT,
    PLANBOT,
    card_text,
    child_pids,
    planbot_env,
    start_planbot,
    stop_planbot,
)
from tests.support.waiting import eventually


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def audit_about(slack: FakeSlack, app_id: str) -> list[dict]:
    return [m for m in slack.messages(AUDIT) if app_id in str(m)]


def test_with_no_delivery_worker_the_click_applies_and_planbot_deliver_sends_the_rest(
    tmp_path: Path, slack: FakeSlack
) -> None:
    served = start_planbot(tmp_path, slack, args=["--no-delivery"])
    try:
        _, request_id = served.preview("upgrade 1400000001 premium", response="nd")
        assert served.click("plan_confirm", request_id, response="nd").status_code == 200
        assert served.app("1400000001").plan == "premium"  # applied when the click was acked
        time.sleep(1.0)
        assert slack.responses("nd") == [] and audit_about(slack, "1400000001") == []

        log = (tmp_path / "deliver.log").open("wb")
        worker = subprocess.Popen(
            [PLANBOT, "deliver"],
            env=planbot_env(slack, served.database_url, None),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            card = slack.wait_for_response("nd", timeout=10)
            assert card["replace_original"] is True and "upgraded" in card_text(card)
            eventually(lambda: audit_about(slack, "1400000001"))
        finally:
            worker.terminate()
            assert worker.wait(10) == 0, (tmp_path / "deliver.log").read_text()[-2000:]
            log.close()
        time.sleep(0.3)
        assert len(slack.responses("nd")) == 1 and len(audit_about(slack, "1400000001")) == 1
    finally:
        stop_planbot(served)


def test_a_card_replacement_is_retried_until_the_response_url_takes_it(
    tmp_path: Path, slack: FakeSlack
) -> None:
    served = start_planbot(tmp_path, slack)
    try:
        _, request_id = served.preview("upgrade 1400000002 standard", response="flaky")
        slack.fail_next(2, status=500, methods=["response_url"])
        assert served.click("plan_confirm", request_id, response="flaky").status_code == 200
        card = slack.wait_for_response("flaky", timeout=15)
        assert "upgraded" in card_text(card)
        assert len(slack.failures("response/flaky")) == 2  # refused twice, then taken
        time.sleep(0.3)
        assert len(slack.responses("flaky")) == 1
    finally:
        stop_planbot(served)


def test_the_delivery_worker_is_restarted_and_never_outlives_its_server(
    tmp_path: Path, slack: FakeSlack
) -> None:
    served = start_planbot(tmp_path, slack)
    try:
        (worker,) = eventually(lambda: child_pids(served.process.pid))
        os.kill(worker, signal.SIGKILL)
        (replacement,) = eventually(
            lambda: [c for c in child_pids(served.process.pid) if c != worker and running(c)]
        )
        _, request_id = served.preview("extend 1400000003", response="after-restart")
        assert served.click("plan_confirm", request_id, response="after-restart").status_code == 200
        assert "extended" in card_text(slack.wait_for_response("after-restart", timeout=10))

        served.process.kill()  # the server dies without a chance to stop its worker
        served.process.wait(10)
        eventually(lambda: not running(replacement), timeout=5)
    finally:
        stop_planbot(served)


def test_two_server_processes_share_the_port_and_stop_together(
    tmp_path: Path, slack: FakeSlack
) -> None:
    served = start_planbot(tmp_path, slack, args=["--workers", "2"])
    try:
        processes = eventually(
            lambda: len(child_pids(served.process.pid)) == 3 and child_pids(served.process.pid)
        )  # two servers and one delivery worker
        answered = [served.command("status 1400000004").status_code for _ in range(40)]
        assert answered == [200] * 40
        _, request_id = served.preview("upgrade 1400000004 standard", response="two")
        clicks = [served.click("plan_confirm", request_id, response="two") for _ in range(6)]
        assert {c.status_code for c in clicks} == {200}
        assert "upgraded" in card_text(slack.wait_for_response("two", timeout=10))
        assert served.app("1400000004").version == 2  # applied once
        eventually(lambda: len(audit_about(slack, "1400000004")) == 1)
    finally:
        served.http.close()
        served.process.terminate()
        code = served.process.wait(20)
    assert code == 0
    eventually(lambda: not any(running(p) for p in processes), timeout=5)
