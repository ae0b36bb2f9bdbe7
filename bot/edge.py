"""What the HTTP edge checks before a request reaches Bolt, and what it trusts afterwards.

- `read_body`: the body, read from the ASGI stream a chunk at a time and refused past a size or a
  time limit, so a huge or slow body costs neither memory nor a worker for long.
- `signature_problem`, `ssl_check_ping`: Slack's signature on every request (its bare
  `ssl_check=1` ping is the one exception: answered, never dispatched).
- `ResponseUrls`: the hosts a `response_url` may point to (Slack's), so that a request can't make
  planbot POST to wherever it says.
- `Installation`: the workspace (team or enterprise) and app planbot is installed as, learnt from
  `auth.test` in the background at start, or from the settings; requests from any other are refused.
- `Redactor`: a log filter that keeps capability URLs (a response_url can post for 30 minutes)
  and tokens out of every log line.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from slack_sdk import WebClient
from starlette.requests import Request

__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "Installation",
    "Redactor",
    "ResponseUrls",
    "read_body",
    "signature_problem",
    "ssl_check_ping",
]

log = logging.getLogger(__name__)

#: what a content type may be (its parameters, such as a charset, aside)
CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "application/json"})
#: the longest a signature or timestamp header can sensibly be (`v0=` and 64 hex digits; 10 digits)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class BodyTooLarge(Exception):
    """The body is longer than the limit (said by Content-Length, or found while reading)."""


class BodyTimeout(Exception):
    """The body did not arrive in time."""


async def read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The body, read a chunk at a time: BodyTooLarge past `limit` bytes (nothing past it is
    read), BodyTimeout when it has not all arrived within `timeout` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        if declared.isdigit():
            raise BodyTooLarge(declared)
        raise BodyTooLarge("an unreadable Content-Length")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"more than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"{size} bytes in {timeout:g} s") from None
    return b"".join(chunks)


def ssl_check_ping(body: str) -> bool:
    """Whether this is Slack's `ssl_check=1` ping: a form with nothing to act on."""
    if "ssl_check" not in body or body.startswith("{"):
        return False
    form = parse_qs(body)
    return form.get("ssl_check") == ["1"] and not ({"command", "payload", "event"} & set(form))


def signature_problem(secret: str, body: str, headers: Mapping[str, str]) -> str | None:
    """What is wrong with the request's signature headers or content type (None: Slack signed
    it). Never raises, whatever the headers hold."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    content_type = headers.get("content-type")
    if not timestamp or not signature:
        return "no Slack signature"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "a malformed X-Slack-Request-Timestamp"
    if not _SIGNATURE.fullmatch(signature):
        return "a malformed X-Slack-Signature"
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in CONTENT_TYPES:
            return "a Content-Type Slack does not send"
    if abs(time.time() - int(timestamp)) > 60 * 5:
        return "a stale or future timestamp"
    try:
        signed = f"v0:{timestamp}:{body}".encode()
    except UnicodeError:  # never a 500: whatever fails here is a request not from Slack
        return "a signature that can't be checked"
    expected = "v0=" + hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "a bad signature"
    return None


@functools.cache
def _key(secret: str) -> bytes:
    return secret.encode()


# --- response_url ----------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ResponseUrls:
    """Which response_urls planbot posts to: https on an allowed host (`host`, on the default
    port, or `host:port`); plain http only to a loopback host (a local stand-in)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.hosts = frozenset(h.strip().lower() for h in hosts if h.strip())
        prefixes: list[str] = []
        for entry in sorted(self.hosts):
            host, _, port = entry.rpartition(":") if not entry.endswith("]") else (entry, "", "")
            if not host or not port.isdigit():
                host, port = entry, ""
            bare = host.strip("[]")
            schemes = ("https", "http") if _loopback(bare) else ("https",)
            for scheme in schemes:
                default = "443" if scheme == "https" else "80"
                if port and port != default:
                    prefixes.append(f"{scheme}://{host}:{port}/")
                else:
                    prefixes += [f"{scheme}://{host}/", f"{scheme}://{host}:{default}/"]
        #: the beginnings an allowed URL has: scheme, exactly the host (and port), then a path
        self.prefixes = tuple(prefixes)

    def allows(self, url: object) -> bool:
        """Whether a response_url may be posted to: it begins with an allowed scheme, host and
        port, up to the path's slash (so the host is exactly that one), and holds nothing but
        printable ASCII without spaces or backslashes."""
        return (
            isinstance(url, str)
            and len(url) <= 2048
            and url.startswith(self.prefixes)
            and url.isascii()
            and url.isprintable()
            and " " not in url
            and "\\" not in url
        )

    def keep_allowed(self, body: dict[str, Any]) -> list[str]:
        """Drop the response_urls of a request's body that may not be posted to (a slash
        command's or a click's `response_url`, a modal's `response_urls`); their hosts."""
        dropped: list[str] = []
        url = body.get("response_url")
        if url is not None and not self.allows(url):
            body.pop("response_url", None)
            dropped.append(_host_of(url))
        urls = body.get("response_urls")
        if isinstance(urls, list):
            kept = [u for u in urls if isinstance(u, dict) and self.allows(u.get("response_url"))]
            dropped += [
                _host_of(u.get("response_url"))
                for u in urls
                if u not in kept and isinstance(u, dict)
            ]
            body["response_urls"] = kept
        return dropped


def _host_of(url: object) -> str:
    """The host of a URL, for a log line (never its path: that is the capability)."""
    try:
        return (urlsplit(str(url)).hostname or "?")[:100]
    except ValueError:
        return "?"


# --- the installation ------------------------------------------------------------------------


class Installation:
    """The workspace (or enterprise) and the app planbot answers for.

    The workspace comes from `PLANBOT_ALLOWED_TEAMS` when set, else from `auth.test`, called once
    at start before the process serves, then (if Slack did not answer) in a background thread
    with a growing pause until it does; until then every request is refused. `app_id` (`PLANBOT_APP_ID`), when set, must be the request's
    `api_app_id`.
    """

    def __init__(
        self,
        *,
        teams: Iterable[str] = (),
        app_id: str | None = None,
        client: WebClient | None = None,
    ) -> None:
        self.teams: frozenset[str] | None = frozenset(teams) or None
        self.enterprise: str | None = None
        self.app_id = app_id
        self.client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def known(self) -> bool:
        """Whether the installation's workspace is known yet."""
        return self.teams is not None

    def learn(self) -> None:
        """Ask Slack (`auth.test`) once now, before the process serves (so that it never turns
        its own workspace away), and again in the background until it answers; unless the
        settings name the teams."""
        if self.known or self.client is None or self._thread is not None:
            return
        if self._asked():
            return
        self._thread = threading.Thread(target=self._ask, name="installation", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        pause = 0.5
        while not self._stop.wait(pause) and not self._asked():
            pause = min(pause * 2, 30.0)

    def _asked(self) -> bool:
        """One `auth.test`: whether it named the workspace."""
        assert self.client is not None
        try:
            answer = self.client.auth_test()
        except Exception as err:  # Slack unreachable at start: ask again
            log.warning("auth.test failed (%s); requests are refused until it answers", err)
            return False
        team = answer.get("team_id")
        enterprise = answer.get("enterprise_id") or None
        if not (isinstance(team, str) and team):
            log.warning("auth.test named no workspace; asking again")
            return False
        ids = {team}
        if enterprise and answer.get("is_enterprise_install"):
            ids.add(str(enterprise))
        self.enterprise = str(enterprise) if enterprise else None
        self.teams = frozenset(ids)
        log.info("installed in workspace %s", team)
        return True

    def close(self) -> None:
        """Stop asking."""
        self._stop.set()

    def refusal(self, team: str | None, enterprise: str | None, app_id: object) -> str | None:
        """Why a request from this team, enterprise and app is refused (None: it is ours)."""
        if self.app_id is not None and app_id != self.app_id:
            return "another app"
        if self.teams is None:
            return "a workspace not known yet (auth.test has not answered)"
        if enterprise and self.enterprise and enterprise != self.enterprise:
            return "another enterprise"
        if (team and team in self.teams) or (enterprise and enterprise in self.teams):
            return None
        return "another workspace"


# --- logs ------------------------------------------------------------------------------------

#: a URL's path and query (a response_url's capability), and Slack tokens
_URL_PATH = re.compile(r"(https?://[^/\s'\"<>]+)/[^\s'\"<>]*")
_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")


def redact(text: str) -> str:
    """The text without URL paths and tokens."""
    if "://" in text:
        text = _URL_PATH.sub(r"\1/…", text)
    if "x" in text:
        text = _TOKEN.sub(r"\1-…", text)
    return text


class Redactor(logging.Filter):
    """Rewrites a log record whose text holds a URL path or a Slack token (its traceback too)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a line."""
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        return True
