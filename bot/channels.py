"""Which channels planbot can post in, known in the background (never asked on the ack path).

An app is owned by a channel: its expiry reminders, purge warnings and statements go there. A
channel planbot is not a member of (or a direct message) would silently lose them, so creating
an app (or granting a team its role) there is refused with the fix. Slack is never asked while a
command waits: at start, one background read lists the channels planbot is in
(`users.conversations`); a channel not seen yet is looked up in the background
(`conversations.info`) while the person is told to try again in a few seconds; what is known is
read again after `ttl` seconds, and a channel planbot was not in is looked at again at once, so
an invitation is noticed on the next try.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

__all__ = ["ChannelDirectory", "Reach"]

log = logging.getLogger(__name__)


class Reach(enum.Enum):
    """Whether planbot can post in a channel, as far as it knows now."""

    MEMBER = "member"  # planbot is in the channel
    OUTSIDE = "outside"  # planbot is not in it (or it is archived, or gone)
    DIRECT = "direct"  # a direct message: not a team's channel
    UNKNOWN = "unknown"  # never seen: being looked up


class ChannelDirectory:
    """Where planbot is a member, read from Slack in the background and kept `ttl` seconds.

    Without a client (the local shell) every channel but a direct message counts as one planbot
    is in.
    """

    def __init__(self, client: WebClient | None, *, ttl: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl
        self._known: dict[str, tuple[float, bool]] = {}
        self._looking: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channels")

    def reach(self, channel_id: str | None) -> Reach:
        """Whether planbot can post in the channel (never waits on Slack)."""
        channel = (channel_id or "").strip()
        if not channel or channel.startswith("D"):
            return Reach.DIRECT
        if self.client is None:
            return Reach.MEMBER
        now = time.monotonic()
        with self._lock:
            known = self._known.get(channel)
        if known is None:
            self._look_up(channel)
            return Reach.UNKNOWN
        seen_at, member = known
        if not member or now - seen_at >= self.ttl:
            self._look_up(channel)  # answered from what is known; the next try sees the news
        return Reach.MEMBER if member else Reach.OUTSIDE

    def warm(self) -> None:
        """List the channels planbot is in, in the background (at start)."""
        if self.client is not None:
            self._pool.submit(self._list_mine)

    def _look_up(self, channel: str) -> None:
        with self._lock:
            if channel in self._looking:
                return
            self._looking.add(channel)
        self._pool.submit(self._info, channel)

    def _info(self, channel: str) -> None:
        """Read one channel's membership (a failure leaves what was known)."""
        assert self.client is not None
        try:
            answer = self.client.conversations_info(channel=channel)
            info = answer.get("channel") or {}
            member = bool(info.get("is_member")) and not info.get("is_archived")
            with self._lock:
                self._known[channel] = (time.monotonic(), member)
        except SlackApiError as err:  # channel_not_found: planbot can't see it, or it is gone
            if err.response.get("error") in ("channel_not_found", "is_archived"):
                with self._lock:
                    self._known[channel] = (time.monotonic(), False)
            else:
                log.warning("could not look up channel %s: %s", channel, err)
        except Exception as err:  # unreachable: the next try looks again
            log.warning("could not look up channel %s: %s", channel, err)
        finally:
            with self._lock:
                self._looking.discard(channel)

    def _list_mine(self) -> None:
        """Every channel planbot is in (paged), marked as such."""
        assert self.client is not None
        cursor = None
        try:
            while True:
                answer = self.client.users_conversations(
                    types="public_channel,private_channel",
                    exclude_archived=True,
                    limit=1000,
                    cursor=cursor,
                )
                now = time.monotonic()
                with self._lock:
                    for channel in answer.get("channels") or []:
                        if channel.get("id"):
                            self._known[str(channel["id"])] = (now, True)
                cursor = (answer.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return
        except Exception as err:  # the per-channel lookups still work
            log.warning("could not list planbot's channels: %s", err)

    def close(self) -> None:
        """Stop the background lookups."""
        self._pool.shutdown(wait=False, cancel_futures=True)
