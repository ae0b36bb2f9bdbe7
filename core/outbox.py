"""Delivering the outbox: audit messages, notices, replies and provisioning calls, with retries.

Entries are written in the same transaction as the change they report. A dispatcher leases the
oldest due entry of each app and destination (so messages about one app arrive in order), delivers
it outside any transaction, and marks it delivered; a failure is retried with backoff (or after
the Retry-After the receiver asked for). Several dispatchers, in one process or several replicas,
never deliver one entry at the same time: leases are taken with row locks (SKIP LOCKED on
PostgreSQL, the single writer on SQLite). A crash between sending and marking can repeat one
delivery after the lease runs out; nothing is ever lost.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from core.domain import utcnow
from core.messages import DeliveryFailed, dump
from core.store.ports import OutboxEntry, Store

__all__ = [
    "DeliveryError",
    "DeliveryReport",
    "Notifier",
    "OutboxDispatcher",
    "Provisioner",
    "Replier",
]

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A delivery failed; `permanent` ones are not retried, others wait `retry_after` or backoff.

    `unreachable`: the destination itself can't be reached (the bot is not in the channel, the
    channel is gone or archived), with the platform's code; the audit channel is told, once a
    day per destination, since every message to it is lost until someone fixes that.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        unreachable: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent or unreachable is not None
        self.unreachable = unreachable


class Notifier(Protocol):
    """Delivers a message entry to a destination (a chat channel); returns a receipt."""

    def send(
        self,
        destination: str,
        payload: Mapping[str, Any],
        *,
        replaces: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any] | None:
        """Deliver (replacing the message of receipt `replaces`, when given), or raise
        DeliveryError."""
        ...


class Provisioner(Protocol):
    """Hands a confirmed change to the system that really provisions it."""

    def provision(self, change: Mapping[str, Any]) -> None:
        """Apply the change (idempotently, by its idempotency_key), or raise DeliveryError."""
        ...


class Replier(Protocol):
    """Answers a person at a reply URL the chat platform gave with their action."""

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        """Deliver, or raise DeliveryError."""
        ...


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0


class OutboxDispatcher:
    """Delivers due outbox entries, now (`deliver_due`) or in a background thread (`start`)."""

    def __init__(
        self,
        *,
        store: Store,
        notifier: Notifier,
        provisioner: Provisioner,
        replier: Replier | None = None,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = timedelta(seconds=60),
        max_backoff: float = 300.0,
        poll_interval: float = 2.0,
        concurrency: int = 1,
        audit_channel: str | None = None,
    ) -> None:
        self.store = store
        self.audit_channel = audit_channel
        self._marks = _GroupMarks(self._write_marks)
        self.notifier = notifier
        self.provisioner = provisioner
        self.replier = replier
        self.clock = clock
        self.lease = lease
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_due(self, *, limit: int = 1000) -> DeliveryReport:
        """Deliver what is due now, in order per app and destination, up to `limit` entries."""
        delivered = retried = dead = 0
        while delivered + retried + dead < limit and not self._stop.is_set():
            now = self.clock()
            with self.store.unit_of_work(fast=True) as reader:
                if not reader.outbox.any_due(now):  # a read: no write lock taken when idle
                    break
            with self.store.unit_of_work() as uow:
                claimed = uow.outbox.claim(now, now + self.lease, limit=50)
                uow.commit()
            if not claimed:
                break
            if self.concurrency > 1:
                # Each destination's entries go one after another, in the order written (a
                # channel reads in order); different destinations (each click's response_url)
                # at the same time.
                by_destination: dict[str, list[OutboxEntry]] = {}
                for entry in claimed:
                    by_destination.setdefault(entry.destination, []).append(entry)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="deliver")
                send_all = functools.partial(self._send_all, claimed_at=now)
                groups = list(self._pool.map(send_all, by_destination.values()))
            else:
                groups = [self._send_all(claimed, claimed_at=now)]
            results = [result for group in groups for result in group]
            delivered += results.count("delivered")
            retried += results.count("retry")
            dead += results.count("dead")
        return DeliveryReport(delivered, retried, dead)

    def _send_all(self, entries: list[OutboxEntry], claimed_at: datetime) -> list[str]:
        return [self._send(entry, claimed_at) for entry in entries]

    def _send(self, entry: OutboxEntry, claimed_at: datetime) -> str:
        entry_id, attempts = entry.id, entry.attempts
        assert entry_id is not None
        if self._stop.is_set():  # stopping: not sent, so free for the next dispatcher at once
            self._update(entry_id, {"lease_until": None})
            return "released"
        # Past half the lease, renew it before sending (one more write), so a slow batch never
        # sends an entry another dispatcher may have claimed meanwhile.
        stale = self.clock() - claimed_at > self.lease / 2
        if stale and not self._renew_lease(entry_id, attempts):
            return "lost"  # its lease ran out while earlier entries were sent: not ours now
        return self._deliver_one(entry)

    def _deliver_one(self, entry: OutboxEntry) -> str:
        entry_id, attempts, payload = entry.id or 0, entry.attempts, entry.payload
        receipt: Mapping[str, Any] | None = None
        try:
            if entry.kind == "provision":
                self.provisioner.provision(payload)
            elif entry.kind == "reply":
                if self.replier is None:
                    raise DeliveryError("no replier is configured", permanent=True)
                message = payload["message"]
                if payload.get("after_key"):  # it tells where an earlier entry was posted
                    message = {**message, "receipt": self._receipt_by_key(payload["after_key"])}
                self.replier.reply(str(payload["url"]), message)
            else:
                replaces = None
                if payload.get("update_of") is not None:
                    replaces = self._receipt_of(int(payload["update_of"]))
                receipt = self.notifier.send(entry.destination, payload, replaces=replaces)
        except DeliveryError as err:
            if err.unreachable:
                self._report_unreachable(entry, err.unreachable)
            return self._failed(entry_id, attempts, err)
        except Exception as err:  # a bug in a notifier must not stop the others; retry later
            log.exception("outbox entry %s: unexpected delivery error", entry_id)
            return self._failed(entry_id, attempts, DeliveryError(repr(err)))
        self._marks.mark(
            entry_id,
            {
                "status": "delivered",
                "delivered_at": self.clock(),
                "lease_until": None,
                "last_error": None,
                "receipt": dict(receipt or {}),
            },
        )
        return "delivered"

    def _renew_lease(self, entry_id: int, attempts: int) -> bool:
        """Extend the lease of a claimed entry just before sending it; False if it was re-claimed.

        A batch is sent one entry after another, so a slow receiver can outlast the lease taken
        at claim time; another dispatcher may then have claimed (and counted an attempt on) the
        entries still waiting here.
        """
        with self.store.unit_of_work() as uow:
            row = uow.outbox.get(entry_id, lock=True)
            if row is None or row.status != "pending" or row.attempts != attempts:
                return False
            uow.outbox.update(entry_id, {"lease_until": self.clock() + self.lease})
            uow.commit()
        return True

    def _receipt_of(self, entry_id: int) -> dict[str, Any]:
        with self.store.unit_of_work(fast=True) as uow:
            row = uow.outbox.get(entry_id)
        if row is not None and row.status == "dead":
            raise DeliveryError(f"entry {entry_id} it updates was never delivered", permanent=True)
        if row is None or row.status != "delivered":
            raise DeliveryError(
                f"entry {entry_id} it updates is not delivered yet", retry_after=0.5
            )
        return dict(row.receipt)

    def _receipt_by_key(self, key: str) -> dict[str, Any] | None:
        """Where the entry with `key` was delivered; None if it never will be."""
        with self.store.unit_of_work(fast=True) as uow:
            row = uow.outbox.by_key(key)
        if row is None or row.status == "dead":
            return None
        if row.status != "delivered":
            raise DeliveryError(f"entry {key} is not delivered yet", retry_after=0.5)
        return dict(row.receipt)

    def _report_unreachable(self, entry: OutboxEntry, reason: str) -> None:
        """Tell the audit channel, once a day per destination, that messages to a destination
        are being lost (never about the audit channel itself)."""
        if not self.audit_channel or entry.destination == self.audit_channel:
            return
        if entry.kind != "message":
            return
        now = self.clock()
        notice = DeliveryFailed(
            destination=entry.destination,
            reason=reason,
            topic=entry.topic,
            app_id=entry.app_id,
            at=now,
        )
        report = OutboxEntry(
            kind="message",
            topic="audit",
            destination=self.audit_channel,
            app_id=None,
            payload=dump(notice),
            created_at=now,
            key=f"undeliverable:{entry.destination}:{now:%Y-%m-%d}",
        )
        try:
            with self.store.unit_of_work() as uow:
                if uow.outbox.add_once([report]):
                    uow.after_commit(self.wake)
                uow.commit()
        except Exception:  # the report must not keep the failed entry from being marked
            log.exception("could not report the undeliverable destination %s", entry.destination)

    def _update(self, entry_id: int, values: dict[str, Any]) -> None:
        """Set columns of one entry (a lost write only repeats a delivery)."""
        self._write_marks([(entry_id, values)])

    def _write_marks(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        with self.store.unit_of_work(fast=True, durable=False) as uow:
            uow.outbox.update_many(rows)
            uow.commit()

    def _failed(self, entry_id: int, attempts: int, err: DeliveryError) -> str:
        now = self.clock()
        if err.retry_after is not None:
            delay = float(err.retry_after)
        else:
            delay = min(self.max_backoff, 2.0 ** min(attempts - 1, 16))
            delay *= random.uniform(0.8, 1.2)
        failed: dict[str, Any] = {"lease_until": None, "last_error": err.reason[:500]}
        if err.permanent:
            failed["status"] = "dead"
        else:
            failed["next_attempt_at"] = now + timedelta(seconds=delay)
        self._update(entry_id, failed)
        if err.permanent:
            log.error("outbox entry %s given up: %s", entry_id, err.reason)
            return "dead"
        log.warning("outbox entry %s failed (%s); retry in %.1fs", entry_id, err.reason, delay)
        return "retry"

    # --- background thread -----------------------------------------------------------------

    def wake(self) -> None:
        """Deliver soon (called after a transaction wrote entries)."""
        self._wake.set()

    def start(self) -> None:
        """Deliver in a background thread until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (the entry being delivered finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # queued sends see the stop and give their entry back
            self._pool = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.deliver_due()
            except Exception:  # the database may be briefly unreachable: keep the thread alive
                log.exception("outbox delivery pass failed")
                self._stop.wait(self.poll_interval)


class _GroupMarks:
    """ "Delivered" marks written together: each sender waits until its own mark is written,
    and whichever sender writes takes every mark waiting at that moment (a group commit).

    With several senders a mark per transaction made the marks queue for the database one by
    one (on SQLite, behind the acks' own writes). A sender still never goes on to its next entry
    before its mark is written, so a crash repeats at most one delivery per sender, as before.
    """

    def __init__(self, write: Callable[[list[tuple[int, dict[str, Any]]]], None]) -> None:
        self._write = write
        self._changed = threading.Condition()
        self._waiting: list[tuple[int, dict[str, Any]]] = []
        self._writing = False
        self._written = 0  # marks are numbered in arrival order; those up to here are written
        self._arrived = 0
        self._failed: dict[int, BaseException] = {}  # by number: a failed write, for its sender

    def mark(self, entry_id: int, values: dict[str, Any]) -> None:
        """Write the entry's mark (with whatever other marks wait); raise if that failed."""
        with self._changed:
            self._arrived += 1
            number = self._arrived
            self._waiting.append((entry_id, values))
            while self._writing and self._written < number and number not in self._failed:
                self._changed.wait()
            if number in self._failed:
                raise self._failed.pop(number)
            if self._written >= number:
                return
            self._writing = True  # this sender writes every mark waiting, its own included
            batch, self._waiting = self._waiting, []
            last = self._arrived
        error: BaseException | None = None
        try:
            self._write(batch)
        except BaseException as err:
            error = err
        with self._changed:
            self._writing = False
            if error is None:
                self._written = last
            else:
                self._failed.update((n, error) for n in range(last - len(batch) + 1, last + 1))
            self._changed.notify_all()
            if number in self._failed:
                raise self._failed.pop(number)
