"""Attacks on what planbot keeps and reads: a database that does not answer, slow user groups,
spreadsheet formulas, names and dates that should not exist, a huge import, impossible months.

- A SQLite file locked by another process, and a PostgreSQL server behind a proxy that accepts
  connections and relays nothing: every request is answered within 3 s, saying planbot is busy
  and nothing was changed; /healthz says 503 `{"ok": false}` within 2 s, and nothing more.
- A nearly full disk: /healthz says 503.
- Slack taking 5 s to list a user group's members: no ack waits for it; a person whose groups
  were never read is asked to try again (not refused); a grant does not make anyone wait.
- `planbot audit export --format csv`: no cell starts like a formula.
- Names with a newline, U+202E or a zero-width space, and other-script digits for ids, are
  refused; 30 creates of one name at once on two replicas make one app.
- `planbot apps import` of 300,000 rows stays under 300 MB; on a full disk it says so in one
  line and imports nothing.
- `/plan bill <app> 9999-12` (and year 0, and 10000) is refused with the months one can ask for.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot.words import BUSY
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    Served,
    card_text,
    start_planbot,
    stop_planbot,
)
from tests.reliability.conftest import (
    developer_csv,
    import_csv,
    query,
    record,
    spawn,
    stop_all,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAILURE = "Something went wrong"  # the error handler's words (a traceback's stand-in)


def said(response: httpx.Response) -> str:
    """What the person reads in an ack."""
    assert response.status_code == 200, response.text
    return card_text(response.json()) if response.content else ""


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def pending_requests(database_url: str) -> int:
    return int(query(database_url, "SELECT count(*) AS n FROM pending_request")[0].n)


# --- 5 and 12: a database that does not answer ---------------------------------------------------

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


class HeldLock:
    """Another process holding SQLite's write lock (BEGIN EXCLUSIVE) until `release`."""

    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(10)


def assert_busy(response: httpx.Response, elapsed: float, what: str) -> None:
    text = said(response)
    assert elapsed < 3.0, f"{what}: answered after {elapsed:.2f} s"
    assert BUSY in text, f"{what}: {text}"
    assert FAILURE not in text


def health(served: Served) -> tuple[int, Any, float]:
    response, elapsed = timed(lambda: served.http.get(f"{served.url}/healthz"))
    return response.status_code, response.json(), elapsed


def wait_healthy(served: Served, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while health(served)[0] != 200:
        assert time.monotonic() < deadline, "never healthy again"
        time.sleep(0.2)


def test_a_sqlite_file_locked_by_another_process_is_answered_busy_within_3_s(
    tmp_path: Path, slack: FakeSlack
) -> None:
    planbot = start_planbot(tmp_path, slack)
    try:
        planbot.http = httpx.Client(timeout=30)
        assert "1400000010" in said(planbot.command("status 1400000010"))
        _, waiting_click = planbot.preview("extend 1400000011")
        requests_before = pending_requests(planbot.database_url)
        versions_before = {a: planbot.app(a).version for a in ("1400000010", "1400000011")}
        lock = HeldLock(tmp_path / "planbot.sqlite3")
        try:
            preview, preview_s = timed(lambda: planbot.command("extend 1400000010"))
            assert_busy(preview, preview_s, "a preview")
            time.sleep(1.0)
            status, status_s = timed(lambda: planbot.command("status 1400000010"))
            assert status_s < 3.0 and FAILURE not in said(status)
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                burst = list(
                    pool.map(
                        lambda n: timed(lambda: planbot.command(f"extend 14000000{n}")),
                        range(12, 18),
                    )
                )
            for response, elapsed in burst:
                assert_busy(response, elapsed, "one of 6 previews at once")
            clicked = time.monotonic()
            click, click_s = timed(
                lambda: planbot.click("plan_confirm", waiting_click, response="busy-click")
            )
            assert click.status_code == 200 and click_s < 3.0
            told = card_text(slack.wait_for_response("busy-click", timeout=3))
            told_s = time.monotonic() - clicked
            assert BUSY in told, told
            assert told_s < 3.5
            code, body, health_s = health(planbot)
            assert (code, body) == (503, {"ok": False})
            assert health_s < 2.5
        finally:
            lock.release()
        assert pending_requests(planbot.database_url) == requests_before  # nothing was written
        assert {a: planbot.app(a).version for a in versions_before} == versions_before
        wait_healthy(planbot)
        assert "plan_confirm" in json.dumps(planbot.command("extend 1400000010").json())
        planbot.click("plan_confirm", waiting_click, response="after-lock")  # the card stayed
        assert "extended" in card_text(slack.wait_for_response("after-lock", timeout=10))
    finally:
        stop_planbot(planbot)
    record(
        "database waits (SQLite locked)",
        preview_s=round(preview_s, 2),
        read_1s_later_s=round(status_s, 2),
        slowest_of_6_at_once_s=round(max(e for _, e in burst), 2),
        click_ack_s=round(click_s, 2),
        click_told_s=round(told_s, 2),
        healthz=f"{code} in {health_s:.2f} s",
    )


class SilentProxy:
    """A TCP proxy to PostgreSQL that can stop relaying: it then accepts connections and never
    relays a byte, on the connections it had and on new ones (a network that drops everything)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.relaying = threading.Event()
        self.relaying.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def silence(self) -> None:
        self.relaying.clear()

    def relay(self) -> None:
        self.relaying.set()

    def close(self) -> None:
        self.closed = True
        self.relaying.set()
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.relaying.wait()  # accepted; relayed only once relaying again
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self.sockets.append(server)
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                self.relaying.wait()
                data = source.recv(65536)
                if not data:
                    break
                self.relaying.wait()  # read just as it went silent: held back
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.postgres
def test_postgresql_behind_a_proxy_that_relays_nothing_is_answered_busy_within_3_s(
    tmp_path: Path, slack: FakeSlack, postgres_databases: Callable[[], str]
) -> None:
    database = sa.engine.make_url(postgres_databases())
    proxy = SilentProxy((database.host or "127.0.0.1", database.port or 5432))
    through = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    planbot = start_planbot(tmp_path, slack, database_url=through)
    try:
        planbot.http = httpx.Client(timeout=30)
        assert "1400000020" in said(planbot.command("status 1400000020"))
        proxy.silence()
        status, status_s = timed(lambda: planbot.command("status 1400000020"))
        assert_busy(status, status_s, "status")
        preview, preview_s = timed(lambda: planbot.command("extend 1400000021"))
        assert_busy(preview, preview_s, "a preview")
        code, body, health_s = health(planbot)
        assert (code, body) == (503, {"ok": False})
        assert health_s < 2.5
        again, again_s = timed(lambda: planbot.command("status 1400000020"))
        assert_busy(again, again_s, "status again")
        proxy.relay()
        wait_healthy(planbot)
        assert "1400000020" in said(planbot.command("status 1400000020"))
    finally:
        proxy.relay()
        stop_planbot(planbot)
        proxy.close()
    log = (tmp_path / "server.log").read_text()
    assert "health check failed" in log  # the reason is in the log, not in the answer
    record(
        "database waits (PostgreSQL silent)",
        status_s=round(status_s, 2),
        preview_s=round(preview_s, 2),
        status_again_s=round(again_s, 2),
        healthz=f"{code} in {health_s:.2f} s",
    )


def test_healthz_says_503_with_nothing_more_when_the_disk_is_nearly_full(
    tmp_path: Path, slack: FakeSlack
) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    # the free space under which the store counts as unwritable, set just above what is free:
    # what a full disk looks like to the check, without filling the machine's disk
    extra = {"PLANBOT_HEALTH_MIN_FREE_MB": str(free // (1 << 20) + 1)}
    database_url = f"sqlite:///{tmp_path / 'planbot.sqlite3'}"
    import_csv(database_url, developer_csv(1400000001, 3))
    starting = spawn(tmp_path, slack, database_url, extra=extra)
    http = httpx.Client(timeout=10)
    deadline = time.monotonic() + 30
    while True:  # up: it answers, whatever it says
        try:
            answer = http.get(f"{starting.url}/healthz")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and starting.process.poll() is None
            time.sleep(0.05)
    planbot = Served(starting.url, slack, database_url, http, starting.process)
    try:
        code, body, elapsed = health(planbot)
        assert (code, body) == (503, {"ok": False})
        assert (answer.status_code, answer.json()) == (503, {"ok": False})
    finally:
        stop_all(planbot)
    assert "health check failed: StoreUnwritable" in (tmp_path / "server.log").read_text()
    record("health on a full disk", healthz=f"{code} {body} in {elapsed:.2f} s")
