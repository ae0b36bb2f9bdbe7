"""Talking to Slack off the ack path: outbox messages, card replacements, group lookups."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot.home import HomePublisher
from bot.i18n import speaking
from bot.notices import render
from bot.people import Languages
from bot.words import Words
from core import DeliveryError, HomeChanged, HomePublish, PlanService, Rendered, load_message

__all__ = [
    "GroupDirectory",
    "OutboxResponder",
    "Responder",
    "SlackNotifier",
    "SlackReplier",
    "make_client",
    "retry_handlers",
]

log = logging.getLogger(__name__)

#: Slack errors that say the destination itself can't be reached (the audit channel is told)
UNREACHABLE_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
#: the outbox messages that are about home tabs, not channels
HOME_KINDS = frozenset({"home_changed", "home_publish"})

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


def rendered(payload: Mapping[str, Any], words: Words) -> dict[str, Any]:
    """The Slack message of an outbox payload (a typed message); DeliveryError (permanent)
    when the payload holds none."""
    try:
        message = load_message(payload)
    except ValueError as err:
        raise DeliveryError(f"not a message planbot can render: {err}", permanent=True) from err
    return render(message, words)


def _in_language(
    languages: Languages | None, destination: str | None, *, person: bool = False
) -> AbstractContextManager[str | None]:
    """Speak the language of whoever reads at `destination` (a channel's, or a person's; with
    `person`, `destination` is a person's user id, or None for someone unknown)."""
    if languages is None:
        return nullcontext()
    if person:
        return speaking(languages.reading(destination) if destination else languages.default)
    return speaking(languages.reading(destination))


class SlackNotifier:
    """Delivers outbox message entries to Slack channels (the core's Notifier port), each in
    its reader's language (a channel's, or the person's it is sent to); the home tab's messages
    go to `home`, which draws home tabs (each in its person's language)."""

    def __init__(
        self,
        client: WebClient,
        words: Words,
        home: HomePublisher | None = None,
        languages: Languages | None = None,
    ) -> None:
        self.client = client
        self.words = words
        self.home = home
        self.languages = languages

    def render(self, payload: Mapping[str, Any], destination: str | None = None) -> dict[str, Any]:
        """The Slack message for an outbox payload, in the language of its reader."""
        with _in_language(self.languages, destination):
            return rendered(payload, self.words)

    def send(
        self,
        destination: str,
        payload: Mapping[str, Any],
        *,
        replaces: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """Post (or update) the message; map Slack's failures to retryable or permanent."""
        if payload.get("kind") in HOME_KINDS:
            return self.deliver_home(payload)
        message = self.render(payload, destination)
        try:
            if replaces:
                response = self.client.chat_update(
                    channel=replaces["channel"], ts=replaces["ts"], **message
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
                f"Slack answered {status} {code}",
                permanent=code in PERMANENT_ERRORS,
                unreachable=code if code in UNREACHABLE_ERRORS else None,
            ) from err
        except (SlackRequestError, OSError) as err:
            raise DeliveryError(f"Slack unreachable: {err}") from err
        return {"channel": response.get("channel"), "ts": response.get("ts")}

    def deliver_home(self, payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """A home tab message: expanded, or drawn (nothing to do where no tab is drawn)."""
        if self.home is None:
            return {}
        message = load_message(payload)
        assert isinstance(message, HomeChanged | HomePublish)
        reader = message.user_id if isinstance(message, HomePublish) else None
        with _in_language(self.languages, reader, person=True):
            return self.home.deliver(message)


class Responder(Protocol):
    """Where card replacements and private replies to a click go."""

    #: whether replies go through the outbox (so one can be queued with the change it answers)
    queues_in_outbox: bool

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Deliver `message` to the click's response_url."""
        ...

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued."""
        ...


class OutboxResponder:
    """Queues card replacements and private replies in the outbox, so acks never wait on Slack.

    They are delivered by the outbox dispatcher (another process under `planbot serve`), retried
    until Slack takes them, and survive a restart.
    """

    queues_in_outbox = True

    def __init__(self, service: PlanService) -> None:
        self.service = service

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Queue the POST to `url` (nothing when there is no URL)."""
        if url:
            self.service.reply(url, Rendered(message=dict(message)))

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is held here: queued replies are in the database."""


class SlackReplier:
    """Posts queued replies to their response_url (the core's Replier port).

    A reply that tells where a message was posted (the requester's card, once its approval card
    is in the channel) gets that message's permalink from Slack first, when a client is given.
    """

    def __init__(
        self,
        words: Words,
        client: WebClient | None = None,
        languages: Languages | None = None,
    ) -> None:
        self.words = words
        self.client = client
        self.languages = languages

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        """POST the message, in its reader's language; map Slack's refusals to retryable or
        permanent failures."""
        reader = message.get("reader")
        with _in_language(self.languages, reader if isinstance(reader, str) else None, person=True):
            body = rendered(with_permalink(message, self.client), self.words)
        client = WebhookClient(url, timeout=10, retry_handlers=retry_handlers())
        try:
            response = client.send_dict(body)
        except (SlackRequestError, OSError) as err:
            raise DeliveryError(f"response_url unreachable: {err}") from err
        status = response.status_code
        if status == 429:
            after = str((response.headers or {}).get("retry-after") or "1")
            raise DeliveryError("rate limited", retry_after=float(after) if after.isdigit() else 1)
        if status >= 500:
            raise DeliveryError(f"response_url answered {status}")
        if status >= 400:  # expired (30 minutes, five uses) or refused: retrying will not help
            raise DeliveryError(f"response_url refused the reply: {status}", permanent=True)


def with_permalink(message: Mapping[str, Any], client: WebClient | None) -> Mapping[str, Any]:
    """The message with the permalink of the posted message it refers to (its `receipt`), when
    Slack gives one; unchanged otherwise (the message then names the channel only)."""
    receipt = message.get("receipt")
    if client is None or not isinstance(receipt, Mapping) or message.get("permalink"):
        return message
    channel, ts = receipt.get("channel"), receipt.get("ts")
    if not channel or not ts:
        return message
    try:
        answer = client.chat_getPermalink(channel=str(channel), message_ts=str(ts))
    except Exception as err:  # the card still names the channel
        log.warning("no permalink for %s %s: %s", channel, ts, err)
        return message
    link = answer.get("permalink")
    return {**message, "permalink": link} if isinstance(link, str) and link else message


class GroupDirectory:
    """Which user groups a user is in, for the groups that hold grants.

    Memberships are kept for `ttl` seconds, then served as they were while one background thread
    reads them again, so a command never waits on Slack for a group already looked up; only the
    first lookup of a group (after start, a grant or `forget`) is made while the command waits.
    """

    def __init__(
        self, client: WebClient | None, groups_with_grants: Callable[[], set[str]], ttl: float = 60
    ) -> None:
        self.client = client
        self.groups_with_grants = groups_with_grants
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._granted_cache: tuple[float, set[str]] | None = None
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groups")

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The granted groups the user belongs to."""
        if self.client is None:
            return frozenset()
        return frozenset(g for g in self._granted() if user_id in self._users(g))

    def warm(self) -> None:
        """Look up every granted group in the background (at start, before the first command)."""
        if self.client is not None:
            self._pool.submit(lambda: [self._users(g) for g in self._granted()])

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
        with self._lock:
            cached = self._members.get(group)
            stale = cached is not None and time.monotonic() - cached[0] >= self.ttl
            if stale and group not in self._refreshing:
                self._refreshing.add(group)
                self._pool.submit(self._lookup, group)
        if cached is not None:
            return cached[1]
        return self._lookup(group)

    def _lookup(self, group: str) -> frozenset[str]:
        """Read the group's members from Slack (the last known ones if that fails)."""
        assert self.client is not None
        now = time.monotonic()
        with self._lock:
            cached = self._members.get(group)
        try:
            answer = self.client.usergroups_users_list(usergroup=group)
            users: frozenset[str] = frozenset(answer.get("users", []))
        except Exception as err:  # a lookup failure must not block the command
            log.warning("could not read user group %s: %s", group, err)
            users = cached[1] if cached else frozenset()
        with self._lock:
            self._members[group] = (now, users)
            self._refreshing.discard(group)
        return users

    def forget(self) -> None:
        """Drop the cache (after a grant or revoke)."""
        with self._lock:
            self._members.clear()
            self._granted_cache = None

    def close(self) -> None:
        """Stop the background lookups."""
        self._pool.shutdown(wait=False, cancel_futures=True)
