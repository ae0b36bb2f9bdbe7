"""The provider connector's records through the store's port: on a database (both backends) and
in memory (`tests/support/fake_store.py`), the same jobs keep and read back the same records.

The provider's two APIs are stubbed here (their real clients are tested against the loopback
fakes in `test_provider.py`): what matters is what the jobs write through `uow.provider`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from core import CoreConfig, DailyUsage, ImKey, PlanService, ProviderConfig, ProviderJobs
from core.domain import month_bounds
from core.importer import Imports
from core.provider import BilledAmount
from core.store.ports import Store
from tests.conftest import Clock, utc
from tests.integration.conftest import CLI
from tests.support.csvs import HEADER
from tests.support.fake_store import FakeStore

SEED = "\n".join(
    [
        HEADER,
        "1400000101,std-one,standard,2025-01-01,,active,CTEAM,,",
        "1400000102,prem-one,premium,2025-02-01,,active,CTEAM,,",
        "1400000103,dev-one,developer,2026-08-20,,active,CDEV,2026-12-15,",
        "1400000104,legacy-one,standard,2021-05-01,,active,CTEAM,,",
        "1400000105,gone,standard,2025-01-01,,purged,CTEAM,,2025-03-01",
    ]
)
KEYED = ("1400000101", "1400000102", "1400000103")


class StubAccount:
    """The account's ids and bills, as the test sets them."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.bills: dict[str, dict[str, BilledAmount]] = {}

    def app_ids(self) -> set[str]:
        return set(self.ids)

    def billed(self, month: str) -> dict[str, BilledAmount]:
        return dict(self.bills.get(month, {}))


class StubIm:
    """Each app's daily figures, as the test sets them."""

    def __init__(self) -> None:
        self.figures: dict[str, list[DailyUsage]] = {}

    def daily_usage(self, key: ImKey) -> list[DailyUsage]:
        return list(self.figures.get(key.app_id, []))


def month_of(app_id: str, last: date, *, active: int) -> list[DailyUsage]:
    return [
        DailyUsage(app_id, last - timedelta(days=back), active_users=active - back, logins=back)
        for back in range(30)
    ]


def scenario(store: Store, config: CoreConfig, clock: Clock) -> dict[str, Any]:
    """Sync, fetch usage three times, sync again, reconcile twice; what the port reads back."""
    account, im = StubAccount(), StubIm()
    connector = ProviderConfig(
        secret_id="id", secret_key="key", im_keys={a: ImKey(a, "admin", "k") for a in KEYED}
    )
    jobs = ProviderJobs(
        store=store, config=config, provider=connector, clock=clock, account=account, usage=im
    )
    reports: list[Any] = []
    account.ids = {"1400000101", "1400000102", "1400000999", "1400000105"}
    reports.append(jobs.sync())
    for app_id, active in zip(KEYED, (8_500, 200, 130), strict=True):
        im.figures[app_id] = month_of(app_id, date(2026, 11, 9), active=active)
    reports.append(jobs.fetch_usage())
    reports.append(jobs.fetch_usage())
    clock.advance(days=1)
    im.figures["1400000101"] = month_of("1400000101", date(2026, 11, 10), active=10_400)
    reports.append(jobs.fetch_usage())
    account.ids = {"1400000101", "1400000102", "1400000103", "1400000104"}
    reports.append(jobs.sync())
    account.bills["2026-10"] = {
        "1400000101": BilledAmount(Decimal("399.00")),
        "1400000102": BilledAmount(Decimal("720.50"), Decimal("699.00")),
    }
    reports.append(jobs.reconcile(2026, 10))
    reports.append(jobs.reconcile(2026, 10))
    start, end = month_bounds(2026, 10, config.billing_tz)
    with store.unit_of_work(write=False) as uow:
        read: dict[str, Any] = {
            "statuses": uow.provider.statuses(),
            "live": uow.provider.live_apps(),
            "some": uow.provider.live_apps(["1400000101", "1400000105"]),
            "none": uow.provider.live_apps([]),
            "october": uow.provider.apps_in(start, end),
            "usage": {
                a: uow.provider.usage(a, first=date(2026, 10, 1), last=date(2026, 11, 30))
                for a in KEYED
            },
            "drift": uow.provider.drift(),
            "reconciled": uow.provider.reconciliation("2026-10"),
            "not reconciled": uow.provider.reconciliation("2026-09"),
            "marks": {
                name: note
                for name, (_, note) in uow.provider.marks(
                    ["sync:ok", "usage:ok", "usage:cursor", "reconcile:2026-10:ok", "nothing"]
                ).items()
            },
        }
    return {"reports": reports, "read": read}


def test_the_records_are_the_same_in_memory_and_on_the_database(
    service: PlanService, config: CoreConfig, seed: Callable[..., int]
) -> None:
    seed(SEED + "\n", now=utc(2026, 9, 1))
    memory = FakeStore()
    start = utc(2026, 11, 10, 4)
    imports = Imports(
        store=memory, catalog=config.catalog, tz=config.billing_tz, clock=Clock(start)
    )
    imports.from_csv(SEED + "\n", actor=CLI, now=utc(2026, 9, 1))

    on_database = scenario(service.store, config, Clock(start))
    in_memory = scenario(memory, config, Clock(start))

    assert on_database == in_memory
    first_sync, *usage, resolved, reconciled, again = on_database["reports"]
    assert first_sync.posted and resolved.posted and resolved.change.resolved
    assert [(u.days, u.new_days) for u in usage] == [(90, 90), (90, 0), (90, 1)]
    # 80% of one paid app; 80% and 100% of the developer app; the paid one at 100% the next day
    assert [u.warnings for u in usage] == [3, 0, 1]
    assert reconciled.posted and not again.posted
    read: Mapping[str, Any] = on_database["read"]
    assert [a.app_id for a in read["live"]] == [
        "1400000101",
        "1400000102",
        "1400000103",
        "1400000104",
    ]
    assert [a.app_id for a in read["some"]] == ["1400000101"] and read["none"] == []
    assert read["statuses"]["1400000105"].value == "purged"
    assert len(read["usage"]["1400000101"]) == 31  # 30 days, then one more: each stored once
    assert read["usage"]["1400000101"][-2].active_users == 10_399  # a day fetched again: newer
    assert read["drift"].unknown == () and read["drift"].missing == ()
    assert [line.app_id for line in read["reconciled"]] == ["1400000101", "1400000102"]
    assert read["reconciled"][1].name == "prem-one"
    assert read["not reconciled"] == []
    assert read["marks"] == {
        "sync:ok": "",
        "usage:ok": "",
        "usage:cursor": "",
        "reconcile:2026-10:ok": "",
    }
