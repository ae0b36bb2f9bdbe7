"""The outbox dispatcher: in order per app and destination, retries with backoff, exactly one sender."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    ChangeRequest,
    CoreConfig,
    DeliveryError,
    Operation,
    OutboxDispatcher,
    Plan,
    PlanService,
    Rendered,
    SqlStore,
)
from core.store.ports import OutboxEntry
from core.store.statements import OUTBOX
from tests.conftest import Clock
from tests.integration.conftest import ADA

Entry = tuple[str | None, str, int]  # app id, destination, sequence number in the payload


class FakeNotifier:
    """Records what it sends; raises the errors queued for an entry's number first."""

    def __init__(self, *, pause: float = 0.0) -> None:
        self.sent: list[tuple[str, int]] = []
        self.calls: Counter[int] = Counter()
        self.failures: dict[int, list[Exception]] = defaultdict(list)
        self.pause = pause
        self.lock = threading.Lock()

    def send(self, destination: str, payload: Mapping[str, Any], **_: Any) -> Mapping[str, Any]:
        number = int(payload["n"])
        with self.lock:
            self.calls[number] += 1
            if self.failures[number]:
                raise self.failures[number].pop(0)
        if self.pause:
            time.sleep(self.pause)
        with self.lock:
            self.sent.append((destination, number))
        return {"ts": f"{number}.0001"}


class FakeProvisioner:
    """Records the changes handed to it."""

    def __init__(self) -> None:
        self.changes: list[Mapping[str, Any]] = []

    def provision(self, change: Mapping[str, Any]) -> None:
        self.changes.append(dict(change))


def enqueue(engine: Engine, now: datetime, *entries: Entry, kind: str = "message") -> None:
    with SqlStore(engine).unit_of_work() as uow:
        for app_id, destination, number in entries:
            uow.outbox.add(
                OutboxEntry(
                    kind=kind,
                    topic="audit" if kind == "message" else "provision",
                    destination=destination,
                    app_id=app_id,
                    payload={"n": number},
                    created_at=now,
                )
            )
        uow.commit()


def rows(engine: Engine) -> dict[int, Any]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(OUTBOX)).mappings().all()
    return {int(r["payload"]["n"]): SimpleNamespace(**r) for r in found}


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def dispatcher(engine: Engine, notifier: FakeNotifier, clock: Clock) -> OutboxDispatcher:
    return OutboxDispatcher(
        store=SqlStore(engine), notifier=notifier, provisioner=FakeProvisioner(), clock=clock
    )


def in_order(sent: list[tuple[str, int]], entries: list[Entry]) -> bool:
    """Whether each (app, destination)'s entries were sent in the order they were written."""
    stream = {n: (app, dest) for app, dest, n in entries}
    seen: dict[tuple[str | None, str], int] = {}
    for _, number in sent:
        key = stream[number]
        if seen.get(key, -1) > number:
            return False
        seen[key] = number
    return True


def test_delivers_everything_in_order_per_app_and_destination(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    entries: list[Entry] = [
        (app, dest, n)
        for n, (app, dest) in enumerate(
            [("A", "CAUDIT"), ("A", "CTEAM"), ("B", "CAUDIT"), ("A", "CAUDIT")] * 5
        )
    ]
    enqueue(engine, clock(), *entries)
    report = dispatcher.deliver_due()
    assert (report.delivered, report.retried, report.dead) == (20, 0, 0)
    assert sorted(n for _, n in notifier.sent) == list(range(20))
    assert in_order(notifier.sent, entries)
    stored = rows(engine)
    assert {r.status for r in stored.values()} == {"delivered"}
    assert stored[3].receipt == {"ts": "3.0001"} and stored[3].delivered_at == clock()
    assert dispatcher.deliver_due().delivered == 0  # nothing is sent twice


def test_a_failing_entry_holds_back_the_next_one_for_its_app_and_destination(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    entries: list[Entry] = [("A", "CAUDIT", 0), ("A", "CAUDIT", 1), ("B", "CAUDIT", 2)]
    enqueue(engine, clock(), *entries)
    notifier.failures[0].append(DeliveryError("Slack is down"))
    report = dispatcher.deliver_due()
    assert (report.delivered, report.retried) == (1, 1)
    assert notifier.sent == [("CAUDIT", 2)]  # B is not held back by A
    failed = rows(engine)[0]
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == "Slack is down"
    assert clock() + timedelta(seconds=0.8) <= failed.next_attempt_at
    assert failed.next_attempt_at <= clock() + timedelta(seconds=1.2)
    assert dispatcher.deliver_due().delivered == 0  # not due yet
    clock.advance(seconds=2)
    assert dispatcher.deliver_due().delivered == 2
    assert notifier.sent == [("CAUDIT", 2), ("CAUDIT", 0), ("CAUDIT", 1)]


def test_retries_back_off_exponentially(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), ("A", "CAUDIT", 0))
    notifier.failures[0].extend(DeliveryError(f"failure {i}") for i in range(4))
    for attempt, backoff in enumerate([1, 2, 4, 8], start=1):
        started = clock()
        assert dispatcher.deliver_due().retried == 1
        entry = rows(engine)[0]
        assert entry.attempts == attempt
        waited = (entry.next_attempt_at - started).total_seconds()
        assert 0.8 * backoff <= waited <= 1.2 * backoff
        clock.set(entry.next_attempt_at)
    assert dispatcher.deliver_due().delivered == 1
    assert notifier.calls[0] == 5


def test_retry_after_is_honoured(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), ("A", "CAUDIT", 0))
    notifier.failures[0].append(DeliveryError("rate limited", retry_after=30))
    dispatcher.deliver_due()
    assert rows(engine)[0].next_attempt_at == clock() + timedelta(seconds=30)
    clock.advance(seconds=29)
    assert dispatcher.deliver_due().delivered == 0
    clock.advance(seconds=1)
    assert dispatcher.deliver_due().delivered == 1


def test_a_permanent_failure_is_marked_dead_and_not_retried(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), ("A", "CGONE", 0), ("A", "CGONE", 1))
    notifier.failures[0].append(DeliveryError("channel_not_found", permanent=True))
    report = dispatcher.deliver_due()
    assert (report.dead, report.delivered) == (1, 1)  # the next entry is not stuck behind it
    dead = rows(engine)[0]
    assert dead.status == "dead" and dead.last_error == "channel_not_found"
    clock.advance(days=1)
    assert dispatcher.deliver_due() == type(report)(0, 0, 0)
    assert notifier.calls[0] == 1


def test_an_unexpected_notifier_error_is_retried_not_lost(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), ("A", "CAUDIT", 0))
    notifier.failures[0].append(RuntimeError("bug in a notifier"))
    assert dispatcher.deliver_due().retried == 1
    assert rows(engine)[0].status == "pending"
    clock.advance(seconds=5)
    assert dispatcher.deliver_due().delivered == 1


def test_provisioning_entries_go_to_the_provisioner(engine: Engine, clock: Clock) -> None:
    notifier, provisioner = FakeNotifier(), FakeProvisioner()
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine), notifier=notifier, provisioner=provisioner, clock=clock
    )
    enqueue(engine, clock(), ("A", "provisioner", 7), kind="provision")
    enqueue(engine, clock(), ("A", "CAUDIT", 8))
    assert dispatcher.deliver_due().delivered == 2
    assert provisioner.changes == [{"n": 7}]
    assert notifier.sent == [("CAUDIT", 8)]


def pending_left(engine: Engine) -> int:
    with SqlStore(engine).unit_of_work(write=False) as uow:
        return uow.outbox.counts().get("pending", 0)


def test_two_dispatchers_at_once_never_deliver_one_entry_twice(
    engine: Engine, clock: Clock
) -> None:
    entries: list[Entry] = [
        (f"14000000{n % 6:02d}", ("CAUDIT", "CTEAM")[n % 3 == 0], n) for n in range(80)
    ]
    enqueue(engine, clock(), *entries)
    notifier = FakeNotifier(pause=0.002)
    dispatchers = [
        OutboxDispatcher(store=SqlStore(engine), notifier=notifier, provisioner=FakeProvisioner())
        for _ in range(2)
    ]
    start = threading.Barrier(2)
    delivered = [0, 0]

    def drain(index: int) -> None:
        start.wait()
        for _ in range(500):
            delivered[index] += dispatchers[index].deliver_due().delivered
            if not pending_left(engine):
                return

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(n for _, n in notifier.sent) == Counter(range(80))  # each exactly once
    assert sum(delivered) == 80 and min(delivered) > 0  # both really took part
    assert in_order(notifier.sent, entries)
    assert {r.status for r in rows(engine).values()} == {"delivered"}


def test_a_confirmed_change_reaches_its_channels_once(
    engine: Engine, config: CoreConfig, clock: Clock, seed: Any
) -> None:
    seed(
        "app_id,name,plan,created_at,owner_channel\n1400000001,dev-chat,developer,2026-11-01,CTEAM\n"
    )
    provisioner = FakeProvisioner()
    sent: list[tuple[str, Mapping[str, Any]]] = []

    class Recorder:
        def send(self, destination: str, payload: Mapping[str, Any], **_: Any) -> None:
            sent.append((destination, payload))

    dispatcher = OutboxDispatcher(
        store=SqlStore(engine), notifier=Recorder(), provisioner=provisioner, clock=clock
    )
    wakes: list[int] = []
    service = PlanService(
        engine=engine, config=config, clock=clock, on_outbox=lambda: wakes.append(1)
    )
    pending = service.request(
        ChangeRequest(Operation.UPGRADE, app="1400000001", plan=Plan.PREMIUM), actor=ADA
    )
    service.confirm(pending.id, actor=ADA)
    assert wakes  # the dispatcher is told to deliver right after the commit
    assert dispatcher.deliver_due().delivered == 4
    home = [p for d, p in sent if d == "home"]  # the home tabs that show the app are redrawn
    assert [(p["kind"], p["app_ids"]) for p in home] == [("home_changed", ["1400000001"])]
    sent = [(d, p) for d, p in sent if d != "home"]
    assert sorted(d for d, _ in sent) == ["CAUDIT", "CTEAM"]
    assert all(p["operation"] == "upgrade" and p["request_id"] == pending.id for _, p in sent)
    assert {p["kind"] for _, p in sent} == {"change_applied"}
    assert [c["idempotency_key"] for c in provisioner.changes] == [pending.id]
    assert dispatcher.deliver_due().delivered == 0


def test_a_slow_delivery_never_lets_another_dispatcher_send_the_same_entry(
    engine: Engine, clock: Clock
) -> None:
    """While one dispatcher is stuck on a slow send, the rest of its batch stays its own."""
    enqueue(engine, clock(), ("A", "CAUDIT", 0), ("B", "CAUDIT", 1), ("C", "CAUDIT", 2))
    sent: list[tuple[str, int]] = []
    lease = timedelta(seconds=60)
    other: list[OutboxDispatcher] = []

    class Slow:
        """Each send takes 50 s (within the lease), so the batch outlives the lease it got."""

        def send(self, destination: str, payload: Mapping[str, Any], **_: Any) -> None:
            clock.advance(seconds=50)
            if payload["n"] == 1:  # 100 s after the claim, another replica runs a pass
                other[0].deliver_due()
            sent.append((destination, int(payload["n"])))

    class Fast:
        def send(self, destination: str, payload: Mapping[str, Any], **_: Any) -> None:
            sent.append((destination, int(payload["n"])))

    first = OutboxDispatcher(
        store=SqlStore(engine),
        notifier=Slow(),
        provisioner=FakeProvisioner(),
        clock=clock,
        lease=lease,
    )
    other.append(
        OutboxDispatcher(
            store=SqlStore(engine),
            notifier=Fast(),
            provisioner=FakeProvisioner(),
            clock=clock,
            lease=lease,
        )
    )
    first.deliver_due()
    assert Counter(n for _, n in sent) == {0: 1, 1: 1, 2: 1}, sent
    assert {r.status for r in rows(engine).values()} == {"delivered"}


def test_several_senders_keep_each_destination_in_order_and_deliver_all_once(
    engine: Engine, notifier: FakeNotifier, clock: Clock
) -> None:
    notifier.pause = 0.005
    entries: list[Entry] = [
        (f"A{n % 7}", f"C{n % 3}", n)
        for n in range(60)  # three channels, seven apps
    ]
    enqueue(engine, clock(), *entries)
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine),
        notifier=notifier,
        provisioner=FakeProvisioner(),
        clock=clock,
        concurrency=4,
    )
    report = dispatcher.deliver_due()
    dispatcher.stop()
    assert (report.delivered, report.retried, report.dead) == (60, 0, 0)
    assert sorted(n for _, n in notifier.sent) == list(range(60))
    for channel in ("C0", "C1", "C2"):  # a channel reads its messages in the order written
        numbers = [n for dest, n in notifier.sent if dest == channel]
        assert numbers == sorted(numbers)
    assert dispatcher.deliver_due().delivered == 0


def test_a_stopping_dispatcher_gives_back_what_it_has_not_sent(
    engine: Engine, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), *[(None, "CAUDIT", n) for n in range(5)])
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine), notifier=notifier, provisioner=FakeProvisioner(), clock=clock
    )
    sent_first = threading.Event()
    original = notifier.send

    def send_then_stop(destination: str, payload: Mapping[str, Any], **_: Any) -> Mapping[str, Any]:
        receipt = original(destination, payload)
        if not sent_first.is_set():
            sent_first.set()
            dispatcher.stop(timeout=0)  # SIGTERM arrives while the first entry goes out
        return receipt

    notifier.send = send_then_stop  # type: ignore[method-assign]
    dispatcher.deliver_due()
    stored = rows(engine)
    assert [n for _, n in notifier.sent] == [0]
    assert stored[0].status == "delivered"
    # the rest are not leased to a dispatcher that is gone: the next one sends them at once
    assert all(
        stored[n].status == "pending" and stored[n].lease_until is None for n in (1, 2, 3, 4)
    )
    notifier.send = original  # type: ignore[method-assign]
    again = OutboxDispatcher(
        store=SqlStore(engine), notifier=notifier, provisioner=FakeProvisioner(), clock=clock
    )
    assert again.deliver_due().delivered == 4
    assert sorted(n for _, n in notifier.sent) == [0, 1, 2, 3, 4]


class FakeReplier:
    """Records replies; fails the first ones when told to."""

    def __init__(self, failures: list[DeliveryError] | None = None) -> None:
        self.replies: list[tuple[str, dict[str, Any]]] = []
        self.failures = failures or []

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.replies.append((url, dict(message)))


def test_replies_are_queued_and_delivered_in_order_per_url_with_retries(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    replier = FakeReplier([DeliveryError("response_url answered 500")])
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine),
        notifier=FakeNotifier(),
        provisioner=FakeProvisioner(),
        replier=replier,
        clock=clock,
        concurrency=4,
    )
    service.reply("https://hooks.example/1", Rendered(message={"text": "first"}))
    service.reply("https://hooks.example/2", Rendered(message={"text": "other card"}))
    service.reply("https://hooks.example/1", Rendered(message={"text": "second"}))
    report = dispatcher.deliver_due()
    # the first reply to /1 failed: the second to /1 waits for it; /2 goes on its own
    assert (report.delivered, report.retried) == (1, 1)
    assert [(url, m["message"]["text"]) for url, m in replier.replies] == [
        ("https://hooks.example/2", "other card")
    ]
    clock.advance(seconds=5)
    assert dispatcher.deliver_due().delivered == 2
    assert [m["message"]["text"] for url, m in replier.replies if url.endswith("/1")] == [
        "first",
        "second",
    ]
    dispatcher.stop()


def test_a_reply_without_a_replier_is_given_up_not_retried_forever(
    engine: Engine, service: PlanService, clock: Clock
) -> None:
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine), notifier=FakeNotifier(), provisioner=FakeProvisioner(), clock=clock
    )
    service.reply("https://hooks.example/1", Rendered(message={"text": "card"}))
    assert dispatcher.deliver_due().dead == 1


def test_entries_about_no_app_do_not_wait_for_each_other(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    enqueue(engine, clock(), (None, "CAUDIT", 0), (None, "CAUDIT", 1), ("A", "CAUDIT", 2))
    notifier.failures[0].append(DeliveryError("Slack is down"))
    report = dispatcher.deliver_due()
    assert (report.delivered, report.retried) == (2, 1)
    assert sorted(n for _, n in notifier.sent) == [1, 2]


def test_a_long_backlog_is_claimed_head_by_head(
    engine: Engine, dispatcher: OutboxDispatcher, notifier: FakeNotifier, clock: Clock
) -> None:
    # 300 entries in 30 queues of 10: each pass may take only the head of each queue
    entries: list[Entry] = [(f"A{n % 30}", "CAUDIT", n) for n in range(300)]
    enqueue(engine, clock(), *entries)
    with SqlStore(engine).unit_of_work() as uow:
        heads = uow.outbox.claim(clock(), clock() + timedelta(seconds=60), limit=1000)
        uow.commit()
    assert sorted(int(r.payload["n"]) for r in heads) == list(range(30))
    report = dispatcher.deliver_due()  # the heads are leased: nothing behind them goes first
    assert report.delivered == 0
    clock.advance(seconds=61)
    assert dispatcher.deliver_due().delivered == 300
    assert in_order(notifier.sent, entries)


# --- what a delivery tells: where a message went, and where none can go ---------------------------


class Postbox:
    """A notifier and a replier: posts are refused where planbot is not a member."""

    def __init__(self, outside: set[str]) -> None:
        self.outside = outside
        self.posted: list[tuple[str, Mapping[str, Any]]] = []
        self.replies: list[tuple[str, Mapping[str, Any]]] = []

    def send(self, destination: str, payload: Mapping[str, Any], **_: Any) -> Mapping[str, Any]:
        if destination in self.outside:
            raise DeliveryError("Slack answered 200 not_in_channel", unreachable="not_in_channel")
        self.posted.append((destination, payload))
        return {"channel": destination, "ts": f"1700000000.{len(self.posted):06d}"}

    def reply(self, url: str, message: Mapping[str, Any]) -> None:
        self.replies.append((url, message))


def postbox_dispatcher(engine: Engine, postbox: Postbox, clock: Clock) -> OutboxDispatcher:
    return OutboxDispatcher(
        store=SqlStore(engine),
        notifier=postbox,
        provisioner=FakeProvisioner(),
        replier=postbox,
        clock=clock,
        audit_channel="CAUDIT",
    )


def queue(engine: Engine, *entries: OutboxEntry) -> None:
    with SqlStore(engine).unit_of_work() as uow:
        for entry in entries:
            uow.outbox.add(entry)
        uow.commit()


@pytest.mark.parametrize("outside", [set(), {"CAPPROVALS"}])
def test_a_reply_that_follows_a_message_carries_where_it_was_posted(
    engine: Engine, clock: Clock, outside: set[str]
) -> None:
    postbox = Postbox(outside)
    card = OutboxEntry(
        kind="message",
        topic="approval",
        destination="CAPPROVALS",
        app_id="1400000001",
        payload={"n": 1},
        created_at=clock(),
        key="approval:r1",
    )
    follow = OutboxEntry(
        kind="reply",
        topic="reply",
        destination="url-hash",
        app_id="",
        payload={"url": "https://hooks/r1", "message": {"n": 2}, "after_key": "approval:r1"},
        created_at=clock(),
    )
    queue(engine, follow, card)  # even written first, the reply waits for the card
    dispatcher = postbox_dispatcher(engine, postbox, clock)
    for _ in range(3):
        dispatcher.deliver_due()
        clock.advance(seconds=1)
    [(url, message)] = postbox.replies
    assert url == "https://hooks/r1"
    if outside:  # the card could not be posted: the reply says so (no receipt)
        assert message == {"n": 2, "receipt": None}
    else:
        assert message == {"n": 2, "receipt": {"channel": "CAPPROVALS", "ts": "1700000000.000001"}}


def test_a_destination_planbot_cannot_reach_is_reported_once_a_day(
    engine: Engine, clock: Clock
) -> None:
    postbox = Postbox({"CGONE"})
    dispatcher = postbox_dispatcher(engine, postbox, clock)

    def lose(app_id: str) -> None:
        queue(
            engine,
            OutboxEntry(
                kind="message",
                topic="notice",
                destination="CGONE",
                app_id=app_id,
                payload={"n": 0},
                created_at=clock(),
            ),
        )
        dispatcher.deliver_due()

    for app_id in ("1400000001", "1400000002", "1400000003"):
        lose(app_id)
    reports = [p for d, p in postbox.posted if d == "CAUDIT"]
    assert [(p["kind"], p["destination"], p["reason"]) for p in reports] == [
        ("delivery_failed", "CGONE", "not_in_channel")
    ]
    assert {r.status for r in rows_by_destination(engine, "CGONE")} == {"dead"}
    clock.advance(days=1)
    lose("1400000004")
    assert len([d for d, _ in postbox.posted if d == "CAUDIT"]) == 2, "and again the next day"


def rows_by_destination(engine: Engine, destination: str) -> list[Any]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(OUTBOX).where(OUTBOX.c.destination == destination))
        return [SimpleNamespace(**r) for r in found.mappings().all()]
