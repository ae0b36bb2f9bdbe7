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
import csv
import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from bot.words import BUSY, GROUPS_NOT_YET_KNOWN
from core import SqlStore, make_engine
from core.audit import AuditRecord
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    PLANBOT,
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
    serve,
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


# --- 6: user groups, slow to read ----------------------------------------------------------------

GROUPS = ("S0ONE", "S0TWO", "S0THREE", "S0FOUR")
MEMBER = "UGROUPIE"  # in the fourth group granted only
LATE = "ULATE"  # in a fifth group, granted later


def test_user_groups_slow_to_read_never_hold_an_ack(tmp_path: Path, slack: FakeSlack) -> None:
    for group in GROUPS[:3]:
        slack.usergroups[group] = ["USOMEONE"]
    slack.usergroups["S0FOUR"] = [MEMBER]
    slack.usergroups["S0FIVE"] = [LATE]
    slack.method_latency["usergroups.users.list"] = 5.0
    planbot = start_planbot(tmp_path, slack, extra={"PLANBOT_DEFAULT_ROLE": "nobody"})
    acks: list[float] = []

    def ack(text: str, user: str = ADMIN) -> str:
        response, elapsed = timed(lambda: planbot.command(text, user=user))
        acks.append(elapsed)
        return said(response)

    try:
        planbot.http = httpx.Client(timeout=30)
        granted = time.monotonic()
        for group in GROUPS:
            assert "now has the `viewer` role" in ack(f"access grant <!subteam^{group}|g> viewer")
        first = ack("status 1400000030", user=MEMBER)  # their groups are still being read
        assert GROUPS_NOT_YET_KNOWN in first, first
        deadline = time.monotonic() + 30
        while GROUPS_NOT_YET_KNOWN in (answer := ack("status 1400000030", user=MEMBER)):
            assert time.monotonic() < deadline, "the groups were never read"
            time.sleep(0.25)
        known_after_s = time.monotonic() - granted
        assert "1400000030" in answer and "role" not in answer  # a status card
        # the four were read side by side: one after another would take 20 s
        assert known_after_s < 12, known_after_s
        # a fifth grant: nobody's known groups are forgotten, nobody waits for Slack
        assert "now has the `viewer` role" in ack("access grant <!subteam^S0FIVE|g5> viewer")
        assert "1400000030" in ack("status 1400000030", user=MEMBER)
        assert GROUPS_NOT_YET_KNOWN in ack("status 1400000030", user=LATE)
        # someone who could hold no role through the groups read so far: refused for the role
        # at once, once no group is still being read
        deadline = time.monotonic() + 30
        while GROUPS_NOT_YET_KNOWN in (answer := ack("status 1400000030", user=LATE)):
            assert time.monotonic() < deadline, "the fifth group was never read"
            time.sleep(0.25)
        assert "1400000030" in answer
        # Slack now fails every lookup: the members last read still count
        slack.outage(30, "server_error", methods=["usergroups.users.list"])
        assert "1400000030" in ack("status 1400000030", user=MEMBER)
        assert "role" in ack("status 1400000030", user="UNOBODY")
    finally:
        slack.heal()
        slack.method_latency.clear()
        stop_planbot(planbot)
    assert max(acks) < 1.0, acks
    record(
        "user groups (Slack answers after 5 s)",
        acks=len(acks),
        slowest_ack_s=round(max(acks), 3),
        four_groups_known_after_s=round(known_after_s, 1),
    )


# --- 13: CSV injection ---------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_the_csv_export_writes_no_cell_a_spreadsheet_would_run(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'planbot.sqlite3'}"
    import_csv(database_url, developer_csv(1400000001, 2))
    engine = make_engine(database_url)
    try:
        with SqlStore(engine).unit_of_work() as uow:
            for n, formula in enumerate(FORMULAS):
                uow.audit.append(
                    AuditRecord(
                        at=datetime.now(UTC),
                        actor_id=f"U{n}",
                        actor_name=formula,
                        action="test",
                        outcome="applied",
                        detail=formula,
                    )
                )
            uow.commit()
    finally:
        engine.dispose()
    exported = tmp_path / "audit.csv"
    result = subprocess.run(
        [PLANBOT, "audit", "export", "--format", "csv", "--output", str(exported)],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(exported.read_bytes().decode("utf-8"), newline="")))
    dangerous = [
        (row["seq"], name, value)
        for row in rows
        for name, value in row.items()
        if value and value[0] in "=+-@\t\r"
    ]
    assert dangerous == []
    names = [row["actor_name"] for row in rows if row["action"] == "test"]
    assert names == ["'" + formula for formula in FORMULAS]  # kept, readable, quoted
    record("CSV injection", formula_cells=len(FORMULAS) * 2, cells_starting_like_a_formula=0)


# --- 14: names and ids ---------------------------------------------------------------------------

BAD_NAMES = {
    "a newline": '"pay\n:rotating_light: URGENT pay at evil.example"',  # quoted: kept whole
    "U+202E": "gnp\u202eexe.app",
    "a zero-width space": "dev-1\u200b",
    "U+2029": '"a\u2029b"',
    "Arabic-Indic digits": "\u0661\u0664\u0660\u0660",
}


@pytest.mark.postgres
def test_names_are_one_rule_and_thirty_creates_on_two_replicas_make_one_app(
    tmp_path: Path, slack: FakeSlack, postgres_url: str
) -> None:
    extra = {"PLANBOT_SWEEP_INTERVAL": "2"}
    first = start_planbot(tmp_path, slack, database_url=postgres_url, extra=extra)
    second = serve(tmp_path, slack, postgres_url, extra=extra, log="replica-b.log")
    try:
        for replica in (first, second):
            replica.http.close()
            replica.http = httpx.Client(timeout=60)
        apps_before = int(query(postgres_url, "SELECT count(*) AS n FROM app")[0].n)
        for what, name in BAD_NAMES.items():
            answer = said(first.command(f"create {name}"))
            assert "can't be used" in answer or "can't be a name" in answer, (what, answer)
            assert FAILURE not in answer
        # an Arabic-Indic id is not an id: no app is found by it
        assert "No app" in said(first.command("status \u0661\u0664\u0660\u0660\u0660\u0660"))
        requests = [first.preview("create Racing Car")[1] for _ in range(30)]
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            acks = list(
                pool.map(
                    lambda i: (
                        (first if i % 2 else second)
                        .click("plan_confirm", requests[i], response=f"race-{i}")
                        .status_code
                    ),
                    range(30),
                )
            )
        assert acks == [200] * 30
        replies = {
            i: card_text(slack.wait_for_response(f"race-{i}", timeout=30)) for i in range(30)
        }
        created = [i for i, text in replies.items() if "created" in text.lower()]
        refused = [i for i, text in replies.items() if "already exists" in text]
        # 30 changes at once queue for the audit chain's head: one may be told planbot is busy
        # (nothing changed) when its turn does not come within the 2 s a request waits
        busy = [i for i, text in replies.items() if BUSY in text]
        other = {i: t for i, t in replies.items() if i not in {*created, *refused, *busy}}
        assert len(created) == 1 and len(refused) + len(busy) == 29 and refused, other
        assert not any(FAILURE in text for text in replies.values())
        named = query(
            postgres_url, "SELECT count(*) AS n FROM app WHERE lower(name) = 'racing car'"
        )[0].n
        assert named == 1
        assert int(query(postgres_url, "SELECT count(*) AS n FROM app")[0].n) == apps_before + 1
        assert "already exists" in said(second.command("create RACING car"))
    finally:
        stop_all(first, second)
    record(
        "names and ids",
        bad_names_refused=len(BAD_NAMES),
        concurrent_creates=30,
        apps_made=1,
        refused_already_exists=len(refused),
        told_busy=len(busy),
    )


# --- 15: import memory, and a full disk ----------------------------------------------------------


def big_csv(path: Path, rows: int, *, first: int = 0) -> None:
    """`rows` apps, numbered from `first` (ids and names), of three plans and 50 teams."""
    soon = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    with open(path, "w", encoding="utf-8") as out:
        out.write("app_id,name,plan,created_at,billing_mode,status,owner_channel,dev_expires_at\n")
        for n in range(first, first + rows):
            plan = ("developer", "standard", "premium")[n % 3]
            expires = soon if plan == "developer" else ""
            out.write(f"{1500000000 + n},bulk-app-{n},{plan},2025-0{1 + n % 9}-1{n % 10},,")
            out.write(f"active,C0TEAM{n % 50},{expires}\n")


def run_measured(
    args: list[str], env: dict[str, str], cwd: Path, limit: Callable[[], None] | None = None
) -> tuple[int, str, str, float, float]:
    """Exit code, stdout, stderr, peak RSS (MB, the process's own, by wait4) and seconds."""
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    out, err = "", ""
    reader = concurrent.futures.ThreadPoolExecutor(2)
    stdout = reader.submit(process.stdout.read) if process.stdout else None
    stderr = reader.submit(process.stderr.read) if process.stderr else None
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out = stdout.result() if stdout else ""
    err = stderr.result() if stderr else ""
    reader.shutdown()
    return process.returncode, out, err, usage.ru_maxrss / 1024, time.monotonic() - started


def test_importing_300000_rows_stays_under_300_mb_and_a_full_disk_imports_nothing(
    tmp_path: Path,
) -> None:
    database = tmp_path / "planbot.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "PLANBOT_LOG_LEVEL": "WARNING"}
    first = tmp_path / "first.csv"
    big_csv(first, 10)
    seeded = subprocess.run([PLANBOT, "apps", "import", str(first)], env=env, cwd=tmp_path)
    assert seeded.returncode == 0
    # a full disk: no file may grow more than 1 MiB past the largest now (writes past it fail)
    size = max(p.stat().st_size for p in tmp_path.glob("planbot.sqlite3*"))

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + (1 << 20), size + (1 << 20)))

    some = tmp_path / "some.csv"
    big_csv(some, 30_000, first=10)
    code, out, err, _, _ = run_measured(
        [PLANBOT, "apps", "import", str(some)], env, tmp_path, limit=full_disk
    )
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback, no SQL
    assert err.startswith("planbot: Nothing was imported") and "INSERT" not in err, err
    full_disk_said = err.strip()
    assert int(query(f"sqlite:///{database}", "SELECT count(*) AS n FROM app")[0].n) == 10
    rows = tmp_path / "apps.csv"
    big_csv(rows, 300_000, first=10)
    code, out, err, peak_mb, seconds = run_measured(
        [PLANBOT, "apps", "import", str(rows)], env, tmp_path
    )
    assert code == 0, err
    assert out.strip() == "imported 300000 apps"
    assert int(query(f"sqlite:///{database}", "SELECT count(*) AS n FROM app")[0].n) == 300_010
    assert peak_mb < 300, f"peak RSS {peak_mb:.0f} MB"
    record(
        "import memory",
        rows=300_000,
        peak_rss_mb=round(peak_mb),
        seconds=round(seconds, 1),
        full_disk=full_disk_said,
    )


# --- 17: impossible months -----------------------------------------------------------------------


def test_impossible_months_are_refused_with_the_months_one_can_ask_for(
    tmp_path: Path, slack: FakeSlack
) -> None:
    planbot = start_planbot(tmp_path, slack)
    try:
        before = pending_requests(planbot.database_url)
        answers = {
            month: said(planbot.command(f"bill 1400000101 {month}"))
            for month in ("9999-12", "0000-01", "10000-01", "2025-13", "1969-12", "2025-00")
        }
    finally:
        stop_planbot(planbot)
    for month, answer in answers.items():
        assert FAILURE not in answer, (month, answer)
    assert "Bills can be asked for from 2025-01 (the app's creation) to" in answers["9999-12"]
    assert "too far back" in answers["0000-01"] and "1970" in answers["0000-01"]
    assert "is not a month" in answers["10000-01"]
    assert "01 to 12" in answers["2025-13"] and "01 to 12" in answers["2025-00"]
    assert pending_requests(planbot.database_url) == before
    record("impossible months", months_refused=len(answers), generic_failures=0)
