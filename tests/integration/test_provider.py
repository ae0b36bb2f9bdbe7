"""The provider connector on a real database, with the real SDK and IM client against loopback fakes.

Inventory drift (posted only when it changes), daily usage (a day fetched twice stored once,
owners warned once at 80% and once at 100%, within the IM API's rate limit, retried when
throttled), bill reconciliation, the schedule of `run_due`, and the lifecycle sweep's hook: a
failing provider never stops the sweep's other work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core import (
    ImKey,
    Message,
    PlanService,
    ProviderConfig,
    ProviderError,
    ProviderJobs,
    ProviderView,
    ReconciliationDifferences,
    UsageLevelReached,
    load_message,
)
from core.provider import ImRestApi, RateLimiter, TencentCloudAccount
from core.store.tables import OutboxRow, ProviderUsageRow
from tests.conftest import Clock, utc
from tests.integration.conftest import ADA
from tests.support.csvs import HEADER
from tests.support.fake_tencent import FakeIm, FakeTencentCloud, daily_figures

APPS = [
    "1400000101,std-one,standard,2025-01-01,,active,CTEAM,,",
    "1400000102,prem-one,premium,2025-02-01,,active,CTEAM,,",
    "1400000103,dev-one,developer,2026-08-20,,active,CDEV,2026-12-15,",
    "1400000104,legacy-one,standard,2021-05-01,,active,CTEAM,,",
    "1400000105,gone,standard,2025-01-01,,purged,CTEAM,,2025-03-01",
]
ADMIN = "administrator"


@pytest.fixture
def cloud() -> Iterator[FakeTencentCloud]:
    with FakeTencentCloud() as fake:
        yield fake


@pytest.fixture
def im() -> Iterator[FakeIm]:
    with FakeIm() as fake:
        yield fake


def key_of(app_id: str) -> str:
    return f"secret-key-of-{app_id}"


def config_for(
    cloud: FakeTencentCloud, im: FakeIm, apps: list[str], **changes: Any
) -> ProviderConfig:
    values: dict[str, Any] = {
        "secret_id": cloud.secret_id,
        "secret_key": cloud.secret_key,
        "endpoint": cloud.base_url,
        "im_host": im.base_url,
        "im_keys": {a: ImKey(a, ADMIN, key_of(a)) for a in apps},
        "timeout": 5.0,
    }
    values.update(changes)
    return ProviderConfig(**values)


def jobs_for(
    engine: Engine, service: PlanService, clock: Clock, config: ProviderConfig, **kwargs: Any
) -> ProviderJobs:
    no_wait = lambda seconds: None  # noqa: E731  (retries need no real pause against a fake)
    return ProviderJobs(
        store=service.store,
        config=service.config,
        provider=config,
        clock=clock,
        account=TencentCloudAccount(config, backoff=0, sleep=no_wait),
        usage=ImRestApi(config, backoff=0, sleep=no_wait, limiter=RateLimiter(config.im_rate)),
        **kwargs,
    )


@pytest.fixture
def seeded(seed: Callable[..., int]) -> None:
    seed("\n".join([HEADER, *APPS]) + "\n", now=utc(2026, 9, 1))


@pytest.fixture
def jobs(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    im: FakeIm,
    seeded: None,
) -> ProviderJobs:
    ids = ["1400000101", "1400000102", "1400000103"]
    for app_id in ids:
        im.add_app(
            app_id, admin=ADMIN, key=key_of(app_id), figures=daily_figures(date(2026, 11, 9))
        )
    return jobs_for(engine, service, clock, config_for(cloud, im, ids))


def posts(engine: Engine, kind: str) -> list[OutboxRow]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OutboxRow.__table__).order_by(OutboxRow.__table__.c.id)  # type: ignore[attr-defined]
        ).all()
    return [r for r in rows if r.payload.get("kind") == kind]  # type: ignore[attr-defined]


def message_of(post: OutboxRow) -> Message:
    """The typed message an outbox entry holds (as the delivery worker reads it)."""
    return load_message(post.payload)


def stored_days(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).select_from(ProviderUsageRow.__table__)  # type: ignore[attr-defined]
            ).scalar_one()
        )


# --- inventory drift ---------------------------------------------------------------------------


def test_sync_lists_unknown_and_missing_ids_and_posts_only_changes(
    jobs: ProviderJobs, cloud: FakeTencentCloud, engine: Engine, clock: Clock
) -> None:
    # the account lists two apps planbot knows, one it does not, and the purged one
    cloud.sdk_app_ids = [1400000101, 1400000102, 1400000999, 1400000105]
    report = jobs.sync()
    assert report.account_count == 4
    assert report.planbot_count == 4
    assert report.drift.unknown == ("1400000999",)
    assert report.drift.missing == ("1400000103", "1400000104")
    assert report.posted
    (post,) = posts(engine, "provider_drift")
    assert post.destination == "CAUDIT"
    assert post.payload["new_unknown"] == ["1400000999"]

    clock.advance(days=1)
    again = jobs.sync()
    assert not again.change and not again.posted
    assert len(posts(engine, "provider_drift")) == 1

    cloud.sdk_app_ids = [1400000101, 1400000102, 1400000103, 1400000104]
    resolved = jobs.sync()
    assert resolved.change.resolved == ("1400000103", "1400000104", "1400000999")
    assert resolved.drift.unknown == () and resolved.drift.missing == ()
    assert [p.payload["resolved"] for p in posts(engine, "provider_drift")][-1] == [
        "1400000103",
        "1400000104",
        "1400000999",
    ]


def test_sync_with_a_wrong_secret_key_fails_in_one_line_and_stores_nothing(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    im: FakeIm,
    seeded: None,
) -> None:
    cloud.sdk_app_ids = [1400000999]
    bad = jobs_for(engine, service, clock, config_for(cloud, im, [], secret_key="not-the-key"))
    with pytest.raises(ProviderError) as failed:
        bad.sync()
    assert failed.value.kind == "auth"
    assert failed.value.code == "AuthFailure.SignatureFailure"
    assert "check the credentials" in failed.value.line()
    assert cloud.errors() == ["AuthFailure.SignatureFailure"]  # never retried
    assert posts(engine, "provider_drift") == []


def test_sync_retries_when_throttled(jobs: ProviderJobs, cloud: FakeTencentCloud) -> None:
    cloud.sdk_app_ids = [1400000101]
    cloud.throttle(2)
    report = jobs.sync()
    assert report.account_count == 1
    assert cloud.errors() == ["RequestLimitExceeded", "RequestLimitExceeded", None]


def test_an_api_key_without_the_cam_permission_is_an_auth_failure(
    jobs: ProviderJobs, cloud: FakeTencentCloud
) -> None:
    cloud.allowed[cloud.secret_id] = {"billing:DescribeBillResourceSummary"}
    with pytest.raises(ProviderError) as failed:
        jobs.sync()
    assert failed.value.code == "AuthFailure.UnauthorizedOperation"
    assert "cim:DescribeSdkAppid" in failed.value.message


# --- usage -------------------------------------------------------------------------------------


def test_usage_stores_each_day_once_however_often_it_is_fetched(
    jobs: ProviderJobs, im: FakeIm, engine: Engine, clock: Clock
) -> None:
    first = jobs.fetch_usage()
    assert (first.apps, first.days, first.new_days) == (3, 90, 90)
    assert first.without_key == 1  # the legacy app has no key; the purged one is not asked
    again = jobs.fetch_usage()
    assert (again.days, again.new_days) == (90, 0)
    assert stored_days(engine) == 90

    # the next day's figures: one new day, and a revised one replaces the stored one
    figures = daily_figures(date(2026, 11, 10), active=50)
    im.apps["1400000101"].figures = figures
    third = jobs.fetch_usage(apps=["1400000101"])
    assert (third.days, third.new_days) == (30, 1)
    assert stored_days(engine) == 91
    view = ProviderView(store=jobs.store, provider=jobs.provider)
    assert view.on("1400000101", date(2026, 11, 9)).active_users == 49  # type: ignore[union-attr]
    assert len(view.days("1400000101", last=date(2026, 11, 10), count=14)) == 14


def test_owners_are_warned_once_at_80_and_once_at_100_percent(
    jobs: ProviderJobs, im: FakeIm, engine: Engine
) -> None:
    im.apps["1400000101"].figures = daily_figures(date(2026, 11, 9), active=8_500)
    jobs.fetch_usage(apps=["1400000101"])
    jobs.fetch_usage(apps=["1400000101"])  # the same figures again: no second warning
    (warning,) = [p for p in posts(engine, "provider_usage_level") if p.app_id == "1400000101"]
    assert warning.destination == "CTEAM"
    assert warning.payload["level"] == 80
    assert warning.payload["value"] == 8_500 and warning.payload["limit"] == 10_000

    im.apps["1400000101"].figures = daily_figures(date(2026, 11, 10), active=10_400)
    jobs.fetch_usage(apps=["1400000101"])
    levels = [
        message_of(p) for p in posts(engine, "provider_usage_level") if p.app_id == "1400000101"
    ]
    assert all(isinstance(m, UsageLevelReached) for m in levels)
    assert [m.level for m in levels] == [80, 100]  # type: ignore[union-attr]
    assert levels[1].over == 400 and levels[1].paid  # type: ignore[union-attr]


def test_a_developer_app_over_100_active_users_reaches_its_limit(
    jobs: ProviderJobs, im: FakeIm, engine: Engine
) -> None:
    im.apps["1400000103"].figures = daily_figures(date(2026, 11, 9), days=5, active=130)
    jobs.fetch_usage(apps=["1400000103"])
    found = [message_of(p) for p in posts(engine, "provider_usage_level")]
    assert [(m.app_id, m.level, m.paid) for m in found] == [  # type: ignore[union-attr]
        ("1400000103", 80, False),
        ("1400000103", 100, False),
    ]
    assert {p.destination for p in posts(engine, "provider_usage_level")} == {"CDEV"}


def test_usage_retries_when_throttled_and_reports_a_bad_key(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    im: FakeIm,
    seeded: None,
) -> None:
    for app_id in ("1400000101", "1400000102"):
        im.add_app(
            app_id, admin=ADMIN, key=key_of(app_id), figures=daily_figures(date(2026, 11, 9))
        )
    config = config_for(cloud, im, ["1400000101", "1400000102"], im_concurrency=1)
    keys = dict(config.im_keys)
    keys["1400000102"] = ImKey("1400000102", ADMIN, "a-stale-key")
    jobs = jobs_for(engine, service, clock, ProviderConfig(**{**config.__dict__, "im_keys": keys}))
    im.throttle(2)
    report = jobs.fetch_usage()
    assert report.apps == 1 and report.days == 30
    assert [app for app, _ in report.failed] == ["1400000102"]
    assert "70009" in report.failed[0][1]
    assert im.errors() == [60007, 60007, 0, 70009]


def test_usage_stays_within_the_rate_limit(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    seed: Callable[..., int],
) -> None:
    many = [f"14000020{n:02d}" for n in range(70)]
    rows = [f"{a},busy-{a},standard,2025-01-01,,active,CTEAM,," for a in many]
    seed("\n".join([HEADER, *rows]) + "\n", now=utc(2026, 9, 1))
    with FakeIm(limit_per_second=50) as im:
        for app_id in many:
            im.add_app(
                app_id, admin=ADMIN, key=key_of(app_id), figures=daily_figures(date(2026, 11, 9), 2)
            )
        jobs = jobs_for(engine, service, clock, config_for(cloud, im, many, im_rate=50.0))
        report = jobs.fetch_usage()
        assert report.apps == 70 and report.failed == ()
        assert set(im.errors()) == {0}  # not one call over the limit
        assert stored_days(engine) == 140


def test_a_long_usage_run_goes_on_where_the_last_sweep_stopped(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    im: FakeIm,
    seed: Callable[..., int],
) -> None:
    many = [f"14000030{n:02d}" for n in range(60)]
    rows = [f"{a},many-{a},standard,2025-01-01,,active,CTEAM,," for a in many]
    seed("\n".join([HEADER, *rows]) + "\n", now=utc(2026, 9, 1))
    for app_id in many:
        im.add_app(
            app_id, admin=ADMIN, key=key_of(app_id), figures=daily_figures(date(2026, 11, 9), 1)
        )
    jobs = jobs_for(engine, service, clock, config_for(cloud, im, many), usage_budget=timedelta(0))
    first = jobs.fetch_usage()
    assert (first.apps, first.complete) == (50, False)
    second = jobs.fetch_usage()
    assert (second.apps, second.complete) == (10, True)
    assert stored_days(engine) == 60
    assert len(im.calls) == 60  # no app asked twice


# --- reconciliation ----------------------------------------------------------------------------


def test_reconcile_compares_each_app_and_posts_the_differences(
    jobs: ProviderJobs, cloud: FakeTencentCloud, engine: Engine, service: PlanService
) -> None:
    # planbot's charge is the one `/plan bill` shows for the month
    ours = service.statement("1400000101", actor=ADA, year=2026, month=10)[1].total
    cloud.bill("2026-10", "1400000101", str(ours))
    cloud.bill("2026-10", "1400000102", "650.00", "699.00")
    cloud.bill("2026-10", "1400000102", "70.50", "70.50")  # a second line for the same app
    cloud.bill("2026-10", "1400000104", "120.00")  # legacy billing: planbot computes nothing
    cloud.bill("2026-10", "lb-12345", "9.99")  # another product's resource
    report = jobs.reconcile(2026, 10)
    by_app = {line.app_id: line for line in report.lines}
    assert set(by_app) == {"1400000101", "1400000102", "1400000104"}
    assert by_app["1400000101"].ours == ours
    assert not by_app["1400000101"].differs
    assert by_app["1400000102"].billed == Decimal("720.50")
    premium = service.statement("1400000102", actor=ADA, year=2026, month=10)[1].total
    assert by_app["1400000102"].ours == premium
    assert by_app["1400000102"].difference == Decimal("720.50") - premium
    assert by_app["1400000104"].legacy and not by_app["1400000104"].differs
    assert [line.app_id for line in report.differences] == ["1400000102"]
    (post,) = posts(engine, "provider_reconciliation")
    assert post.destination == "CAUDIT"
    posted = message_of(post)
    assert isinstance(posted, ReconciliationDifferences)
    assert [line.difference for line in posted.lines] == [Decimal("720.50") - premium]
    assert posted.apps_compared == 3
    with service.store.unit_of_work(write=False) as uow:  # every app's line is kept
        assert uow.provider.reconciliation("2026-10") == list(report.lines)
    # the same result again is not posted again
    assert not jobs.reconcile(2026, 10).posted
    assert len(posts(engine, "provider_reconciliation")) == 1


def test_reconcile_refuses_a_month_that_is_not_over(jobs: ProviderJobs) -> None:
    with pytest.raises(ValueError, match="not over yet"):
        jobs.reconcile(2026, 11)


# --- the schedule and the sweep ----------------------------------------------------------------


def test_run_due_syncs_and_fetches_daily_and_reconciles_once_from_the_4th(
    jobs: ProviderJobs, cloud: FakeTencentCloud, clock: Clock
) -> None:
    cloud.sdk_app_ids = [1400000101, 1400000102, 1400000103, 1400000104]
    cloud.bill("2026-11", "1400000101", "399.00")

    def actions() -> list[str]:
        return [c.action for c in cloud.calls]

    clock.set(utc(2026, 12, 3, 2))  # 3 December, 10:00 in UTC+8
    first = jobs.run_due()
    assert first.failed == ()
    assert [line.split(":")[0] for line in first.lines] == ["provider sync", "provider usage"]
    assert jobs.run_due().lines == ()  # done for the day
    clock.set(utc(2026, 12, 3, 16, 30))  # 4 December, 00:30 in UTC+8
    fourth = jobs.run_due()
    assert [line.split(":")[0] for line in fourth.lines] == [
        "provider sync",
        "provider usage",
        "provider reconcile 2026-11",
    ]
    clock.advance(days=1)
    assert [line.split(":")[0] for line in jobs.run_due().lines] == [
        "provider sync",
        "provider usage",
    ]
    assert actions().count("DescribeBillResourceSummary") == 1


def test_a_failing_job_backs_off_and_never_stops_the_others(
    jobs: ProviderJobs, cloud: FakeTencentCloud, clock: Clock
) -> None:
    clock.set(utc(2026, 11, 2, 4))  # before the 4th: no reconciliation due
    cloud.fail_next(3, "AuthFailure.SecretIdNotFound", "The SecretId is not found.")
    done = jobs.run_due()
    assert done.failed == ("provider-sync",)
    assert done.lines[0].startswith(
        "provider sync failed: cim answered AuthFailure.SecretIdNotFound"
    )
    assert done.lines[1].startswith("provider usage: 3 apps")  # the next job ran all the same
    clock.advance(minutes=5)
    assert jobs.run_due().lines == ()  # backing off: not asked again yet
    clock.advance(minutes=15)
    again = jobs.run_due()
    assert again.failed == ("provider-sync",)  # the scripted failures are not used up yet
    clock.advance(minutes=15)
    assert jobs.run_due().failed == ("provider-sync",)
    clock.advance(minutes=15)
    assert jobs.run_due().failed == ()


def test_the_lifecycle_sweep_runs_the_provider_jobs_and_survives_their_failure(
    engine: Engine,
    service: PlanService,
    clock: Clock,
    cloud: FakeTencentCloud,
    im: FakeIm,
    seed: Callable[..., int],
) -> None:
    seed(f"{HEADER}\n1400000201,expiring,developer,2026-10-01,,active,CTEAM,2026-11-09,\n")
    lifecycle = service.lifecycle
    bad = jobs_for(engine, service, clock, config_for(cloud, im, [], secret_key="wrong"))
    lifecycle.also = bad.sweep_hook
    report = lifecycle.sweep()
    assert report.suspended == 1  # the sweep's own work is done
    assert report.failed == ("provider-sync", "provider-reconcile")  # October, on the 10th
    assert "provider sync failed: cim answered AuthFailure.SignatureFailure" in report.summary()

    def broken(now: Any) -> Any:
        raise RuntimeError("boom")

    lifecycle.also = broken
    clock.advance(days=40)
    assert lifecycle.sweep().failed == ("provider",)
