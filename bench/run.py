"""Benchmark planbot's Slack acks against a bare Bolt app, all on loopback, in one command.

    python -m bench.run [--quick] [--only all|bare|planbot] [--out bench.md] [--memory-apps 100000]

One process tree: a fake Slack Web API (``fakes.slack``), the bare Bolt app served the
stock way (``bare-stock``), the same app with ``process_before_response=True`` (``bare-ceiling``),
and ``planbot serve`` on SQLite and, when reachable, PostgreSQL, each with 10,000 imported apps.
The servers run side by side and take turns: each scenario (``/plan status``, ``/plan upgrade``
previews, Confirm clicks on fresh pending requests prepared untimed) at each concurrency is sent to
one server after the other, so drift in the machine's background load hits them all alike.
Prints one Markdown table with req/s, latency percentiles, non-200s and acks later than 3 s, and
the ratios planbot / bare-stock and planbot / bare-ceiling.

Then the home tab and the app picker, on each planbot server (10,000 apps) and on a SQLite planbot
with `--home-apps` apps (100,000 by default): the picker's options requests (`block_suggestion`,
the keystrokes of someone typing a name or id) and `app_home_opened` events (each a new event id,
from 500 people), at 16 and 64 concurrent, in a second table.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import csv
import itertools
import json
import math
import os
import platform
import random
import secrets
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from bench.loadgen import LoadResult, Request, check_loopback, run, run_load
from fakes.signing import (
    block_action_body,
    block_suggestion_body,
    event_body,
    signed_headers,
    signed_json_headers,
    slash_command_body,
)

__all__ = ["FULL", "QUICK", "BenchError", "Profile", "main"]

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
USER = "U_BENCH"
CHANNEL = "C_BENCH"
SCENARIOS = ("status", "preview", "confirm")
HOME_SCENARIOS = ("options", "home")
HOME_CONCURRENCIES = (16, 64)
#: what the app picker is asked, as someone types (the fleet's names are bench-app-<i>)
KEYSTROKES = (
    "",
    "b",
    "be",
    "ben",
    "bench-app-1",
    "bench-app-12",
    "bench-app-123",
    "app-99",
    "pp-123",
    "1400001",
    "zzz",
)
BARE_STOCK, BARE_CEILING = "bare-stock", "bare-ceiling"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MB = 1024 * 1024
CSV_HEADER = ["app_id", "name", "plan", "created_at"]  # required by `planbot apps import`
CSV_HEADER += ["billing_mode", "status", "owner_channel", "dev_expires_at"]  # optional


class BenchError(Exception):
    """Something the benchmark needs is missing or broken; the message says what."""


@dataclass(frozen=True)
class Profile:
    """How much load: concurrencies, the most requests per cell, and the time cap of a cell."""

    name: str
    concurrencies: tuple[int, ...]
    counts: Mapping[int, int]
    cell_seconds: float
    apps: int
    warmup: int
    settle: float
    preview_pool: int
    home_apps: int = 100_000


FULL = Profile(
    name="full",
    concurrencies=(1, 16, 64, 256),
    counts={1: 300, 16: 1000, 64: 2000, 256: 2500},
    cell_seconds=2.0,
    apps=10_000,
    warmup=100,
    settle=0.25,
    preview_pool=1000,
)
QUICK = Profile(
    name="quick",
    concurrencies=(1, 16, 64, 256),
    counts={1: 10, 16: 48, 64: 128, 256: 256},
    cell_seconds=1.0,
    apps=1000,
    warmup=20,
    settle=0.1,
    preview_pool=50,
    home_apps=2000,
)


# -- the apps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    """The generated apps: every id, and the developer ones (which can be upgraded)."""

    ids: list[str]
    developer_ids: list[str]


def _add_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def make_fleet(n: int, csv_path: Path | None = None, *, seed: int = 8) -> Fleet:
    """Generate `n` apps (70% developer, 15% standard, 15% premium); write the import CSV."""
    rng = random.Random(seed)
    today = date.today()
    first = date(2023, 1, 2)
    ids: list[str] = []
    developer: list[str] = []
    out: IO[str] | None = csv_path.open("w", newline="") if csv_path else None
    try:
        writer = csv.writer(out) if out else None
        if writer:
            writer.writerow(CSV_HEADER)
        for i in range(n):
            app_id = f"14{i:08d}"
            kind = i % 20
            plan = "developer" if kind < 14 else "standard" if kind < 17 else "premium"
            expires = ""
            if plan == "developer":
                created = today - timedelta(days=rng.randrange(20))
                expires = _add_month(created).isoformat()
                developer.append(app_id)
            else:
                created = first + timedelta(days=rng.randrange((today - first).days))
            ids.append(app_id)
            if writer:
                owner = f"C_OWNER{i % 50:02d}" if i % 5 == 0 else ""
                name = f"bench-app-{i}"
                writer.writerow(
                    [app_id, name, plan, created.isoformat(), "current", "active", owner, expires]
                )
    finally:
        if out:
            out.close()
    rng.shuffle(ids)
    rng.shuffle(developer)
    return Fleet(ids=ids, developer_ids=developer)


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A child process in its own process group, logging to a file, stopped by its id."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path,
        stdout_pipe: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log_file,
            stderr=self._log_file if stdout_pipe else subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the child is still running."""
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        """The last lines of its log."""
        with contextlib.suppress(OSError):
            text = self.log.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
        return ""

    def stop(self) -> None:
        """SIGTERM its process group, then SIGKILL after 10 s."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        if self.popen.stdout:
            self.popen.stdout.close()
        self._log_file.close()


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for tid_dir in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (tid_dir / "children").read_text().split():
                found += _descendants(int(child))
    return found


def memory_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes, summed over the process and its descendants."""
    rss = hwm = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) * 1024
    return rss, hwm


def cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by the process and its descendants, every thread counted (from the
    scheduler's nanosecond counts); None where there is no /proc."""
    total, seen = 0, False
    for p in _descendants(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[0])
                seen = True
    return total / 1e9 if seen else None


def wait_ready(proc: Proc, probe: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `probe` until it holds; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(
                f"{proc.name} exited with code {proc.popen.returncode} before it was ready:\n"
                f"{proc.tail()}"
            )
        if probe():
            return
        time.sleep(0.1)
    raise BenchError(f"{proc.name} was not ready within {timeout:.0f} s:\n{proc.tail()}")


def tcp_open(port: int) -> Callable[[], bool]:
    """A probe: does 127.0.0.1:port accept a connection."""

    def probe() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            return False
        return True

    return probe


def http_ok(url: str) -> Callable[[], bool]:
    """A probe: does GET url answer 200."""
    check_loopback(url)

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    return probe


class FakeSlackProc:
    """The fake Slack Web API in a child process (so it takes no CPU from the load generator)."""

    def __init__(self, workdir: Path) -> None:
        self.proc = Proc(
            "fake Slack",
            [sys.executable, "-m", "fakes.slack", "--port", "0", "--no-record"],
            env=os.environ,
            log=workdir / "fake_slack.log",
            stdout_pipe=True,
        )
        stdout = self.proc.popen.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], 30)
        line = stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.proc.stop()
            raise BenchError(f"the fake Slack did not start:\n{self.proc.tail()}")
        self.api_url = line
        self.root_url = line.removesuffix("/api/")

    def response(self, name: str) -> str:
        """A `response_url` on the fake, one per server so that their posts are counted apart."""
        return f"{self.root_url}/response/{name}"

    def counts(self) -> dict[str, int]:
        """Calls per method so far."""
        with urllib.request.urlopen(f"{self.root_url}/_fake/counts", timeout=5) as answer:
            return dict(json.load(answer))

    def settled_counts(self, seconds: float) -> dict[str, int]:
        """Counts once they stop changing for a second (waiting `seconds` at most)."""
        deadline = time.monotonic() + seconds
        last = self.counts()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.counts()
            if now == last:
                break
            last = now
        return last


# -- servers and scenarios -----------------------------------------------------------------------


@dataclass
class Server:
    """A server under test: its name, Slack events URL and process; where its answers go."""

    name: str
    url: str
    proc: Proc
    response_url: str
    audit_channel: str | None = None
    import_seconds: float = 0.0
    ready_rss: int = 0


@dataclass
class Outcome:
    """What one server did: results per (scenario, concurrency), and notes."""

    server: str
    results: dict[tuple[str, int], LoadResult] = field(default_factory=dict)
    #: CPU ms per answered request of the server's processes (planbot's worker too) in the cell
    cpu_ms: dict[tuple[str, int], float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    peak_rss: int | None = None


def command_request(text: str, response_url: str) -> Request:
    """A signed `/plan <text>` slash command from the bench user."""
    body = slash_command_body(text, USER, CHANNEL, response_url)
    return Request(body, signed_headers(body, SECRET))


def click_request(request_id: str, response_url: str) -> Request:
    """A signed Confirm click on an ephemeral preview."""
    body = block_action_body("plan_confirm", request_id, USER, CHANNEL, response_url)
    return Request(body, signed_headers(body, SECRET))


def options_request(typed: str) -> Request:
    """A signed options request of the app picker, as the bench user types `typed`."""
    body = block_suggestion_body("plan_pick_app", typed, USER, block_id="plan_app")
    return Request(body, signed_headers(body, SECRET))


def home_request(i: int, tag: str) -> Request:
    """A signed `app_home_opened` event: a new event id each, from one of 500 people."""
    event = {"type": "app_home_opened", "user": f"U_HOME{i % 500:03d}", "tab": "home"}
    body = event_body(event, event_id=f"Ev{tag}{i:08d}")
    return Request(body, signed_json_headers(body, SECRET))


@dataclass(frozen=True)
class HomeRow:
    """One cell of the home tab and app picker table."""

    scenario: str
    apps: int
    server: str
    conc: int
    result: LoadResult
    cpu_ms: float | None


def confirm_value(body: bytes | None) -> str | None:
    """The value of the `plan_confirm` button in a preview's JSON answer, if any."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None

    def walk(node: Any) -> str | None:
        if isinstance(node, dict):
            if node.get("action_id") == "plan_confirm" and isinstance(node.get("value"), str):
                return str(node["value"])
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            return None
        for child in children:
            found = walk(child)
            if found:
                return found
        return None

    return walk(data)


def _clicks(ids: Sequence[str], response_url: str) -> Callable[[int], Request]:
    """A request builder: the i-th Confirm click, on request id `ids[i]`, with a response_url of
    its own (Slack gives one per interaction; the fake counts them all under `response_url`)."""
    return lambda i: click_request(ids[i], f"{response_url}/{i}")


def _excerpt(body: bytes | None, limit: int = 160) -> str:
    text = (body or b"").decode("utf-8", "replace").replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


class Bench:
    """Runs every scenario at every concurrency on each server, cell by cell, and keeps results.

    The servers take turns within each cell (same scenario and concurrency), so that a change in
    the machine's background load during the run hits every server alike and the ratios hold.
    """

    def __init__(self, profile: Profile, fleet: Fleet, slack: FakeSlackProc) -> None:
        self.profile = profile
        self.fleet = fleet
        self.slack = slack
        self.outcomes: dict[str, Outcome] = {}
        self.home_rows: list[HomeRow] = []

    def load(
        self, server: Server, build: Callable[[int], Request], count: int, concurrency: int
    ) -> tuple[LoadResult, float | None]:
        """One timed load run, and the server's CPU ms per request answered (None if unknown)."""
        before = cpu_seconds(server.proc.pid)
        result = run(
            run_load(
                server.url,
                build,
                count=count,
                concurrency=concurrency,
                time_limit=self.profile.cell_seconds,
            )
        )
        after = cpu_seconds(server.proc.pid)
        answered = result.statuses.get(200, 0)
        if before is None or after is None or not answered:
            return result, None
        return result, 1000 * (after - before) / answered

    def status(self, server: Server) -> Callable[[int], Request]:
        """A builder of `/plan status <app>` over every app."""
        ids = self.fleet.ids
        return lambda i: command_request(f"status {ids[i % len(ids)]}", server.response_url)

    def preview(self, server: Server) -> Callable[[int], Request]:
        """A builder of `/plan upgrade <developer app> premium` over the preview pool."""
        apps = self.fleet.developer_ids[: self.profile.preview_pool]
        return lambda i: command_request(
            f"upgrade {apps[i % len(apps)]} premium", server.response_url
        )

    def measure(self, servers: Sequence[Server]) -> None:
        """Warm every server up, then every scenario at every concurrency on each in turn."""
        profile = self.profile
        click_apps: dict[str, Iterator[str]] = {}
        for server in servers:
            self.outcomes[server.name] = Outcome(server.name)
            click_apps[server.name] = iter(self.fleet.developer_ids[profile.preview_pool :])
            self.warm_up(server, self.status(server), self.preview(server))
        for scenario in SCENARIOS:
            for conc in profile.concurrencies:
                for server in servers:
                    outcome = self.outcomes[server.name]
                    time.sleep(profile.settle)
                    if scenario == "status":
                        result, cpu = self.load(
                            server, self.status(server), profile.counts[conc], conc
                        )
                    elif scenario == "preview":
                        result, cpu = self.load(
                            server, self.preview(server), profile.counts[conc], conc
                        )
                    else:
                        wanted = self.click_count(outcome, conc)
                        apps = list(itertools.islice(click_apps[server.name], wanted))
                        ids = self.prepare_clicks(server, apps, outcome)
                        if len(ids) < conc:
                            outcome.notes.append(
                                f"{server.name}: confirm at {conc}: only {len(ids)} request ids "
                                "(apps or previews ran out); cell skipped"
                            )
                            continue
                        time.sleep(profile.settle)
                        clicks = _clicks(ids, server.response_url)
                        result, cpu = self.load(server, clicks, len(ids), conc)
                    outcome.results[(scenario, conc)] = result
                    if cpu is not None:
                        outcome.cpu_ms[(scenario, conc)] = cpu
                    print(
                        f"  {server.name:16} {scenario:8} c={conc:<4} {_summary(result, cpu)}",
                        flush=True,
                    )
        for server in servers:
            if server.proc.alive():
                self.outcomes[server.name].peak_rss = memory_bytes(server.proc.pid)[1]

    def measure_home(self, server: Server, apps: int) -> None:
        """The app picker's options and `app_home_opened` at 16 and 64 concurrent."""
        options = lambda i: options_request(KEYSTROKES[i % len(KEYSTROKES)])  # noqa: E731
        self.warm_up(server, options)
        found = run(
            run_load(
                server.url,
                lambda i: options_request("bench-app-1"),
                count=1,
                concurrency=1,
                collect_bodies=True,
            )
        )
        if b"bench-app-1" not in ((found.bodies or [b""])[0] or b""):
            raise BenchError(f"{server.name}: the app picker found no bench-app-1")
        for scenario in HOME_SCENARIOS:
            for conc in HOME_CONCURRENCIES:
                time.sleep(self.profile.settle)
                tag = f"{server.name}{scenario}{conc}"
                build = options if scenario == "options" else (lambda i, t=tag: home_request(i, t))
                count = self.profile.counts.get(conc, max(4 * conc, 100))
                result, cpu = self.load(server, build, count, conc)
                self.home_rows.append(HomeRow(scenario, apps, server.name, conc, result, cpu))
                print(
                    f"  {server.name:16} {scenario:8} c={conc:<4} {apps:>7,} apps "
                    f"{_summary(result, cpu)}",
                    flush=True,
                )

    def warm_up(self, server: Server, *builds: Callable[[int], Request]) -> None:
        """A few untimed requests of each kind; fail clearly if they are not answered 200."""
        for build in builds:
            count = self.profile.warmup
            result = run(
                run_load(
                    server.url, build, count=count, concurrency=min(8, count), collect_bodies=True
                )
            )
            if result.non_200:
                bad = next(
                    (b for b in result.bodies or [] if b is not None and confirm_value(b) is None),
                    None,
                )
                raise BenchError(
                    f"{server.name}: {result.non_200} of {count} warm-up requests were not "
                    f"answered 200 (statuses {dict(result.statuses)}; a body: {_excerpt(bad)})"
                    f"\n{server.proc.tail()}"
                )

    def click_count(self, outcome: Outcome, conc: int) -> int:
        """How many clicks to prepare: what the cell can use, from the preview rate measured."""
        cap = self.profile.counts[conc]
        previews = outcome.results.get(("preview", conc))
        if previews is not None and previews.rps > 0:
            cap = min(cap, math.ceil(previews.rps * self.profile.cell_seconds * 1.25))
        return max(cap, conc)

    def prepare_clicks(self, server: Server, apps: list[str], outcome: Outcome) -> list[str]:
        """Send one untimed preview per app; return the request ids from their Confirm buttons."""
        if not apps:
            return []
        result = run(
            run_load(
                server.url,
                lambda i: command_request(f"upgrade {apps[i]} premium", server.response_url),
                count=len(apps),
                concurrency=min(32, len(apps)),
                time_limit=120.0,
                collect_bodies=True,
            )
        )
        ids: list[str] = []
        missing: list[str] = []
        for app, body in zip(apps, result.bodies or [], strict=False):
            request_id = confirm_value(body)
            if request_id:
                ids.append(request_id)
            else:
                missing.append(f"{app}: {_excerpt(body)}")
        if missing:
            outcome.notes.append(
                f"{server.name}: {len(missing)} of {len(apps)} previews had no plan_confirm "
                f"button, e.g. {missing[0]}"
            )
        return ids


def _summary(r: LoadResult, cpu_ms: float | None = None) -> str:
    cpu = f"  cpu {cpu_ms:.2f} ms/req" if cpu_ms is not None else ""
    return (
        f"n={r.count:<5} {r.rps:8.0f} req/s  p50 {r.p50:7.1f}  p99 {r.p99:7.1f}  "
        f"max {r.max:7.1f} ms  non-200 {r.non_200}  >3s {r.late}{cpu}"
    )


# -- starting servers ----------------------------------------------------------------------------


def base_env(api_url: str) -> dict[str, str]:
    """The environment of every server: Slack credentials and the fake's URL."""
    env = {k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"}
    env.update(
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=api_url,
        PLANBOT_ADMINS=USER,
        # the fake's response_url receiver (loopback), not hooks.slack.com
        PLANBOT_RESPONSE_URL_HOSTS=urllib.parse.urlsplit(api_url).netloc,
        PYTHONUNBUFFERED="1",
    )
    return env


def start_bare(name: str, slack: FakeSlackProc, workdir: Path, *, ceiling: bool) -> Server:
    """Start the bare Bolt app (stock, or with process_before_response) and wait for its port."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    if ceiling:
        argv.append("--process-before-response")
    proc = Proc(name, argv, env=base_env(slack.api_url), log=workdir / f"{name}.log")
    try:
        wait_ready(proc, tcp_open(port))
    except BenchError:
        proc.stop()
        raise
    return Server(name, f"http://127.0.0.1:{port}/slack/events", proc, slack.response(name))


def planbot_command(override: str | None) -> list[str]:
    """The planbot command line, or a clear error when it is not installed."""
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).parent / "planbot"
    found = str(beside) if beside.exists() else shutil.which("planbot")
    if not found:
        raise BenchError(
            "the `planbot` command was not found (looked beside "
            f"{sys.executable} and on PATH): install the project with "
            "`.venv/bin/pip install -e .`, pass --planbot-cmd, or run with --only bare"
        )
    return [found]


def start_planbot(
    name: str,
    cmd: list[str],
    slack: FakeSlackProc,
    database_url: str,
    csv_path: Path,
    workdir: Path,
    workers: str = "1",
) -> Server:
    """Import the apps with `planbot apps import`, start `planbot serve`, wait for /healthz."""
    audit_channel = "C_AUDIT_" + name.upper().replace("-", "_")
    env = base_env(slack.api_url) | {
        "DATABASE_URL": database_url,
        "PLANBOT_AUDIT_CHANNEL": audit_channel,
    }
    print(f"bench: {name}: importing {csv_path.name}", flush=True)
    started = time.monotonic()
    log = workdir / f"{name}-import.log"
    with log.open("wb") as out:
        try:
            done = subprocess.run(
                [*cmd, "apps", "import", str(csv_path)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise BenchError(f"{name}: `planbot apps import` took over 15 minutes") from err
    import_seconds = time.monotonic() - started
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BenchError(f"{name}: `planbot apps import` failed (exit {done.returncode}):\n{tail}")
    port = free_port()
    proc = Proc(
        name,
        [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", workers],
        env=env,
        log=workdir / f"{name}.log",
    )
    try:
        wait_ready(proc, http_ok(f"http://127.0.0.1:{port}/healthz"))
    except BenchError:
        proc.stop()
        raise
    return Server(
        name,
        f"http://127.0.0.1:{port}/slack/events",
        proc,
        slack.response(name),
        audit_channel=audit_channel,
        import_seconds=import_seconds,
        ready_rss=memory_bytes(proc.pid)[0],
    )


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A scratch database on the PostgreSQL server of `url`, dropped afterwards; yields its URL."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    check_loopback(f"http://{host}:{port}/")
    if not tcp_open_at(host, port):
        raise BenchError(f"PostgreSQL is not reachable at {host}:{port}")
    try:
        import psycopg
        from psycopg import sql
    except ImportError as err:
        raise BenchError("psycopg is not installed") from err

    def connect() -> psycopg.Connection[Any]:
        last: Exception | None = None
        for path in (parts.path, "/postgres"):
            conninfo = urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))
            try:
                return psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            except psycopg.Error as err:
                last = err
        raise BenchError(f"cannot connect to PostgreSQL at {host}:{port}: {last}")

    name = f"planbot_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with connect() as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as err:
            raise BenchError(f"cannot create a scratch database on PostgreSQL: {err}") from err
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def tcp_open_at(host: str, port: int) -> bool:
    """Whether host:port accepts a TCP connection within a second."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


# -- the report -----------------------------------------------------------------------------------


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _ratio(a: LoadResult | None, b: LoadResult | None) -> str:
    if a is None or b is None or b.rps <= 0:
        return ""
    return f"{a.rps / b.rps:.2f}x"


def table(outcomes: Mapping[str, Outcome], profile: Profile) -> str:
    """One Markdown table: scenario x concurrency x server, with ratios for planbot rows."""
    head = (
        "| scenario | conc | server | n | req/s | p50 ms | p90 ms | p99 ms | max ms | non-200 "
        "| >3s | CPU ms/req | / stock | / ceiling |"
    )
    rows = [head, "|" + "---|" * 14]
    stock, ceiling = outcomes.get(BARE_STOCK), outcomes.get(BARE_CEILING)
    for scenario in SCENARIOS:
        for conc in profile.concurrencies:
            key = (scenario, conc)
            for name, outcome in outcomes.items():
                r = outcome.results.get(key)
                if r is None:
                    continue
                planbot = not name.startswith("bare")
                vs_stock = _ratio(r, stock.results.get(key)) if planbot and stock else ""
                vs_ceiling = _ratio(r, ceiling.results.get(key)) if planbot and ceiling else ""
                cpu = outcome.cpu_ms.get(key)
                rows.append(
                    f"| {scenario} | {conc} | {name} | {r.count} | {r.rps:.0f} | {_ms(r.p50)} "
                    f"| {_ms(r.p90)} | {_ms(r.p99)} | {_ms(r.max)} | {r.non_200} | {r.late} "
                    f"| {'' if cpu is None else f'{cpu:.2f}'} | {vs_stock} | {vs_ceiling} |"
                )
    return "\n".join(rows)


def targets(outcomes: Mapping[str, Outcome], memory_mb: float | None) -> list[str]:
    """The performance targets, checked against this run's figures (reported, never asserted)."""
    lines: list[str] = []
    stock, ceiling = outcomes.get(BARE_STOCK), outcomes.get(BARE_CEILING)

    def mark(ok: bool) -> str:
        return "met" if ok else "MISSED"

    for name, outcome in outcomes.items():
        if name.startswith("bare"):
            continue
        res = outcome.results
        for scenario, floor_ceiling in (("status", 0.5), ("preview", 0.5), ("confirm", 0.3)):
            r = res.get((scenario, 64))
            if r is None:
                continue
            parts = []
            s = stock.results.get((scenario, 64)) if stock else None
            c = ceiling.results.get((scenario, 64)) if ceiling else None
            if s is not None and scenario != "confirm":
                parts.append(f"{r.rps / s.rps:.1f}x stock (>= 5x: {mark(r.rps >= 5 * s.rps)})")
            if c is not None:
                ok = r.rps >= floor_ceiling * c.rps
                parts.append(f"{r.rps / c.rps:.2f}x ceiling (>= {floor_ceiling}x: {mark(ok)})")
            parts.append(f"p99 {r.p99:.1f} ms (< 100: {mark(r.p99 < 100)})")
            lines.append(f"- {name} {scenario} at 64: " + ", ".join(parts))
        at256 = [r for (_, conc), r in res.items() if conc == 256]
        if at256:
            late, bad = sum(r.late for r in at256), sum(r.non_200 for r in at256)
            ok = late == 0 and bad == 0
            lines.append(f"- {name} at 256: {late} acks > 3 s, {bad} non-200 (none: {mark(ok)})")
    if memory_mb is not None:
        ok = memory_mb < 200
        lines.append(
            f"- planbot serve peak RSS with the memory run: {memory_mb:.0f} MB "
            f"(< 200 MB: {mark(ok)})"
        )
    return lines


def machine() -> str:
    """CPU, cores, OS and the versions that matter, on one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("planbot", "slack_bolt", "slack_sdk", "starlette", "uvicorn", "sqlalchemy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist} {metadata.version(dist)}")
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a CI smoke run")
    parser.add_argument("--only", choices=("all", "bare", "planbot"), default="all")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    parser.add_argument(
        "--postgres",
        choices=("auto", "on", "off"),
        default=None,
        help="planbot on PostgreSQL too (default: auto; off with --quick)",
    )
    parser.add_argument(
        "--memory-apps",
        type=int,
        default=0,
        help="also import this many apps into a fresh SQLite planbot and report its memory",
    )
    parser.add_argument(
        "--home-apps",
        type=int,
        default=None,
        help="apps of the SQLite planbot measuring the home tab and app picker alone (default "
        "100000; 2000 with --quick; 0: none)",
    )
    parser.add_argument("--planbot-cmd", help="how to run planbot (default: the planbot command)")
    parser.add_argument(
        "--workers",
        default="auto",
        help="`planbot serve --workers` for the measured servers (default auto: one per CPU; "
        "the memory run always uses the default single worker)",
    )
    parser.add_argument("--concurrency", help="comma-separated concurrencies (default 1,16,64,256)")
    parser.add_argument("--cell-seconds", type=float, help="time cap of one measurement")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any request was not answered 200"
    )
    return parser.parse_args(argv)


def choose_profile(args: argparse.Namespace) -> Profile:
    """The profile from --quick, with --concurrency and --cell-seconds applied."""
    profile = QUICK if args.quick else FULL
    if args.concurrency:
        concs = tuple(int(c) for c in args.concurrency.split(","))
        counts = {c: profile.counts.get(c, max(4 * c, 100)) for c in concs}
        counts = {c: max(n, c) for c, n in counts.items()}
        profile = Profile(**{**profile.__dict__, "concurrencies": concs, "counts": counts})
    if args.cell_seconds:
        profile = Profile(**{**profile.__dict__, "cell_seconds": args.cell_seconds})
    return profile


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the report; return the exit code."""
    args = parse_args(argv)
    profile = choose_profile(args)
    postgres_mode = args.postgres or ("off" if args.quick else "auto")
    started = time.monotonic()
    notes: list[str] = []
    failed = False
    memory_mb: float | None = None

    cmd: list[str] | None = None
    if args.only in ("all", "planbot"):
        try:
            cmd = planbot_command(args.planbot_cmd)
        except BenchError as err:
            print(f"bench: {err}", file=sys.stderr)
            return 2

    with (
        tempfile.TemporaryDirectory(prefix="planbot-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        csv_path = workdir / "apps.csv"
        fleet = make_fleet(profile.apps, csv_path if cmd else None)
        slack = FakeSlackProc(workdir)
        stack.callback(slack.proc.stop)
        bench = Bench(profile, fleet, slack)
        print(f"bench ({profile.name}): fake Slack at {slack.api_url}", flush=True)
        servers: list[Server] = []
        try:
            if args.only in ("all", "bare"):
                for name, ceiling in ((BARE_STOCK, False), (BARE_CEILING, True)):
                    servers.append(start_bare(name, slack, workdir, ceiling=ceiling))
                    stack.callback(servers[-1].proc.stop)
            if cmd:
                sqlite_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
                servers.append(
                    start_planbot(
                        "planbot-sqlite", cmd, slack, sqlite_url, csv_path, workdir, args.workers
                    )
                )
                stack.callback(servers[-1].proc.stop)
                if postgres_mode != "off":
                    pg_url = os.environ.get("PLANBOT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
                    try:
                        database_url = stack.enter_context(postgres_database(pg_url))
                        servers.append(
                            start_planbot(
                                "planbot-postgres",
                                cmd,
                                slack,
                                database_url,
                                csv_path,
                                workdir,
                                args.workers,
                            )
                        )
                        stack.callback(servers[-1].proc.stop)
                    except BenchError as err:
                        if postgres_mode == "on":
                            raise
                        notes.append(f"planbot-postgres skipped: {err}")
                        print(f"bench: planbot-postgres skipped: {err}", file=sys.stderr)
            before = slack.counts()
            bench.measure(servers)
            planbots = [s for s in servers if s.audit_channel]
            if planbots:
                waited = time.monotonic()
                after = slack.settled_counts(10.0 if profile.name == "full" else 5.0)
                waited = time.monotonic() - waited
                notes += [planbot_note(bench, s, before, after, waited) for s in planbots]
            for server in planbots:  # once the deliveries of the cells above have settled
                bench.measure_home(server, len(fleet.ids))
            for server in servers:
                server.proc.stop()
            if cmd and args.memory_apps:
                memory_mb, line = memory_run(cmd, slack, args.memory_apps, workdir, profile)
                notes.append(line)
            home_apps = profile.home_apps if args.home_apps is None else args.home_apps
            if cmd and home_apps:
                notes.append(home_run(bench, cmd, slack, home_apps, workdir))
        except BenchError as err:
            print(f"bench: {err}", file=sys.stderr)
            notes.append(f"stopped early: {str(err).splitlines()[0]}")
            failed = True

    for outcome in bench.outcomes.values():
        notes += outcome.notes
    report = render(
        bench.outcomes,
        profile,
        notes,
        memory_mb,
        time.monotonic() - started,
        args.workers,
        home_rows=bench.home_rows,
    )
    print("\n" + report)
    if args.out:
        args.out.write_text(report + "\n")
        print(f"bench: report written to {args.out}")
    if failed:
        return 1
    if args.strict and any(r.non_200 for o in bench.outcomes.values() for r in o.results.values()):
        print("bench: --strict: some requests were not answered 200", file=sys.stderr)
        return 1
    return 0


def planbot_note(
    bench: Bench,
    server: Server,
    before: Mapping[str, int],
    after: Mapping[str, int],
    waited: float,
) -> str:
    """One line on a planbot server: import time, memory, and what reached the fake Slack."""
    outcome = bench.outcomes[server.name]
    clicks = sum(r.statuses.get(200, 0) for (s, _), r in outcome.results.items() if s == "confirm")

    def delta(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    audits = delta(f"chat.postMessage@{server.audit_channel}")
    posts = delta(f"response/{server.name}")
    peak = (outcome.peak_rss or 0) / MB
    return (
        f"{server.name}: {len(bench.fleet.ids):,} apps imported in {server.import_seconds:.1f} s; "
        f"RSS {server.ready_rss / MB:.0f} MB when ready, peak {peak:.0f} MB "
        f"(VmHWM); {clicks} clicks acked 200, then {audits} audit messages "
        f"(chat.postMessage to {server.audit_channel}) and {posts} response_url posts "
        f"reached the fake Slack by {waited:.0f} s after the last cell"
    )


def memory_run(
    cmd: list[str], slack: FakeSlackProc, n: int, workdir: Path, profile: Profile
) -> tuple[float, str]:
    """Import `n` apps into a fresh SQLite planbot, load it a little, report its peak memory."""
    csv_path = workdir / f"apps-{n}.csv"
    fleet = make_fleet(n, csv_path, seed=9)
    database_url = f"sqlite:///{workdir / 'memory.sqlite3'}"
    server = start_planbot("planbot-memory", cmd, slack, database_url, csv_path, workdir)
    try:
        mem_bench = Bench(profile, fleet, slack)
        statuses, _cpu = mem_bench.load(server, mem_bench.status(server), 500, 16)

        def listing(i: int) -> Request:
            return command_request("list", server.response_url)

        lists = run(run_load(server.url, listing, count=5, concurrency=1, time_limit=60))
        peak = memory_bytes(server.proc.pid)[1] / MB
    finally:
        server.proc.stop()
    line = (
        f"memory run: {n:,} apps imported in {server.import_seconds:.1f} s; RSS "
        f"{server.ready_rss / MB:.0f} MB when ready, peak {peak:.0f} MB (VmHWM) after "
        f"{statuses.count} status requests ({statuses.rps:.0f} req/s at 16) and {lists.count} "
        f"`/plan list` (p50 {lists.p50:.0f} ms, max {lists.max:.0f} ms, non-200 {lists.non_200})"
    )
    return peak, line


def home_run(bench: Bench, cmd: list[str], slack: FakeSlackProc, n: int, workdir: Path) -> str:
    """The home tab and app picker cells on a fresh SQLite planbot with `n` apps."""
    csv_path = workdir / f"apps-home-{n}.csv"
    make_fleet(n, csv_path, seed=10)
    database_url = f"sqlite:///{workdir / 'home.sqlite3'}"
    server = start_planbot("planbot-home", cmd, slack, database_url, csv_path, workdir)
    try:
        swept = swept_after(database_url, timeout=300)
        bench.measure_home(server, n)
    finally:
        server.proc.stop()
    return (
        f"home run: {n:,} apps imported in {server.import_seconds:.1f} s (SQLite, one worker); "
        f"measured once its delivery worker's first sweep was done ({swept:.0f} s after start)"
    )


def swept_after(database_url: str, timeout: float) -> float:
    """Wait until a fresh server's first sweep is done (its marks written, its outbox drained:
    last month's statements of every team), so that it does not weigh on the cells; seconds."""
    import sqlite3

    path = database_url.removeprefix("sqlite:///")
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            marks = db.execute(
                "SELECT count(*) FROM lifecycle_mark WHERE name = 'dev_reminders' "
                "OR name LIKE 'statements:%'"
            ).fetchone()[0]
            pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
        if marks >= 2 and not pending[0]:
            return time.monotonic() - started
        time.sleep(0.5)
    raise BenchError(f"planbot-home: its first sweep was not done within {timeout:.0f} s")


def home_table(rows: Sequence[HomeRow]) -> str:
    """The home tab and app picker cells, as a Markdown table."""
    lines = [
        "| scenario | apps | server | conc | n | req/s | p50 ms | p90 ms | p99 ms | max ms "
        "| non-200 | >3s | CPU ms/req |",
        "|" + "---|" * 13,
    ]
    for row in rows:
        r, cpu = row.result, row.cpu_ms
        lines.append(
            f"| {row.scenario} | {row.apps:,} | {row.server} | {row.conc} | {r.count} "
            f"| {r.rps:.0f} | {_ms(r.p50)} | {_ms(r.p90)} | {_ms(r.p99)} | {_ms(r.max)} "
            f"| {r.non_200} | {r.late} | {'' if cpu is None else f'{cpu:.2f}'} |"
        )
    return "\n".join(lines)


def render(
    outcomes: Mapping[str, Outcome],
    profile: Profile,
    notes: Sequence[str],
    memory_mb: float | None,
    seconds: float,
    workers: str = "1",
    *,
    home_rows: Sequence[HomeRow] = (),
) -> str:
    """The whole Markdown report."""
    parts = [
        f"## planbot ack benchmark ({profile.name}, {datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"Machine: {machine()}. Client and servers on one machine, over loopback.",
        "",
        f"Servers: `{BARE_STOCK}` = bare Bolt app, Starlette adapter under uvicorn, "
        f"process_before_response=False; `{BARE_CEILING}` = the same with "
        "process_before_response=True; `planbot-*` = `planbot serve --workers "
        f"{workers}` (and its delivery worker) with {profile.apps:,} apps. Each cell: up to the "
        f"n shown, capped at {profile.cell_seconds:g} s; latency is request start to full "
        "response, in ms; CPU ms/req is the CPU time the server's processes (planbot's delivery "
        "worker included) used during the cell, per request answered 200.",
        "",
        table(outcomes, profile),
    ]
    if home_rows:
        parts += [
            "",
            "Home tab and app picker: `options` = the app picker's `block_suggestion` requests "
            "(keystrokes of someone typing a name or id, as an admin who sees every app); "
            "`home` = `app_home_opened` events (each a new id; the ack records the opening and "
            "queues the drawing, which the delivery worker does).",
            "",
            home_table(home_rows),
        ]
    checks = targets(outcomes, memory_mb)
    for row in home_rows:
        if row.scenario == "options" and row.conc == 64:
            ok = "met" if row.result.p99 < 100 else "MISSED"
            checks.append(
                f"- {row.server} app picker at 64 with {row.apps:,} apps: p99 "
                f"{row.result.p99:.1f} ms (< 100: {ok})"
            )
    if checks:
        parts += ["", "Performance targets (reported, not asserted):", "", *checks]
    if notes:
        parts += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    parts += ["", f"Run took {seconds:.0f} s."]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
