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

from bot.edge import ResponseUrls
from bot.home import HomePublisher
from bot.i18n import speaking
from bot.notices import render
from bot.people import Languages
from bot.words import Words
from core import (
    DatabaseBusy,
    DeliveryError,
    HomeChanged,
    HomePublish,
    PlanService,
    Rendered,
    load_message,
)

__all__ = [
    "DirectResponder",
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
        self._direct: ThreadPoolExecutor | None = None

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Queue the POST to `url` (nothing when there is no URL). When the database can't take
        it either (busy: what the message is likely to say), it is posted at once instead, from
        a thread beside the ack, once."""
        if not url:
            return
        try:
            self.service.reply(url, Rendered(message=dict(message)))
        except DatabaseBusy:
            if self._direct is None:
                self._direct = ThreadPoolExecutor(max_workers=2, thread_name_prefix="reply")
            self._direct.submit(_post_reply, url, dict(message))

    def close(self, timeout: float = 5.0) -> None:
        """Nothing is held here: queued replies are in the database (direct ones finish)."""
        if self._direct is not None:
            self._direct.shutdown(wait=True)


def _post_reply(url: str, message: dict[str, Any]) -> None:
    try:
        answer = WebhookClient(url, timeout=5).send_dict(message)
        if answer.status_code >= 300:
            log.warning("a reply posted directly was refused: %s", answer.status_code)
    except Exception as err:  # nothing to retry it from: the database is busy
        log.warning("a reply posted directly failed: %s", err)


class SlackReplier:
    """Posts queued replies to their response_url (the core's Replier port).

    A reply that tells where a message was posted (the requester's card, once its approval card
    is in the channel) gets that message's permalink from Slack first, when a client is given.
    """

    def __init__(
        self,
        words: Words,
        client: WebClient | None = None,
        response_urls: ResponseUrls | None = None,
        languages: Languages | None = None,
    ) -> None:
        self.words = words
        self.client = client
        self.response_urls = response_urls or ResponseUrls(("hooks.slack.com",))
        self.languages = languages

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        """POST the message, in its reader's language; map Slack's refusals to retryable or
        permanent failures."""
        if not self.response_urls.allows(url):  # checked where it came in; and again here
            log.warning("dropped a reply to a response_url outside PLANBOT_RESPONSE_URL_HOSTS")
            raise DeliveryError("response_url not on an allowed host", permanent=True)
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
            raise DeliveryError(
                "rate limited",
                retry_after=float(after) if after.isascii() and after.isdigit() else 1,
            )
        if status >= 500:
            raise DeliveryError(f"response_url answered {status}")
        if status >= 400:  # expired (30 minutes, five uses) or refused: retrying will not help
            raise DeliveryError(f"response_url refused the reply: {status}", permanent=True)


class DirectResponder:
    """Posts replies straight to their response_url from a background thread, without the
    database: the error handler's "nothing was changed" when the database itself failed.

    One try, a short timeout; a URL outside the allowed hosts is dropped."""

    queues_in_outbox = False

    def __init__(self, response_urls: ResponseUrls, *, timeout: int = 5) -> None:
        self.response_urls = response_urls
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="direct-reply")

    def send(self, url: str | None, message: Mapping[str, Any]) -> None:
        """Post `message` to `url` beside the ack (nothing when there is no allowed URL)."""
        if not url:
            return
        if not self.response_urls.allows(url):
            log.warning("dropped a reply to a response_url outside PLANBOT_RESPONSE_URL_HOSTS")
            return
        self._pool.submit(self._post, url, dict(message))

    def _post(self, url: str, message: dict[str, Any]) -> None:
        try:
            WebhookClient(url, timeout=int(self.timeout)).send_dict(message)
        except Exception as err:  # the person sees no reply; the error is already logged
            log.warning("could not post a reply to a response_url: %s", type(err).__name__)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the replies in hand."""
        self._pool.shutdown(wait=True, cancel_futures=False)


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
    """Which user groups a user is in, for the groups that hold grants; Slack is never asked
    while a command waits.

    Memberships are read in the background: all granted groups at start (`warm`), a group
    newly granted as soon as it is seen (`forget`, after a grant, schedules it: the members
    known so far are kept meanwhile), and each group again once its members are `ttl` seconds
    old. Lookups run in parallel (`workers` at a time), each waiting for Slack at most the
    client's timeout (the app builds it with `GROUP_ROUND_BUDGET`), and no group is looked up
    twice at once. A lookup that fails keeps the members last read; a group never read yet is
    `unknown` (its lookup is tried again `retry` seconds later), so a person who may hold a role
    through it is asked to try again in a few seconds rather than refused.
    """

    def __init__(
        self,
        client: WebClient | None,
        groups_with_grants: Callable[[], set[str]],
        ttl: float = 60,
        *,
        workers: int = 8,
        retry: float = 3.0,
    ) -> None:
        self.client = client
        self.groups_with_grants = groups_with_grants
        self.ttl = ttl
        self.retry = retry
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._failed: dict[str, float] = {}  # a group never read: when its last lookup failed
        self._granted_cache: tuple[float, set[str]] | None = None
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._lookups = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="groups")
        self._rounds = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groups-round")
        self._closed = False

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The granted groups the user is known to be in (the members last read)."""
        if self.client is None:
            return frozenset()
        granted = self._granted()
        self._refresh(granted)
        with self._lock:
            members = self._members
            return frozenset(g for g in granted if g in members and user_id in members[g][1])

    def unknown(self) -> frozenset[str]:
        """The granted groups whose members have never been read (being read now)."""
        if self.client is None:
            return frozenset()
        granted = self._granted()
        with self._lock:
            return frozenset(g for g in granted if g not in self._members)

    def warm(self) -> None:
        """Read every granted group in the background (at start, before the first command)."""
        if self.client is not None:
            self._rounds.submit(lambda: self._refresh(self._granted()))

    def forget(self) -> None:
        """After a grant or revoke: read the grants again, and the groups they name, in the
        background (the members known so far are used meanwhile)."""
        with self._lock:
            self._granted_cache = None
        self.warm()

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

    def _refresh(self, granted: set[str]) -> None:
        """Start a round for the groups never read, or read too long ago (none in flight)."""
        now = time.monotonic()
        with self._lock:
            if self._closed:
                return
            due = sorted(
                g
                for g in granted
                if g not in self._inflight
                and (
                    (g in self._members and now - self._members[g][0] >= self.ttl)
                    or (g not in self._members and now - self._failed.get(g, -1e9) >= self.retry)
                )
            )
            self._inflight.update(due)
        for group in due:
            self._lookups.submit(self._lookup, group)

    def _lookup(self, group: str) -> None:
        """Read the group's members from Slack (the last known ones stay if that fails)."""
        assert self.client is not None
        started = time.monotonic()
        try:
            answer = self.client.usergroups_users_list(usergroup=group)
            users: frozenset[str] = frozenset(answer.get("users", []))
        except Exception as err:  # keep what was known; a group never read stays unknown
            log.warning("could not read user group %s: %s", group, err)
            with self._lock:
                self._inflight.discard(group)
                if group in self._members:  # tried again after `ttl`, like a success
                    self._members[group] = (started, self._members[group][1])
                else:
                    self._failed[group] = time.monotonic()
            return
        with self._lock:
            self._members[group] = (started, users)
            self._failed.pop(group, None)
            self._inflight.discard(group)

    def close(self) -> None:
        """Stop the background lookups."""
        with self._lock:
            self._closed = True
        self._rounds.shutdown(wait=False, cancel_futures=True)
        self._lookups.shutdown(wait=False, cancel_futures=True)
