"""End to end: `planbot provider sync|usage|reconcile` and `planbot tick` as processes, the real SDK
and IM client against loopback fakes that verify TC3 signatures and UserSigs, a fake Slack.

Also `/plan usage` and `/plan status` through `planbot serve` with signed Slack requests.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fakes.slack import FakeSlack
from tests.e2e.conftest import (
    ADMIN,
    AUDIT,
    PLANBOT,
    TEAM,
    card_text,
    planbot_env,
    start_planbot,
    stop_planbot,
)
from tests.support.csvs import HEADER
from tests.support.fake_tencent import FakeIm, FakeTencentCloud, daily_figures

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEYED = ("1400000101", "1400000201")


def yesterday() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date() - timedelta(days=1)


def warnings_due() -> int:
    """Owners are warned about the current month: none on the 1st, when yesterday was the last."""
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    return 2 if yesterday().month == today.month else 0


def last_month() -> str:
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first:%Y-%m}"


@dataclass
class World:
    """The processes' world: a database, the fakes, and the environment that points at them."""

    tmp: Path
    slack: FakeSlack
    cloud: FakeTencentCloud
    im: FakeIm
    env: dict[str, str]

    def planbot(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLANBOT, *args],
            env=env or self.env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )


def provider_env(cloud: FakeTencentCloud, im: FakeIm, keys: Path) -> dict[str, str]:
    return {
        "TENCENTCLOUD_SECRET_ID": cloud.secret_id,
        "TENCENTCLOUD_SECRET_KEY": cloud.secret_key,
        "TENCENTCLOUD_REGION": "ap-singapore",
        "PLANBOT_TENCENT_ENDPOINT": cloud.base_url,
        "PLANBOT_IM_KEYS": str(keys),
        "PLANBOT_IM_API_HOST": im.base_url,
    }


def write_keys(path: Path, app_ids: tuple[str, ...]) -> Path:
    path.write_text(
        "".join(f'[apps.{a}]\nadmin = "administrator"\nkey = "key-of-{a}"\n\n' for a in app_ids)
    )
    return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeSlack() as slack, FakeTencentCloud() as cloud, FakeIm() as im:
        keys = write_keys(tmp_path / "im-keys.toml", KEYED)
        env = planbot_env(
            slack, f"sqlite:///{tmp_path / 'planbot.sqlite3'}", provider_env(cloud, im, keys)
        )
        expired = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        created = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        (tmp_path / "apps.csv").write_text(
            "\n".join(
                [
                    HEADER,
                    f"1400000101,chat-std,standard,2025-01-01,,active,{TEAM},,",
                    f"1400000201,chat-prem,premium,2025-01-01,,active,{TEAM},,",
                    f"1400000301,old-dev,developer,{created},,active,{TEAM},{expired},",
                ]
            )
            + "\n"
        )
        for app_id in KEYED:
            im.add_app(
                app_id,
                admin="administrator",
                key=f"key-of-{app_id}",
                figures=daily_figures(yesterday(), active=8_600),
            )
        cloud.sdk_app_ids = [1400000101, 1400000201, 1400000301, 1400000999]
        done = subprocess.run(
            [PLANBOT, "apps", "import", "apps.csv"], env=env, cwd=tmp_path, capture_output=True
        )
        assert done.returncode == 0, done.stderr
        yield World(tmp_path, slack, cloud, im, env)


def test_sync_prints_the_drift_and_posts_it_once(world: World) -> None:
    first = world.planbot("provider", "sync")
    assert first.returncode == 0, first.stderr
    assert "account: 4 SDKAppIDs · planbot: 3 apps (not purged)" in first.stdout
    assert "unknown to planbot (1): 1400000999" in first.stdout
    assert "no longer in the account (0): none" in first.stdout
    assert "posted to the audit channel" in first.stdout
    (posted,) = world.slack.messages(AUDIT)
    assert "1400000999" in card_text(posted)

    second = world.planbot("provider", "sync")
    assert "drift unchanged since the last sync" in second.stdout
    assert len(world.slack.messages(AUDIT)) == 1
    # every call reached the fake signed correctly by the real SDK
    assert world.cloud.errors() == [None, None]


def test_without_credentials_the_connector_says_it_is_off(world: World) -> None:
    env = {k: v for k, v in world.env.items() if not k.startswith("TENCENTCLOUD_")}
    for args in (("provider", "sync"), ("provider", "usage"), ("provider", "reconcile", "2026-10")):
        done = world.planbot(*args, env=env)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            "planbot: the provider connector is off: set TENCENTCLOUD_SECRET_ID and "
            "TENCENTCLOUD_SECRET_KEY"
        )
    assert world.cloud.calls == []


def test_bad_credentials_fail_in_one_line(world: World) -> None:
    env = {**world.env, "TENCENTCLOUD_SECRET_KEY": "not-the-key"}
    done = world.planbot("provider", "sync", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "planbot: provider sync failed: cim answered AuthFailure.SignatureFailure (The provided "
        "credentials could not be validated. Please check your signature is correct.): check "
        "the credentials and their permissions"
    ]
    unknown = world.planbot(
        "provider", "sync", env={**world.env, "TENCENTCLOUD_SECRET_ID": "AKIDx"}
    )
    assert "AuthFailure.SecretIdNotFound" in unknown.stderr
    assert "Traceback" not in done.stderr + unknown.stderr


def test_usage_twice_stores_each_day_once_and_warns_the_owner_once(world: World) -> None:
    world.im.throttle(2)  # the first two calls are answered 60007: retried
    first = world.planbot("provider", "usage")
    assert first.returncode == 0, first.stderr
    assert "usage: 2 apps fetched, 60 days stored (60 new)" in first.stdout
    assert "1 apps without an IM key" in first.stdout
    second = world.planbot("provider", "usage")
    assert "usage: 2 apps fetched, 60 days stored (0 new)" in second.stdout
    assert world.im.errors().count(60007) == 2
    warnings = [m for m in world.slack.messages(TEAM) if "80%" in card_text(m)]
    assert len(warnings) == warnings_due()  # one per app: 8,600 of 10,000 free monthly active users


def test_usage_with_a_wrong_key_names_the_app(world: World) -> None:
    write_keys(world.tmp / "im-keys.toml", KEYED)
    (world.tmp / "im-keys.toml").write_text(
        '[apps.1400000101]\nadmin = "administrator"\nkey = "stale"\n'
    )
    done = world.planbot("provider", "usage")
    assert done.returncode == 1
    assert "failed: 1400000101: im answered 70009 (UserSig verification failed)" in done.stdout


def test_reconcile_prints_both_amounts_and_posts_the_differences(world: World) -> None:
    month = last_month()
    world.cloud.bill(month, "1400000101", "399.00")
    world.cloud.bill(month, "1400000201", "750.00")
    done = world.planbot("provider", "reconcile", month)
    assert done.returncode == 0, done.stderr
    assert f"reconciliation of {month} (USD): 2 apps" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.startswith("1400000201"))
    assert "$750.00" in line and "differs" in line
    assert "posted to the audit channel" in done.stdout
    (posted,) = [m for m in world.slack.messages(AUDIT) if month in card_text(m)]
    assert "differs from planbot's charges" in card_text(posted)

    bad = world.planbot("provider", "reconcile", "2026-13")
    assert bad.returncode == 2 and "is not a month" in bad.stderr


def test_tick_runs_the_provider_jobs_with_the_sweep(world: World) -> None:
    world.cloud.bill(last_month(), "1400000101", "1.00")
    done = world.planbot("tick")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "1 suspended" in done.stdout
    assert "provider sync: 4 in the account, 1 unknown, 0 missing (changed, posted)" in done.stdout
    assert f"provider usage: 2 apps, 60 days (60 new), {warnings_due()} warnings" in done.stdout
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    if today.day >= 4:  # the provider has billed the month before: it is reconciled
        assert f"provider reconcile {last_month()}:" in done.stdout
    else:
        assert "provider reconcile" not in done.stdout
    again = world.planbot("tick")
    assert "provider" not in again.stdout  # each job once a day


def test_tick_with_bad_credentials_still_does_the_rest_of_the_sweep(world: World) -> None:
    env = {**world.env, "TENCENTCLOUD_SECRET_KEY": "not-the-key"}
    done = world.planbot("tick", env=env)
    assert done.returncode == 1
    assert "1 suspended" in done.stdout
    assert "provider sync failed: cim answered AuthFailure.SignatureFailure" in done.stdout
    assert "FAILED: provider-sync" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert any("suspended" in card_text(m) for m in world.slack.messages(AUDIT))


def test_plan_usage_and_status_show_the_figures(tmp_path: Path) -> None:
    with FakeSlack() as slack, FakeTencentCloud() as cloud, FakeIm() as im:
        keys = write_keys(tmp_path / "im-keys.toml", ("1400000101",))
        im.add_app(
            "1400000101",
            admin="administrator",
            key="key-of-1400000101",
            figures=daily_figures(yesterday(), active=2_014, MaxOnlineNum=62),
        )
        extra = provider_env(cloud, im, keys)
        served = start_planbot(tmp_path, slack, extra=extra, args=("--no-delivery",))
        try:
            env = planbot_env(slack, served.database_url, extra)
            done = subprocess.run(
                [PLANBOT, "provider", "usage"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
            usage = card_text(served.command("usage e2e-std-1 7", user=ADMIN).json())
            assert "Usage of e2e-std-1" in usage
            assert "Plan standard: 10,000 free monthly active users" in usage
            assert "2,014" in usage and "active users" in usage
            status = card_text(served.command("status e2e-std-1").json())
            assert "2,014 active users (20% of 10,000 free MAU)" in status
            assert "62 peak online" in status
            nokey = card_text(served.command("usage e2e-prem-1").json())
            assert "no IM admin key" in nokey
        finally:
            stop_planbot(served)
