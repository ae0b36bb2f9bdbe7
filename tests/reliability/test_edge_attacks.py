"""Attacks on the HTTP edge of `planbot serve`: each is refused, and nothing changes.

The real server on loopback, with the fake Slack. Covered: unsigned bodies that claim to be
Slack's `ssl_check` ping; response_urls pointing anywhere (blind SSRF); bodies past 1 MB, with a
Content-Length or chunked; connections that never finish their headers; a provisioning webhook
that redirects; a signed `access grant` replayed after a revoke, on another replica; requests
from another workspace or app; a click while the database fails; malformed signature headers;
capability URLs and tokens in the logs. Figures go to the "reliability figures" summary.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import select
import selectors
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.delivery import SlackReplier
from bot.edge import Installation, ResponseUrls
from bot.settings import Settings, SettingsError
from core import DeliveryError
from fakes.signing import block_action_body, signed_headers, slash_command_body
from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    SECRET,
    TEAM,
    Served,
    button_value,
    card_text,
    start_planbot,
    stop_planbot,
)
from tests.reliability.conftest import outbox_counts, query, record, serve, stop_all

pytestmark = [pytest.mark.e2e]

EVIL = "UEVIL"
SECRET_WORDS = (SECRET, "xoxb-e2e")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's server runs and writes `server.log`."""
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="module")
def planbot(workdir: Path, slack: FakeSlack) -> Iterator[Served]:
    """One server for the module, logging at INFO, bound to app A1 (the fake's requests')."""
    served = start_planbot(
        workdir, slack, extra={"PLANBOT_LOG_LEVEL": "INFO", "PLANBOT_APP_ID": "A1"}
    )
    yield served
    stop_planbot(served)


def events_url(served: Served) -> str:
    return f"{served.url}/slack/events"


def log_text(workdir: Path, name: str = "server.log") -> str:
    return (workdir / name).read_text(errors="replace")


def grants_of(served: Served, user: str) -> list[str]:
    rows = query(
        served.database_url,
        "SELECT role FROM access_grant WHERE principal_id = :user",
        user=user,
    )
    return [r.role for r in rows]


def pid_memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) // 1024
    return fields["VmRSS"], fields["VmHWM"]


# --- 1. signatures: only Slack's bare ssl_check ping goes unsigned ------------------------------


def test_unsigned_bodies_claiming_ssl_check_are_refused_and_the_ping_is_answered(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    url = slack.response_url("ssl-forged")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    command = urlencode(
        {
            "ssl_check": "0",
            "user_id": ADMIN,
            "channel_id": TEAM,
            "command": "/plan",
            "text": f"access grant <@{EVIL}> admin",
            "team_id": "T1",
            "api_app_id": "A1",
            "response_url": url,
        }
    )
    click = block_action_body("plan_confirm", "r-unknown", ADMIN, TEAM, url) + b"&ssl_check=0"
    pinged_command = command.replace("ssl_check=0", "ssl_check=1")
    answers = {
        "command with ssl_check=0": planbot.http.post(
            events_url(planbot), content=command, headers=form
        ),
        "command with ssl_check=1": planbot.http.post(
            events_url(planbot), content=pinged_command, headers=form
        ),
        "click with ssl_check=0": planbot.http.post(
            events_url(planbot), content=click, headers=form
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code == 401, (what, answer.status_code, answer.text)
    ping = planbot.http.post(events_url(planbot), content="ssl_check=1&token=x", headers=form)
    assert (ping.status_code, ping.content) == (200, b"")
    assert grants_of(planbot, EVIL) == []
    time.sleep(0.5)
    assert slack.responses("ssl-forged") == []
    log = log_text(workdir)
    assert log.count("WARNING bot.server: refused a request from 127.0.0.1") >= 3
    assert not any(word in log for word in SECRET_WORDS)
    record("ssl_check bypass", refused=f"{len(answers)}/{len(answers)} answered 401", ping=200)


# --- 11. malformed headers: 401, never 500, no traceback ---------------------------------------


def test_malformed_signature_headers_are_401_without_a_traceback(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    before = log_text(workdir)
    body = slash_command_body("status 1400000001", ADMIN, TEAM, slack.response_url("hdr"))
    good = signed_headers(body, SECRET)
    now = int(time.time())
    cases: dict[str, dict[str, str] | list[tuple[bytes, bytes]]] = {
        "400-digit timestamp": {**good, "X-Slack-Request-Timestamp": "9" * 400},
        "negative timestamp": {**good, "X-Slack-Request-Timestamp": f"-{now}"},
        "fraction timestamp": {**good, "X-Slack-Request-Timestamp": f"{now}.5"},
        "signature too long": {**good, "X-Slack-Signature": good["X-Slack-Signature"] + "00"},
        "signature v1": {**good, "X-Slack-Signature": "v1=" + "a" * 64},
        "signature not hex": {**good, "X-Slack-Signature": "v0=" + "z" * 64},
        "content type text/plain": {**good, "Content-Type": "text/plain"},
        "content type garbage": {**good, "Content-Type": "%%%;;;==="},
        "non-ASCII signature": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"x-slack-request-timestamp", good["X-Slack-Request-Timestamp"].encode()),
            (b"x-slack-signature", "v0=é".encode() + b"\xff" * 60),
        ],
        "non-ASCII timestamp": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"x-slack-request-timestamp", "١٢٣٤".encode()),
            (b"x-slack-signature", good["X-Slack-Signature"].encode()),
        ],
        "two timestamps": [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"x-slack-request-timestamp", b"1"),
            (b"x-slack-request-timestamp", good["X-Slack-Request-Timestamp"].encode()),
            (b"x-slack-signature", good["X-Slack-Signature"].encode()),
        ],
    }
    statuses = {}
    for what, headers in cases.items():
        answer = planbot.http.post(events_url(planbot), content=body, headers=headers)
        statuses[what] = answer.status_code
        assert "Traceback" not in answer.text
    assert statuses == dict.fromkeys(cases, 401), statuses
    assert planbot.http.post(events_url(planbot), content=body, headers=good).status_code == 200
    new = log_text(workdir)[len(before) :]
    assert "Traceback" not in new
    assert " ERROR " not in new, new
    record("malformed headers", refused=f"{len(cases)}/{len(cases)} answered 401", errors=0)


# --- 2. response_url: only to the allowed hosts ----------------------------------------------


def test_a_response_url_outside_the_allowed_hosts_is_never_posted_to(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    app = "1400000051"
    with FakeSlack() as elsewhere:
        target = elsewhere.response_url("ssrf")
        body = slash_command_body(f"upgrade {app} premium", ADMIN, TEAM, target)
        answer = planbot.http.post(
            events_url(planbot), content=body, headers=signed_headers(body, SECRET)
        )
        assert answer.status_code == 200
        request_id = button_value(answer.json(), "plan_confirm")
        click = block_action_body("plan_confirm", request_id, ADMIN, TEAM, target)
        clicked = planbot.http.post(
            events_url(planbot), content=click, headers=signed_headers(click, SECRET)
        )
        assert clicked.status_code == 200
        # the change itself is made; only the card's reply is not sent anywhere
        deadline = time.monotonic() + 10
        while planbot.app(app).plan.value != "premium" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert planbot.app(app).plan.value == "premium"
        slack.wait_for(lambda call: call.method == "chat.postMessage", timeout=10)
        for other in (
            "https://hooks.slack.com.evil.test/commands/T1/1/x",
            "https://evil.test/?https://hooks.slack.com/",
            "http://hooks.slack.com/commands/T1/1/x",
            "https://hooks.slack.com@127.0.0.1:1/x",
        ):
            forged = slash_command_body("status 1400000052", ADMIN, TEAM, other)
            assert (
                planbot.http.post(
                    events_url(planbot), content=forged, headers=signed_headers(forged, SECRET)
                ).status_code
                == 200
            )
        time.sleep(1.5)  # the delivery worker would have posted by now
        assert elsewhere.responses("ssrf") == []
        assert elsewhere.calls() == []
    pending = query(
        planbot.database_url,
        "SELECT destination FROM outbox WHERE kind = 'reply'",
    )
    assert not [r for r in pending if str(r.destination).startswith(target.split("/resp")[0])]
    assert "ignored a response_url on 127.0.0.1" in log_text(workdir)
    record("response_url SSRF", posts_to_other_hosts=0, change_applied=True)


def test_the_allowed_hosts_setting_and_the_delivery_check() -> None:
    urls = ResponseUrls(("hooks.slack.com", "127.0.0.1:9999"))
    assert urls.allows("https://hooks.slack.com/commands/T1/2/abc")
    assert urls.allows("https://hooks.slack.com:443/actions/T1/2/abc")
    assert urls.allows("http://127.0.0.1:9999/response/x")
    for bad in (
        "http://hooks.slack.com/commands/T1/2/abc",  # https only, but on loopback
        "https://hooks.slack.com:8443/x",
        "https://hooks.slack.com.evil.test/x",
        "https://user@hooks.slack.com/x",
        "https://evil.test\\@hooks.slack.com/x",
        "http://127.0.0.1:9998/response/x",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "",
        None,
        42,
    ):
        assert not urls.allows(bad), bad
    assert Settings.from_env({}).response_url_hosts == ("hooks.slack.com",)
    with pytest.raises(SettingsError, match="PLANBOT_RESPONSE_URL_HOSTS"):
        Settings.from_env({"PLANBOT_RESPONSE_URL_HOSTS": "https://x/"})
    replier = SlackReplier(words=None, response_urls=urls)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as refused:
        replier.reply("http://169.254.169.254/latest", {"text": "x"})
    assert refused.value.permanent


# --- 3. bodies past 1 MB ----------------------------------------------------------------------

BIG = 256 * 1024 * 1024


def _send_big(url: str, headers: bytes, *, chunked: bool) -> tuple[int, bytes]:
    """Send headers, then (chunked) up to 256 MB of body until the server answers or hangs up;
    the bytes of body sent and the answer's first line."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sent = 0
    answer = b""
    chunk = b"x" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    try:
        sock.sendall(headers)
        deadline = time.monotonic() + 60
        while sent < BIG and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0 if chunked else 5)
            if readable:
                answer = sock.recv(4096)
                break
            if not chunked:
                break
            sock.sendall(framed)
            sent += len(chunk)
        if not answer:
            readable, _, _ = select.select([sock], [], [], 10)
            answer = sock.recv(4096) if readable else b""
    except (BrokenPipeError, ConnectionResetError):
        # the server answered and hung up while the body was still coming: its answer may be
        # waiting, unread, before the reset
        if not answer:
            with contextlib.suppress(OSError):
                answer = sock.recv(4096)
    finally:
        sock.close()
    return sent, answer.split(b"\r\n", 1)[0]


def test_bodies_over_1mb_get_413_without_being_read(planbot: Served) -> None:
    pid = planbot.process.pid
    rss_before, _ = pid_memory(pid)
    start = (
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
    )
    began = time.monotonic()
    sent, status = _send_big(
        planbot.url, start + b"Content-Length: %d\r\n\r\n" % BIG, chunked=False
    )
    declared_seconds = time.monotonic() - began
    assert status.startswith(b"HTTP/1.1 413"), status
    assert sent == 0
    began = time.monotonic()
    sent, status = _send_big(
        planbot.url, start + b"Transfer-Encoding: chunked\r\n\r\n", chunked=True
    )
    chunked_seconds = time.monotonic() - began
    rss_after, hwm = pid_memory(pid)
    assert status.startswith(b"HTTP/1.1 413"), status
    # what fits in the socket buffers on the way, at most: never the 256 MB
    assert sent < 32 * 1024 * 1024, sent
    assert rss_after - rss_before < 64, (rss_before, rss_after)
    assert planbot.command("status 1400000001").status_code == 200
    record(
        "body 256 MB",
        content_length=f"413 in {declared_seconds:.2f} s, 0 bytes read",
        chunked=f"413 after {sent / 1e6:.1f} MB sent in {chunked_seconds:.2f} s",
        rss_mb=f"{rss_before} before, {rss_after} after (peak {hwm})",
    )


# --- 4. slow clients --------------------------------------------------------------------------

SLOW = 1400


class Slowloris:
    """`SLOW` connections that send a request line and one header byte a second, never the end
    of their headers; each one the server closes is opened again. Run in a process of its own
    (`start`, `finish`), so that it takes no turns from the test's own client."""

    def __init__(self, url: str, seconds: float) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.seconds = seconds
        self.results: multiprocessing.Queue[tuple[list[float], list[float]]] = (
            multiprocessing.get_context("fork").Queue()
        )
        self.process = multiprocessing.get_context("fork").Process(target=self.run, daemon=True)

    def open(self, opened: dict[socket.socket, float]) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sock.setblocking(False)
            opened[sock] = time.monotonic()
        except OSError:
            time.sleep(0.01)

    def run(self) -> None:
        opened: dict[socket.socket, float] = {}
        lifetimes: list[float] = []
        end = time.monotonic() + self.seconds
        last_trickle = time.monotonic()
        while time.monotonic() < end:
            while len(opened) < SLOW and time.monotonic() < end:
                self.open(opened)
            with selectors.DefaultSelector() as selector:
                for sock in opened:
                    selector.register(sock, selectors.EVENT_READ)
                readable = [key.fileobj for key, _ in selector.select(0.2)]
            for sock in readable:
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    lifetimes.append(time.monotonic() - opened.pop(sock))
                    sock.close()
            if time.monotonic() - last_trickle >= 1:
                for sock in list(opened):
                    with contextlib.suppress(OSError):
                        sock.send(b"a")
                last_trickle = time.monotonic()
        now = time.monotonic()
        self.results.put((lifetimes, [now - t for t in opened.values()]))
        for sock in opened:
            sock.close()

    def start(self) -> None:
        self.process.start()

    def finish(self) -> tuple[list[float], list[float]]:
        """How long each connection the server closed had lived; how long those still open had."""
        found = self.results.get(timeout=30)
        self.process.join(10)
        return found


def test_signed_requests_are_answered_while_1400_connections_never_finish_their_headers(
    planbot: Served,
) -> None:
    latencies: list[float] = []
    statuses: list[int | str] = []
    flood = Slowloris(planbot.url, seconds=16)
    flood.start()
    time.sleep(2)  # the flood is in place
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        began = time.monotonic()
        try:
            # a new connection each time, as a load balancer may open
            with httpx.Client(timeout=10) as client:
                body = slash_command_body("status 1400000001", ADMIN, TEAM, "")
                answer = client.post(
                    f"{planbot.url}/slack/events",
                    content=body,
                    headers=signed_headers(body, SECRET),
                )
            statuses.append(answer.status_code)
        except httpx.TransportError as err:
            statuses.append(type(err).__name__)
        latencies.append(time.monotonic() - began)
        time.sleep(0.1)
    lifetimes, still_open = flood.finish()
    held = lifetimes + still_open
    assert statuses and all(s == 200 for s in statuses), statuses
    # a connection that never finishes its headers is closed within the header deadline
    assert max(held) < 8, sorted(held)[-5:]
    assert lifetimes, "the server closed none of the slow connections"
    record(
        "slow clients",
        signed_answered=f"{statuses.count(200)}/{len(statuses)} 200",
        p50_ms=round(statistics.median(latencies) * 1000, 1),
        max_ms=round(max(latencies) * 1000, 1),
        slow_held_max_s=round(max(held), 1),
        slow_closed=len(lifetimes),
    )


# --- 8. replays -------------------------------------------------------------------------------


def test_a_replayed_grant_changes_nothing_even_on_another_replica_after_a_revoke(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    victim = "UEVILREPLAY"
    replica = serve(
        workdir,
        slack,
        planbot.database_url,
        extra={"PLANBOT_LOG_LEVEL": "INFO", "PLANBOT_APP_ID": "A1"},
        log="replica.log",
    )
    try:
        url = slack.response_url("replay")
        grant = slash_command_body(f"access grant <@{victim}> admin", ADMIN, TEAM, url)
        captured = signed_headers(grant, SECRET)
        first = planbot.http.post(events_url(planbot), content=grant, headers=captured)
        assert "now has the `admin` role" in card_text(first.json())
        assert grants_of(planbot, victim) == ["admin"]
        revoked = planbot.command(f"access revoke <@{victim}> admin")
        assert "no longer has" in card_text(revoked.json())
        replies = []
        began = time.monotonic()
        for served in (replica, planbot, replica):
            answer = served.http.post(events_url(served), content=grant, headers=captured)
            assert answer.status_code == 200
            replies.append(card_text(answer.json()))
        seconds = time.monotonic() - began
        for reply in replies:
            assert "already received; nothing was changed" in reply, reply
        assert grants_of(planbot, victim) == []
        # a revoke replayed after a new grant takes nothing away either
        regrant = planbot.command(f"access grant <@{victim}> viewer")
        assert "now has" in card_text(regrant.json())
        revoke = slash_command_body(f"access revoke <@{victim}> viewer", ADMIN, TEAM, url)
        revoke_headers = signed_headers(revoke, SECRET)
        assert "no longer has" in card_text(
            planbot.http.post(events_url(planbot), content=revoke, headers=revoke_headers).json()
        )
        planbot.command(f"access grant <@{victim}> viewer")
        again = replica.http.post(events_url(replica), content=revoke, headers=revoke_headers)
        assert "already received" in card_text(again.json())
        assert grants_of(planbot, victim) == ["viewer"]
        # a read replayed is simply answered again
        status = slash_command_body("status 1400000001", ADMIN, TEAM, url)
        status_headers = signed_headers(status, SECRET)
        for served in (planbot, replica):
            read = served.http.post(events_url(served), content=status, headers=status_headers)
            assert "1400000001" in card_text(read.json())
        stored = query(planbot.database_url, "SELECT count(*) AS n FROM received_request")
        record(
            "replays",
            replayed_grants="3/3 changed nothing (2 on the other replica)",
            replayed_revoke="changed nothing",
            signatures_stored=stored[0].n,
            seconds=round(seconds, 3),
        )
    finally:
        stop_all(replica)


# --- 9. workspace binding ---------------------------------------------------------------------


def test_requests_from_another_workspace_or_app_are_refused(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    victim = "UEVILTEAM"
    url = slack.response_url("team")
    refused = []
    for what, fields in {
        "another workspace": {"team_id": "T2"},
        "another app": {"api_app_id": "A9"},
    }.items():
        body = slash_command_body(f"access grant <@{victim}> admin", ADMIN, TEAM, url, **fields)
        answer = planbot.http.post(
            events_url(planbot), content=body, headers=signed_headers(body, SECRET)
        )
        assert answer.status_code == 200, what
        assert "does not answer this workspace" in card_text(answer.json()), what
        refused.append(what)
    assert grants_of(planbot, victim) == []
    app = "1400000053"
    _, request_id = planbot.preview(f"upgrade {app} premium")
    click = block_action_body("plan_confirm", request_id, ADMIN, TEAM, url, team_id="T2")
    answer = planbot.http.post(
        events_url(planbot), content=click, headers=signed_headers(click, SECRET)
    )
    assert (answer.status_code, answer.content) == (200, b"")
    time.sleep(0.5)
    assert planbot.app(app).plan.value == "developer"
    [state] = query(
        planbot.database_url, "SELECT state FROM pending_request WHERE id = :id", id=request_id
    )
    assert state.state == "pending"
    assert "refused a signed request from another workspace" in log_text(workdir)
    assert "refused a signed request from another app" in log_text(workdir)
    # the owner's own click, from the installation's workspace, still works
    assert planbot.click("plan_confirm", request_id).status_code == 200
    deadline = time.monotonic() + 5
    while planbot.app(app).plan.value != "premium" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert planbot.app(app).plan.value == "premium"
    record("workspace binding", refused=f"{len(refused) + 1}/3 (2 commands, 1 click)")


def test_the_installation_from_settings_or_auth_test() -> None:
    settings = Settings.from_env({"PLANBOT_ALLOWED_TEAMS": "T1,E1", "PLANBOT_APP_ID": "A1"})
    assert settings.allowed_teams == frozenset({"T1", "E1"})
    ours = Installation(teams=settings.allowed_teams, app_id=settings.app_id)
    assert ours.refusal("T1", None, "A1") is None
    assert ours.refusal("T7", "E1", "A1") is None  # an org-wide installation
    assert ours.refusal("T2", None, "A1") == "another workspace"
    assert ours.refusal("T1", None, "A2") == "another app"
    assert ours.refusal(None, None, "A1") == "another workspace"
    waiting = Installation()  # auth.test has not answered: nothing is let through
    assert waiting.refusal("T1", None, None) is not None
    with pytest.raises(SettingsError, match="PLANBOT_APP_ID"):
        Settings.from_env({"PLANBOT_APP_ID": "T1"})


# --- 16. no capability URL or token in the logs -----------------------------------------------


def test_no_response_url_or_token_reaches_the_logs(
    planbot: Served, slack: FakeSlack, workdir: Path
) -> None:
    app = "1400000054"
    _, request_id = planbot.preview(f"upgrade {app} premium", response="capability")
    slack.fail_next(1, status=500, methods=["response_url"])  # slack_sdk retries, and says so
    assert planbot.click("plan_confirm", request_id, response="capability").status_code == 200
    slack.wait_for_response("capability", timeout=10)
    time.sleep(0.5)
    log = log_text(workdir)
    assert "/response/capability" not in log
    assert not any(word in log for word in SECRET_WORDS)
    assert f"{slack.host}:{slack.port}/…" in log  # the retry was logged, without its path
    record("log secrets", capability_urls_in_log=0, tokens_in_log=0)


# --- 10. a click while the database fails ------------------------------------------------------


@pytest.fixture
def own_planbot(tmp_path: Path, slack: FakeSlack) -> Iterator[Served]:
    """A server of the test's own, on its own SQLite file."""
    served = start_planbot(tmp_path, slack)
    yield served
    stop_planbot(served)


def test_a_click_while_the_database_fails_is_answered_without_it(
    own_planbot: Served, slack: FakeSlack
) -> None:
    app = "1400000055"
    _, request_id = own_planbot.preview(f"upgrade {app} premium")
    path = own_planbot.database_url.removeprefix("sqlite:///")
    tables = ("pending_request", "outbox")
    with sqlite3.connect(path) as db:  # the requests and the outbox are gone
        for table in tables:
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        answer = own_planbot.click("plan_confirm", request_id, response="dbdown")
        assert answer.status_code == 200, answer.text
        said = slack.wait_for_response("dbdown", timeout=10)
    finally:
        with sqlite3.connect(path) as db:
            for table in tables:
                db.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
    text = card_text(said)
    assert "nothing was changed" in text
    assert "Traceback" not in text and "sqlite" not in text.lower()
    assert said.get("response_type") == "ephemeral"
    assert own_planbot.app(app).plan.value == "developer"
    record("click while the database fails", status=200, reply="sent without the database")


# --- 7. the provisioning webhook never follows a redirect -------------------------------------


class Provisioning:
    """A provisioning system that first answers 301 to elsewhere (where a GET would get 200)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.redirect = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.seen.append((self.command, self.path))
                if self.path == "/provision" and outer.redirect:
                    self.send_response(301)
                    self.send_header("Location", "/elsewhere")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/provision"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_redirecting_provisioning_webhook_is_a_failed_delivery_retried(
    tmp_path: Path, slack: FakeSlack
) -> None:
    receiver = Provisioning()
    served = start_planbot(
        tmp_path,
        slack,
        extra={"PLANBOT_WEBHOOK_URL": receiver.url, "PLANBOT_WEBHOOK_SECRET": "hook-secret"},
    )
    try:
        app = "1400000056"
        _, request_id = served.preview(f"upgrade {app} premium")
        assert served.click("plan_confirm", request_id).status_code == 200
        deadline = time.monotonic() + 10
        while ("POST", "/provision") not in receiver.seen and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        assert ("POST", "/provision") in receiver.seen
        assert not [s for s in receiver.seen if s[1] == "/elsewhere"], receiver.seen
        [entry] = query(
            served.database_url,
            "SELECT status, attempts, last_error FROM outbox WHERE kind = 'provision'",
        )
        assert entry.status == "pending", entry
        assert "redirect" in str(entry.last_error)
        attempts_redirected = entry.attempts
        receiver.redirect = False  # the receiver is fixed: the retry delivers
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [entry] = query(
                served.database_url, "SELECT status FROM outbox WHERE kind = 'provision'"
            )
            if entry.status == "delivered":
                break
            time.sleep(0.2)
        assert entry.status == "delivered"
        assert not [s for s in receiver.seen if s[1] == "/elsewhere"]
        assert outbox_counts(served.database_url).get("dead", 0) == 0
        record(
            "webhook redirects",
            followed=0,
            redirected_attempts=attempts_redirected,
            delivered_after_fix=True,
        )
    finally:
        stop_planbot(served)
        receiver.close()
