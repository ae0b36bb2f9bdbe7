"""A fake Slack Web API and `response_url` receiver on loopback, for end-to-end tests.

`FakeSlack` serves, from a background thread, the Web API methods a bot uses (``auth.test``,
``chat.postMessage``, ``chat.postEphemeral``, ``chat.update``, ``chat.getPermalink``,
``users.info``, ``usergroups.users.list``, ``conversations.info``, ``users.conversations``,
``views.open``, ``views.update``, ``views.push``, ``views.publish``; any other method answers
``{"ok": true}``) and a ``response_url`` receiver (``POST /response/<name>``, or
``/response/<name>/<id>``). It records every call, and it can be scripted to fail (429 with
``Retry-After``, 5xx, or a connection reset) so tests can simulate a Slack outage::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages("C1")[0]["text"] == "hi"

Run as ``python -m fakes.slack --port 0`` to serve it on its own; it prints its Web
API base URL on the first line of standard output, and ``GET /_fake/counts`` answers `counts()`.

Like Slack, every Web API answer carries the token's scopes in an ``x-oauth-scopes`` header
(`scopes`, by default those planbot's manifest asks for); a token in `refused_tokens` is answered
``invalid_auth``; ``conversations.info`` describes any channel as one the bot is a member of,
unless it is in `outside`, or `channels` says otherwise (fields to override, such as its name
or ``is_archived``, or None for ``channel_not_found``).
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

__all__ = ["DEFAULT_SCOPES", "Call", "FakeSlack", "OutageMode"]

#: the scopes a token of the fake has unless told otherwise (planbot's manifest's bot scopes)
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "usergroups:read",
    "channels:read",
    "groups:read",
    "users:read",
)

OutageMode = Literal["ratelimited", "server_error", "reset"]

# Fields that Slack takes as JSON text inside a form-encoded body; decoded so tests see data.
_JSON_FIELDS = frozenset({"blocks", "attachments", "metadata", "view", "user_ids", "users"})


@dataclass(frozen=True)
class Call:
    """One HTTP request the fake received: a Web API call or a `response_url` post."""

    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    time: float
    raw: bytes = b""
    status: int = 200

    @property
    def token(self) -> str | None:
        """The bearer token from the Authorization header, or the `token` body field."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        token = self.body.get("token")
        return token if isinstance(token, str) else None


@dataclass
class _Failure:
    """A scripted failure: an HTTP error status, or a reset connection when `status` is 0."""

    status: int
    retry_after: int
    methods: frozenset[str] | None

    def applies_to(self, method: str, *, listed: bool = False) -> bool:
        if self.methods is None:
            return not listed
        return method in self.methods


@dataclass
class _Outage:
    failure: _Failure
    until: float


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    failures: list[Call] = field(default_factory=list)
    responses: dict[str, list[Call]] = field(default_factory=dict)
    scripted: list[_Failure] = field(default_factory=list)
    outage: _Outage | None = None
    last_ts_us: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    views: int = 0


class FakeSlack:
    """A fake Slack Web API plus `response_url` receiver, served on 127.0.0.1 in a thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        record: bool = True,
    ) -> None:
        self.host = host
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.record = record
        # usergroup id -> member user ids, for usergroups.users.list (unknown: no_such_subteam)
        self.usergroups: dict[str, list[str]] = {}
        # user id -> fields overriding the derived users.info user, e.g. {"real_name": "Ann"}
        # or {"locale": "ko-KR"} (the locale is only answered when asked: `include_locale`;
        # en-US unless told otherwise)
        self.users: dict[str, dict[str, Any]] = {}
        # channels the bot is a member of, as users.conversations lists them
        self.joined: set[str] = set()
        # channels the bot is not in: conversations.info says so, chat.postMessage is refused
        # with not_in_channel (any other channel counts as one the bot is in)
        self.outside: set[str] = set()
        # seconds every Web API call waits before it is answered (a slow Slack)
        self.latency = 0.0
        # seconds calls of one method wait instead, e.g. {"usergroups.users.list": 5.0}
        self.method_latency: dict[str, float] = {}
        # the scopes every Web API answer lists in its x-oauth-scopes header
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        # tokens Slack no longer takes: every call with one is answered invalid_auth
        self.refused_tokens: set[str] = set()
        # channel id -> fields overriding the derived conversations.info channel (is_member,
        # name, is_archived, ...), or None: channel_not_found
        self.channels: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Condition()
        self._state = _State()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the fake listens on."""
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` with no path."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, for ``WebClient(base_url=...)`` and ``SLACK_API_URL``."""
        return f"{self.root_url}/api/"

    @property
    def url(self) -> str:
        """Same as `api_url`."""
        return self.api_url

    def start(self) -> FakeSlack:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-slack-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what was received ---------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Web API calls answered successfully, oldest first, optionally of one method."""
        with self._lock:
            return [c for c in self._state.calls if method is None or c.method == method]

    def failures(self, method: str | None = None) -> list[Call]:
        """Web API calls that were answered with a scripted failure (status 0: reset)."""
        with self._lock:
            return [c for c in self._state.failures if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Bodies of delivered ``chat.postMessage`` calls, optionally to one channel."""
        return [
            c.body
            for c in self.calls("chat.postMessage")
            if channel is None or c.body.get("channel") == channel
        ]

    def wait_for(
        self,
        predicate: Callable[[Call], bool] | str | None = None,
        timeout: float = 5.0,
        *,
        method: str | None = None,
    ) -> Call:
        """Wait until a delivered call matches (a predicate or a method name); return it.

        Raises AssertionError listing what was seen when none matches within `timeout`.
        """
        if isinstance(predicate, str):
            method, predicate = predicate, None
        check = predicate

        def matches(call: Call) -> bool:
            if method is not None and call.method != method:
                return False
            try:
                return check is None or bool(check(call))
            except (LookupError, TypeError, AttributeError):
                return False  # a predicate written for another shape of call

        found = self._wait(
            lambda: next((c for c in self._state.calls if matches(c)), None), timeout
        )
        if found is None:
            seen = [(c.method, c.body) for c in self.calls()]
            raise AssertionError(
                f"no Slack call matching {method or ''} {check or ''} within {timeout}s; "
                f"seen {len(seen)}: {seen!r}"
            )
        return found

    def views(self, method: str = "views.open") -> list[dict[str, Any]]:
        """Bodies of delivered calls of a views method (``views.open``, ``views.update``,
        ``views.push``, ``views.publish``), oldest first; each ``view`` decoded."""
        return [c.body for c in self.calls(method)]

    def home_of(self, user_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The last home view published for `user_id` (waits for a first one)."""
        self.wait_for(lambda c: c.body.get("user_id") == user_id, timeout, method="views.publish")
        published = [b for b in self.views("views.publish") if b.get("user_id") == user_id]
        return dict(published[-1]["view"])

    def response_url(self, name: str = "default") -> str:
        """A loopback `response_url` whose posts are kept under `name`."""
        return f"{self.root_url}/response/{name}"

    def responses(self, name: str = "default") -> list[dict[str, Any]]:
        """Bodies posted to ``response_url(name)``, oldest first."""
        with self._lock:
            return [c.body for c in self._state.responses.get(name, [])]

    def wait_for_response(
        self,
        name: str = "default",
        timeout: float = 5.0,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait until a body posted to ``response_url(name)`` matches; return it.

        Raises AssertionError listing what was seen when none matches within `timeout`.
        """

        def find() -> dict[str, Any] | None:
            for call in self._state.responses.get(name, []):
                try:
                    if predicate is None or predicate(call.body):
                        return call.body
                except (LookupError, TypeError, AttributeError):
                    continue  # a predicate written for another shape of body
            return None

        found = self._wait(find, timeout)
        if found is None:
            raise AssertionError(
                f"no post to response_url {name!r} within {timeout}s; "
                f"seen: {self.responses(name)!r}"
            )
        return found

    def counts(self) -> dict[str, int]:
        """Calls per method; also per ``method@channel``, ``failed:method``, ``response/name``."""
        with self._lock:
            return dict(self._state.counts)

    def clear(self) -> None:
        """Forget every recorded call, response and scripted failure."""
        with self._lock:
            self._state = _State(last_ts_us=self._state.last_ts_us)

    # -- failure scripting ----------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 429,
        retry_after: int = 1,
        reset: bool = False,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Make the next `n` Web API calls (of `methods`, default all) fail.

        Posts to response URLs fail only when `methods` names ``"response_url"``.

        With ``status=429`` the answer carries ``Retry-After: retry_after`` and
        ``{"ok": false, "error": "ratelimited"}``; other statuses answer a server error; with
        ``reset=True`` the connection is closed abruptly without an HTTP response.
        """
        failure = _Failure(
            status=0 if reset else status,
            retry_after=retry_after,
            methods=frozenset(methods) if methods is not None else None,
        )
        with self._lock:
            self._state.scripted.extend(failure for _ in range(n))

    def outage(
        self,
        seconds: float,
        mode: OutageMode = "server_error",
        *,
        status: int | None = None,
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Fail every Web API call (of `methods`) for the next `seconds`.

        `mode` is ``"ratelimited"`` (429 + Retry-After), ``"server_error"`` (`status`, default
        500) or ``"reset"`` (connection closed without a response).
        """
        code = {"ratelimited": 429, "server_error": status or 500, "reset": 0}[mode]
        failure = _Failure(
            status=code,
            retry_after=retry_after,
            methods=frozenset(methods) if methods is not None else None,
        )
        with self._lock:
            self._state.outage = _Outage(failure, time.monotonic() + seconds)

    def heal(self) -> None:
        """Cancel scripted failures and any outage."""
        with self._lock:
            self._state.scripted.clear()
            self._state.outage = None

    # -- internals -------------------------------------------------------------------------------

    def _wait(self, find: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = find()
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._lock.wait(min(remaining, 0.1))

    def _take_failure(self, method: str, *, listed: bool = False) -> _Failure | None:
        """The failure scripted for this call, if any (`listed`: only if `method` was named)."""
        with self._lock:
            state = self._state
            for i, failure in enumerate(state.scripted):
                if failure.applies_to(method, listed=listed):
                    return state.scripted.pop(i)
            if state.outage is not None:
                if time.monotonic() >= state.outage.until:
                    state.outage = None
                elif state.outage.failure.applies_to(method, listed=listed):
                    return state.outage.failure
        return None

    def _record(self, call: Call, *, failed: bool = False, response: str | None = None) -> None:
        with self._lock:
            counts = self._state.counts
            counts[f"failed:{call.method}" if failed else call.method] += 1
            if not failed and "channel" in call.body:
                counts[f"{call.method}@{call.body['channel']}"] += 1
            if not self.record:
                pass
            elif response is not None:
                self._state.responses.setdefault(response, []).append(call)
            elif failed:
                self._state.failures.append(call)
            else:
                self._state.calls.append(call)
            self._lock.notify_all()

    def _next_ts(self) -> str:
        with self._lock:
            now_us = time.time_ns() // 1000
            ts_us = max(now_us, self._state.last_ts_us + 1)
            self._state.last_ts_us = ts_us
        return f"{ts_us // 1_000_000}.{ts_us % 1_000_000:06d}"

    def _user(self, user_id: str) -> dict[str, Any]:
        real_name = f"User {user_id}"
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": user_id.lower(),
            "real_name": real_name,
            "deleted": False,
            "is_bot": False,
            "is_admin": False,
            "tz": "Asia/Shanghai",
            "profile": {"real_name": real_name, "display_name": real_name},
        }
        override = self.users.get(user_id, {})
        user.update(override)
        if "real_name" in override:
            user["profile"] = {**user["profile"], "real_name": override["real_name"]}
        return user

    def _answer(self, method: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON answer of a Web API method to a successful call."""
        channel = body.get("channel")
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Fake Team",
                "user": "planbot",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method in ("chat.postMessage", "chat.update") and channel in self.outside:
            return {"ok": False, "error": "not_in_channel"}
        if method in ("chat.postMessage", "chat.update"):
            ts = self._next_ts() if method == "chat.postMessage" else str(body.get("ts", ""))
            message = {
                "type": "message",
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
                "text": body.get("text", ""),
                "ts": ts,
            }
            for key in ("blocks", "attachments", "thread_ts", "metadata"):
                if key in body:
                    message[key] = body[key]
            answer: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": message}
            if method == "chat.update":
                answer["text"] = body.get("text", "")
            return answer
        if method == "chat.getPermalink":
            ts = str(body.get("message_ts", "")).replace(".", "")
            return {
                "ok": True,
                "channel": channel,
                "permalink": f"https://fake.slack.test/archives/{channel}/p{ts}",
            }
        if method == "users.conversations":
            with self._lock:
                joined = sorted(self.joined - self.outside)
            return {
                "ok": True,
                "channels": [{"id": c, "is_member": True} for c in joined],
                "response_metadata": {"next_cursor": ""},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "users.info":
            user = self._user(str(body.get("user", "")))
            if str(body.get("include_locale", "")).lower() in ("1", "true"):
                user.setdefault("locale", "en-US")
            else:
                user.pop("locale", None)
            return {"ok": True, "user": user}
        if method == "conversations.info":
            channel_id = str(body.get("channel", ""))
            with self._lock:
                known = channel_id in self.channels
                override = self.channels.get(channel_id)
            if known and override is None:
                return {"ok": False, "error": "channel_not_found"}
            found: dict[str, Any] = {
                "id": channel_id,
                "name": channel_id.lower(),
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": channel_id not in self.outside,
            }
            found.update(override or {})
            return {"ok": True, "channel": found}
        if method in ("views.open", "views.update", "views.push", "views.publish"):
            view = body.get("view")
            if not isinstance(view, dict):
                return {"ok": False, "error": "invalid_arguments"}
            if method == "views.open" and not body.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            with self._lock:
                self._state.views += 1
                number = self._state.views
            view_id = str(body.get("view_id") or f"V{number:08d}")
            return {"ok": True, "view": {**view, "id": view_id, "hash": f"{number}.hash"}}
        if method == "usergroups.users.list":
            group = str(body.get("usergroup", ""))
            with self._lock:
                members = self.usergroups.get(group)
            if members is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(members)}
        return {"ok": True}


def _parse_body(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    """Parse a JSON or form-encoded body (plus query parameters) into a dict."""
    body: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not raw:
        return body
    if "json" in content_type:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return body
        if isinstance(parsed, dict):
            body.update(parsed)
        return body
    if "x-www-form-urlencoded" in content_type or not content_type:
        for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            if key == "payload" or key in _JSON_FIELDS:
                try:
                    body[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            body[key] = value
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path
        body = _parse_body(raw, self.headers.get("Content-Type", ""), parts.query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        now = time.time()

        if path == "/_fake/counts":
            self._send_json(200, fake.counts())
            return
        if path.startswith("/response/"):
            # /response/<name>/<anything>: one URL per interaction, as Slack gives, kept under name
            name = path[len("/response/") :].split("/", 1)[0]
            failure = fake._take_failure("response_url", listed=True)
            if failure is not None:
                fake._record(
                    Call(f"response/{name}", body, headers, now, raw, failure.status), failed=True
                )
                self._fail(failure)
                return
            fake._record(Call(f"response/{name}", body, headers, now, raw), response=name)
            self._send_json(200, {"ok": True})
            return

        method = path.rsplit("/", 1)[-1]
        if not (path == f"/api/{method}" or path == f"/{method}") or "." not in method:
            self._send_json(404, {"ok": False, "error": "unknown_method"})
            return

        delay = fake.method_latency.get(method, fake.latency)
        if delay:
            time.sleep(delay)
        failure = fake._take_failure(method)
        if failure is not None:
            fake._record(Call(method, body, headers, now, raw, failure.status), failed=True)
            self._fail(failure)
            return

        call = Call(method, body, headers, now, raw, 200)
        if call.token is not None and call.token in fake.refused_tokens:
            answer: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
        else:
            answer = fake._answer(method, body)
        refused = method.startswith("chat.") and answer.get("ok") is False  # e.g. not_in_channel
        fake._record(call, failed=refused)
        self._send_json(200, answer, {"x-oauth-scopes": ",".join(fake.scopes)})

    def _fail(self, failure: _Failure) -> None:
        if failure.status == 0:
            self._reset()
        elif failure.status == 429:
            self._send_json(
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(failure.retry_after)},
            )
        else:
            self._send_json(failure.status, {"ok": False, "error": "fatal_error"})

    def _send_json(
        self, status: int, payload: Mapping[str, Any], extra: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        """Close the connection with a TCP reset and no HTTP response."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake on its own until interrupted; print its Web API URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="keep no record of calls")
    args = parser.parse_args(argv)
    fake = FakeSlack(host=args.host, port=args.port, record=not args.no_record)
    print(fake.api_url, flush=True)
    try:
        fake._server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
