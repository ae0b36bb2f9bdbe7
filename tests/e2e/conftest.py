"""End to end: the real `planbot serve` process, signed Slack requests, a fake Slack on loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from core import AppState, SqlStore, make_engine
from fakes.signing import block_action_body, signed_headers, slash_command_body
from fakes.slack import FakeSlack

SECRET = "e2e-signing-secret"
ADMIN = "UADMIN"
TEAM = "CTEAM"
AUDIT = "CAUDIT"
#: the channels planbot is a member of in the tests (`users.conversations` lists them at start)
JOINED = {TEAM, AUDIT, "CAPPROVALS", "COPS", "COTHER", "CNEWTEAM"}
PLANBOT = str(Path(sys.executable).with_name("planbot"))


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _day(delta: float) -> str:
    return (datetime.now(UTC) + timedelta(days=delta)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def seed_csv() -> str:
    """The apps every end-to-end test can use (each test takes its own)."""
    rows = [
        "app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at,disabled_at"
    ]
    for n in range(1, 60):
        rows.append(f"14000000{n:02d},e2e-dev-{n},developer,{_day(-5)},,active,{TEAM},{_day(20)},")
    for n in range(1, 10):
        rows.append(f"14000001{n:02d},e2e-std-{n},standard,2025-01-01,,active,{TEAM},,")
        rows.append(f"14000002{n:02d},e2e-prem-{n},premium,2025-02-01,,active,{TEAM},,")
        rows.append(
            f"14000003{n:02d},e2e-disabled-{n},standard,2025-01-01,,disabled,{TEAM},,{_day(-10)}"
        )
        rows.append(f"14000004{n:02d},e2e-legacy-{n},standard,2021-05-01,,active,{TEAM},,")
        rows.append(
            f"14000005{n:02d},e2e-suspended-{n},developer,{_day(-40)},,suspended,{TEAM},{_day(-3)},"
        )
    # standard from 2025 on, off at noon on 10 March 2025 (UTC+8): a bill with two runs (imported
    # as purged, so that no sweep changes it)
    rows.append(f"1400000601,e2e-bill-1,standard,2025-01-01,,purged,{TEAM},,2025-03-10T04:00:00Z")
    rows.append(f"1400000900,<!channel> & co,developer,{_day(-2)},,active,,{_day(25)},")
    return "\n".join(rows) + "\n"


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started (the delivery worker of a `planbot serve`, say)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


@dataclass
class Served:
    """A running `planbot serve` and the fake Slack it talks to."""

    url: str
    slack: FakeSlack
    database_url: str
    http: httpx.Client
    process: subprocess.Popen[bytes]

    def command(
        self,
        text: str,
        *,
        user: str = ADMIN,
        channel: str = TEAM,
        response: str = "default",
        timestamp: int | None = None,
        secret: str = SECRET,
    ) -> httpx.Response:
        """POST a signed `/plan <text>`."""
        body = slash_command_body(text, user, channel, self.slack.response_url(response))
        return self.http.post(
            f"{self.url}/slack/events",
            content=body,
            headers=signed_headers(body, secret, timestamp),
        )

    def preview(self, text: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
        """A preview card and the request id its Confirm button carries."""
        response = self.command(text, **kwargs)
        assert response.status_code == 200, response.text
        card = response.json()
        return card, button_value(card, "plan_confirm")

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = ADMIN,
        channel: str = TEAM,
        response: str = "default",
    ) -> httpx.Response:
        """POST a signed button click."""
        body = block_action_body(action_id, value, user, channel, self.slack.response_url(response))
        return self.http.post(
            f"{self.url}/slack/events", content=body, headers=signed_headers(body, SECRET)
        )

    def app(self, app_id: str) -> AppState:
        """The app as stored now."""
        engine = make_engine(self.database_url)
        try:
            with SqlStore(engine).unit_of_work(write=False) as uow:
                state = uow.apps.get(app_id)
                assert state is not None
                return state
        finally:
            engine.dispose()


def button_value(card: dict[str, Any], action_id: str) -> str:
    """The value of the card's button with that action id."""
    for block in card.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {card}")


def card_text(message: dict[str, Any]) -> str:
    """Every piece of text in a message, joined, for assertions."""
    parts = [str(message.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks", []))
    return "\n".join(parts)


def planbot_env(
    slack: FakeSlack, database_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment a test's `planbot` processes run with (and the fake Slack they talk to
    knows planbot is in the tests' channels)."""
    slack.joined |= JOINED
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-e2e",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "PLANBOT_AUDIT_CHANNEL": AUDIT,
        "PLANBOT_ADMINS": ADMIN,
        "PLANBOT_LOG_LEVEL": "WARNING",
        # the fake's response_url receiver is on loopback, not hooks.slack.com
        "PLANBOT_RESPONSE_URL_HOSTS": f"{slack.host}:{slack.port}",
        **(extra or {}),
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def start_planbot(
    tmp: Path,
    slack: FakeSlack,
    *,
    database_url: str | None = None,
    extra: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> Served:
    """Import the seed apps with the CLI, then start `planbot serve [args]`, wait for /healthz."""
    database_url = database_url or f"sqlite:///{tmp / 'planbot.sqlite3'}"
    env = planbot_env(slack, database_url, extra)
    seed = tmp / "seed.csv"
    seed.write_text(seed_csv())
    subprocess.run(
        [PLANBOT, "apps", "import", str(seed)], env=env, check=True, cwd=tmp, capture_output=True
    )
    port = free_port()
    process = subprocess.Popen(
        [PLANBOT, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "server.log", "wb"),  # noqa: SIM115  (kept open for the process)
    )
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(timeout=10)
    deadline = time.monotonic() + 20
    while True:
        try:
            if http.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("planbot serve did not start:\n" + (tmp / "server.log").read_text())
        time.sleep(0.05)
    if "--no-delivery" not in args:
        first_sweep_done(database_url, deadline)
    return Served(url, slack, database_url, http, process)


def first_sweep_done(database_url: str, deadline: float) -> None:
    """Wait for the delivery worker's first sweep (it marks how far its reminders looked), so
    that a test's requests never meet a sweep that started before them."""
    engine = make_engine(database_url)
    try:
        while True:
            with engine.connect() as connection:
                query = sa.text("SELECT count(*) FROM lifecycle_mark WHERE name = 'dev_reminders'")
                if connection.execute(query).scalar_one():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the delivery worker never swept")
            time.sleep(0.05)
    finally:
        engine.dispose()


def stop_planbot(served: Served) -> None:
    """SIGTERM, then wait."""
    served.http.close()
    served.process.terminate()
    try:
        served.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        served.process.kill()


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API on loopback."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def planbot(tmp_path_factory: pytest.TempPathFactory, slack: FakeSlack) -> Iterator[Served]:
    """A `planbot serve` process shared by a module's tests (each test uses its own apps)."""
    served = start_planbot(tmp_path_factory.mktemp("planbot"), slack)
    yield served
    stop_planbot(served)
