"""Talking to Slack off the ack path: outbox messages, card replacements, group lookups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot import blocks
from bot.notices import notice_message
from core import DeliveryError

__all__ = [
    "GroupDirectory",
    "Responder",
    "ResponseSender",
    "SlackNotifier",
    "make_client",
    "retry_handlers",
]

log = logging.getLogger(__name__)

#: Slack errors that retrying will not fix
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "no_permission",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
    }
)


def retry_handlers() -> list[Any]:
    """Short in-call retries; the outbox retries further with its own backoff."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=1),
        ServerErrorRetryHandler(max_retry_count=1),
        ConnectionErrorRetryHandler(max_retry_count=1),
    ]


def make_client(token: str | None, base_url: str) -> WebClient:
    """The Web API client, pointed at Slack or at a local stand-in."""
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=retry_handlers())


class SlackNotifier:
    """Delivers outbox message entries to Slack channels (the core's Notifier port)."""

    def __init__(self, client: WebClient, tz: ZoneInfo) -> None:
        self.client = client
        self.tz = tz

    def render(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The Slack message for an outbox payload."""
        kind = payload.get("type")
        if kind == "approval":
            return blocks.approval_card(payload, self.tz)
        message = notice_message(dict(payload))
        if message is not None:
            return message
        return blocks.audit_message(payload, self.tz)

    def send(self, destination: str, payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Post (or update) the message; map Slack's failures to retryable or permanent."""
        message = self.render(payload)
        try:
            receipt = payload.get("receipt")
            if payload.get("update_of") and receipt:
                response = self.client.chat_update(
                    channel=receipt["channel"], ts=receipt["ts"], **message
                )
            else:
                response = self.client.chat_postMessage(
                    channel=destination, unfurl_links=False, unfurl_media=False, **message
                )
        except SlackApiError as err:
            status = err.response.status_code
            code = str(err.response.get("error", "")) if err.response else ""
            if status == 429:
                after = err.response.headers.get("Retry-After", "1")
                raise DeliveryError("rate limited", retry_after=float(after)) from err
            raise DeliveryError(
                f"Slack answered {status} {code}", permanent=code in PERMANENT_ERRORS
            ) from err
        except (SlackRequestError, OSError) as err:
            raise DeliveryError(f"Slack unreachable: {err}") from err
        return {"channel": response.get("channel"), "ts": response.get("ts")}


class Responder(Protocol):
    """Where card replacements and private replies to a click go."""

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Deliver `message` to the click's response_url."""
        ...

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued."""
        ...


class ResponseSender:
    """Replaces cards through `response_url` in the background, so acks never wait on Slack."""

    def __init__(self, *, workers: int = 4, attempts: int = 5) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="respond")
        self.attempts = attempts

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Queue the POST to `url` (nothing when there is no URL)."""
        if url:
            self.pool.submit(self._post, url, dict(message))

    def _post(self, url: str, message: dict[str, Any]) -> None:
        client = WebhookClient(url, timeout=10, retry_handlers=retry_handlers())
        for attempt in range(1, self.attempts + 1):
            try:
                response = client.send_dict(message)
                if response.status_code < 500 and response.status_code != 429:
                    if response.status_code >= 400:
                        log.warning("response_url refused the card: %s", response.status_code)
                    return
            except Exception as err:  # network trouble: try again a little later
                log.warning("response_url post failed (%s), attempt %d", err, attempt)
            time.sleep(min(2**attempt, 10))
        log.error("gave up replacing a card after %d attempts", self.attempts)

    def close(self, timeout: float = 5.0) -> None:
        """Finish queued posts (waits at most about `timeout`)."""
        done = threading.Event()

        def _shutdown() -> None:
            self.pool.shutdown(wait=True)
            done.set()

        threading.Thread(target=_shutdown, daemon=True).start()
        done.wait(timeout)


class GroupDirectory:
    """Which user groups a user is in, for the groups that hold grants (cached a few minutes)."""

    def __init__(
        self, client: WebClient | None, groups_with_grants: Callable[[], set[str]], ttl: float = 60
    ) -> None:
        self.client = client
        self.groups_with_grants = groups_with_grants
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._granted_cache: tuple[float, set[str]] | None = None
        self._lock = threading.Lock()

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The granted groups the user belongs to."""
        if self.client is None:
            return frozenset()
        return frozenset(g for g in self._granted() if user_id in self._users(g))

    def _granted(self) -> set[str]:
        """The groups holding grants, re-read at most every `ttl` seconds (or after `forget`)."""
        now = time.monotonic()
        with self._lock:
            if self._granted_cache is not None and now - self._granted_cache[0] < self.ttl:
                return self._granted_cache[1]
        groups = self.groups_with_grants()
        with self._lock:
            self._granted_cache = (now, groups)
        return groups

    def _users(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._members.get(group)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        assert self.client is not None
        try:
            answer = self.client.usergroups_users_list(usergroup=group)
            users: frozenset[str] = frozenset(answer.get("users", []))
        except Exception as err:  # a lookup failure must not block the command
            log.warning("could not read user group %s: %s", group, err)
            users = cached[1] if cached else frozenset()
        with self._lock:
            self._members[group] = (now, users)
        return users

    def forget(self) -> None:
        """Drop the cache (after a grant or revoke)."""
        with self._lock:
            self._members.clear()
            self._granted_cache = None
