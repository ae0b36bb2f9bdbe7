"""The provider connector's pure parts: UserSig, drift, usage levels, reconciliation, the IM keys
file, the rate limiter, settings, and what the bot draws of it (notices, `/plan usage`, status)."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import blocks, provider_views
from bot.kit import MAX_BLOCKS, MAX_SECTION
from bot.notices import render
from bot.settings import Settings, SettingsError
from bot.tables import width
from bot.words import FIGURE_LABELS, Words
from core import (
    FIGURES,
    AppState,
    AppStatus,
    BillingMode,
    DailyUsage,
    DriftChanged,
    ImKey,
    Message,
    Plan,
    ProviderConfig,
    ProviderView,
    ReconciliationDifferences,
    ReconciliationLine,
    Status,
    UsageLevelReached,
    dump_message,
    load_catalog,
    load_message,
)
from core.provider import (
    BilledAmount,
    Drift,
    RateLimiter,
    parse_im_keys,
    reconcile,
    split_endpoint,
    usage_warnings,
    user_sig,
)
from tests.support.fake_store import FakeStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORDS = Words(load_catalog(), SHANGHAI)


# --- UserSig -----------------------------------------------------------------------------------


def decode(sig: str) -> dict[str, Any]:
    packed = base64.b64decode(sig.translate(str.maketrans("*-_", "+/=")))
    return dict(json.loads(zlib.decompress(packed)))


def test_user_sig_matches_a_published_vector() -> None:
    # the HMAC of an independent tls-sig-api-v2 implementation's golden test
    sig = user_sig(
        20030819, "test-secret-key-1234567890abcdef", "user_42", now=1718764800, expire=604800
    )
    document = decode(sig)
    assert document["TLS.sig"] == "8y4PAvIKGCmKvubBW+DGnAa/LQ9VpBWp4fEjtiQ/VHQ="
    assert document["TLS.ver"] == "2.0"
    assert (document["TLS.identifier"], document["TLS.sdkappid"]) == ("user_42", 20030819)
    assert (document["TLS.time"], document["TLS.expire"]) == (1718764800, 604800)
    assert not set(sig) & set("+/=")  # URL-safe as the provider spells it


def test_user_sig_depends_on_the_key() -> None:
    one = decode(user_sig("1400000001", "a", "admin", now=1, expire=60))
    two = decode(user_sig("1400000001", "b", "admin", now=1, expire=60))
    assert one["TLS.sig"] != two["TLS.sig"]


# --- drift -------------------------------------------------------------------------------------


def test_drift_between_the_account_and_planbot() -> None:
    drift = Drift.between(["1", "2", "30", "40"], ["2", "3", "40", "5"], purged=["40", "5"])
    assert drift.unknown == ("1", "30")  # a purged app still listed is not unknown
    assert drift.missing == ("3",)  # a purged app no longer listed is not missing


def test_drift_changes() -> None:
    before = Drift(unknown=("1",), missing=("3",))
    after = Drift(unknown=("1", "7"), missing=())
    change = after.changes_since(before)
    assert (change.new_unknown, change.new_missing, change.resolved) == (("7",), (), ("3",))
    assert not after.changes_since(after)


# --- usage levels ------------------------------------------------------------------------------


def days(app: str, first: date, values: list[int]) -> list[DailyUsage]:
    return [
        DailyUsage(app, first + timedelta(days=i), active_users=v) for i, v in enumerate(values)
    ]


def test_usage_levels_at_80_and_100_percent_of_the_free_monthly_active_users() -> None:
    limits = {"monthly_active_users": 10_000}
    assert usage_warnings(days("1", date(2026, 11, 1), [100, 7_999]), limits) == []
    (eighty,) = usage_warnings(days("1", date(2026, 11, 1), [8_000, 7_000]), limits)
    assert (eighty.level, eighty.value, eighty.day) == (80, 8_000, date(2026, 11, 1))
    both = usage_warnings(days("1", date(2026, 11, 1), [9_000, 10_400]), limits)
    assert [(w.level, w.value, w.month) for w in both] == [
        (80, 10_400, "2026-11"),
        (100, 10_400, "2026-11"),
    ]
    assert usage_warnings(days("1", date(2026, 11, 1), [5]), {}) == []


# --- reconciliation ----------------------------------------------------------------------------


def test_reconcile_lines_and_the_one_cent_threshold() -> None:
    lines = reconcile(
        {"1": Decimal("399.00"), "2": Decimal("699.00"), "3": Decimal("0.00"), "4": Decimal("0")},
        {
            "1": BilledAmount(Decimal("399.01")),
            "2": BilledAmount(Decimal("699.02"), Decimal("699.02")),
            "4": BilledAmount(Decimal("120.00")),
            "9": BilledAmount(Decimal("5.00")),
        },
        names={"1": "a", "2": "b", "3": "c", "4": "d"},
        legacy=["4"],
    )
    by_app = {line.app_id: line for line in lines}
    assert set(by_app) == {"1", "2", "4"}  # nothing on either side: no line; unknown ids: none
    assert not by_app["1"].differs  # a cent is rounding
    assert by_app["2"].differs and by_app["2"].difference == Decimal("0.02")
    assert by_app["4"].legacy and not by_app["4"].differs


# --- configuration -----------------------------------------------------------------------------


def test_im_keys_file() -> None:
    keys = parse_im_keys(
        '[apps.1400000001]\nadmin = "administrator"\nkey = "k1"\n'
        '[apps.1400000002]\nadmin = "ops"\nkey = "k2"\nhost = "adminapikr.im.qcloud.com"\n'
    )
    assert keys["1400000001"] == ImKey("1400000001", "administrator", "k1")
    assert keys["1400000002"].host == "adminapikr.im.qcloud.com"
    assert "k1" not in repr(keys)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[apps.abc]\nadmin = 'a'\nkey = 'k'\n", "must be the SDKAppID"),
        ("[apps.1]\nkey = 'secret-value'\n", "`admin`"),
        ("[apps.1]\nadmin = 'a'\n", "`key`"),
        ("[apps.1]\nadmin = 'a'\nkey = 'secret-value'\nregion = 'x'\n", "unknown setting region"),
        ("apps = [", "not valid TOML"),
    ],
)
def test_a_bad_im_keys_file_is_refused_in_one_line_without_the_key(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_im_keys(text)
    assert needle in str(refused.value)
    assert "secret-value" not in str(refused.value)


def test_split_endpoint() -> None:
    assert split_endpoint("http://127.0.0.1:9000") == ("http", "127.0.0.1:9000")
    assert split_endpoint("https://tencentcloudapi.internal/") == (
        "https",
        "tencentcloudapi.internal",
    )
    for bad in ("127.0.0.1:9000", "ftp://x", "http://x/api"):
        with pytest.raises(ValueError):
            split_endpoint(bad)


def test_rate_limiter_waits_for_room_in_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == []
    limiter.wait()
    assert now[0] >= 1.0  # the fourth call waited for the first to leave the window


def test_provider_settings(tmp_path: Path) -> None:
    assert not Settings.from_env({}).provider_config().enabled
    keys = tmp_path / "keys.toml"
    keys.write_text('[apps.1400000001]\nadmin = "administrator"\nkey = "k"\n')
    settings = Settings.from_env(
        {
            "TENCENTCLOUD_SECRET_ID": "AKID1",
            "TENCENTCLOUD_SECRET_KEY": "sk",
            "PLANBOT_TENCENT_ENDPOINT": "http://127.0.0.1:9000",
            "PLANBOT_IM_KEYS": str(keys),
            "PLANBOT_IM_API_HOST": "adminapisgp.im.qcloud.com",
        }
    )
    config = settings.provider_config()
    assert config.enabled and config.endpoint == "http://127.0.0.1:9000"
    assert set(config.im_keys) == {"1400000001"}
    assert "sk" not in repr(settings) and "sk" not in repr(config)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TENCENTCLOUD_SECRET_ID": "AKID1"}, "TENCENTCLOUD_SECRET_KEY: required"),
        ({"TENCENTCLOUD_SECRET_KEY": "x"}, "TENCENTCLOUD_SECRET_ID: required"),
        ({"PLANBOT_TENCENT_ENDPOINT": "127.0.0.1:9000"}, "PLANBOT_TENCENT_ENDPOINT"),
        ({"PLANBOT_IM_KEYS": "/nowhere/keys.toml"}, "PLANBOT_IM_KEYS: no file"),
        ({"PLANBOT_IM_API_HOST": "not a host"}, "PLANBOT_IM_API_HOST"),
    ],
)
def test_bad_provider_settings_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert needle in str(refused.value)


# --- what the bot draws ------------------------------------------------------------------------


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)


def delivered(message: Message) -> dict[str, Any]:
    """Rendered as the delivery worker does: from the stored payload, within Slack's limits."""
    rendered = render(load_message(json.loads(json.dumps(dump_message(message)))), WORDS)
    assert rendered["text"] and 1 <= len(rendered["blocks"]) <= MAX_BLOCKS
    for block in rendered["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
    return rendered


def test_drift_notice() -> None:
    rendered = delivered(
        DriftChanged(
            unknown=("1400000999",),
            missing=(),
            new_unknown=("1400000999",),
            resolved=("1400000103",),
            account_count=4,
            at=datetime(2026, 11, 10, tzinfo=UTC),
        )
    )
    assert "`1400000999`" in text_of(rendered) and "Resolved (1)" in text_of(rendered)
    assert "planbot apps import" in text_of(rendered)
    agreed = delivered(
        DriftChanged(
            unknown=(),
            missing=(),
            resolved=("1400000999",),
            account_count=3,
            at=datetime(2026, 11, 11, tzinfo=UTC),
        )
    )
    assert "agree again" in text_of(agreed) and "planbot apps import" not in text_of(agreed)


def level(
    level: int, *, paid: bool = True, value: int = 10_400, limit: int = 10_000
) -> UsageLevelReached:
    return UsageLevelReached(
        app_id="1400000101",
        app_name="<!channel> chat",
        plan=Plan.STANDARD if paid else Plan.DEVELOPER,
        month="2026-11",
        figure="active_users",
        level=level,
        value=value,
        limit=limit,
        day=date(2026, 11, 9),
    )


def test_usage_level_notices() -> None:
    certain = text_of(delivered(level(100)))
    assert "certain overage" in certain and "at least 400 more" in certain
    assert "US$0.015" in certain
    assert "<!channel>" not in certain and "&lt;!channel&gt;" in certain
    approaching = text_of(delivered(level(80, value=8_500)))
    assert "80%" in approaching and "certain overage" not in approaching
    developer = text_of(delivered(level(100, paid=False, value=130, limit=100)))
    assert "upgrade" in developer and "overage" not in developer


def test_reconciliation_notice() -> None:
    notice = ReconciliationDifferences(
        month="2026-10",
        currency="USD",
        lines=(
            ReconciliationLine("1400000102", "prem", Decimal("699.00"), Decimal("720.50")),
            ReconciliationLine("1400000103", "한국어 채팅", Decimal("399.00"), Decimal("380.00")),
        ),
        apps_compared=3,
    )
    rendered = delivered(notice)
    text = text_of(rendered)
    assert "$699.00" in text and "$720.50" in text and "+$21.50" in text and "-$19.00" in text
    assert "2 of 3 apps" in text
    table = rendered["blocks"][1]["text"]["text"].splitlines()[1:-1]
    assert len({width(row) for row in table}) == 1  # a wide name keeps the columns in line


def test_the_figures_have_labels() -> None:
    assert set(FIGURE_LABELS) == set(FIGURES)


def test_sparkline() -> None:
    assert provider_views.sparkline([0, 7, 14, None]) == "▁▄█·"
    assert provider_views.sparkline([0, 0]) == "▁▁"


def a_view(stored: list[DailyUsage], *, enabled: bool = True, keyed: bool = True) -> ProviderView:
    """The reader over the store's port in memory, holding `stored`."""
    store = FakeStore()
    with store.unit_of_work() as uow:
        uow.provider.store_usage(stored, datetime(2026, 11, 10, tzinfo=UTC))
        uow.commit()
    keys = {"1400000101": ImKey("1400000101", "a", "k")} if keyed else {}
    config = ProviderConfig(secret_id="id" if enabled else None, secret_key="k", im_keys=keys)
    return ProviderView(store=store, provider=config)


def a_status() -> AppStatus:
    app = AppState(
        app_id="1400000101",
        name="chat",
        plan=Plan.STANDARD,
        billing_mode=BillingMode.CURRENT,
        status=Status.ACTIVE,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    return AppStatus(
        app=app,
        monthly_price=Decimal(399),
        currency="USD",
        config_text="no add-ons",
        config_change_used=False,
        next_config_change=None,
        purge_at=None,
        limits={"monthly_active_users": 10_000, "members_per_group": 200, "history_days": 7},
    )


NOW = datetime(2026, 11, 10, 4, tzinfo=UTC)  # noon on 10 November in UTC+8


def test_usage_message_and_status_field() -> None:
    stored = [
        DailyUsage(
            "1400000101",
            date(2026, 11, 9) - timedelta(days=i),
            active_users=2_014 - i,
            peak_online=62,
        )
        for i in range(0, 14, 2)
    ]
    other = DailyUsage("1400000102", date(2026, 11, 9), active_users=99_999)
    view = a_view([*stored, other])
    message = provider_views.usage_message(a_status(), view, 14, NOW, SHANGHAI)
    text = text_of(message)
    assert "Nov 09" in text and "2,014" in text and "10,000 free monthly active users" in text
    assert "7 of 14 days stored" in text and "·" in text
    assert "99,999" not in text  # another app's figures
    ((label, value),) = provider_views.status_fields(view, a_status(), NOW, SHANGHAI)
    assert label == "Yesterday (Nov 09)"
    assert value.startswith("2,014 active users (20% of 10,000 free MAU) · 62 peak online")
    card = text_of(blocks.status_message(a_status(), SHANGHAI, extra=[(label, value)]))
    assert "Yesterday (Nov 09)" in card


def test_usage_message_when_off_without_a_key_or_without_figures() -> None:
    off = text_of(
        provider_views.usage_message(a_status(), a_view([], enabled=False), 7, NOW, SHANGHAI)
    )
    assert "set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY" in off
    assert provider_views.status_fields(a_view([], enabled=False), a_status(), NOW, SHANGHAI) == []
    assert provider_views.status_fields(None, a_status(), NOW, SHANGHAI) == []
    empty = text_of(provider_views.usage_message(a_status(), a_view([]), 7, NOW, SHANGHAI))
    assert "No usage figures stored" in empty and "once a day" in empty
    nokey = text_of(
        provider_views.usage_message(a_status(), a_view([], keyed=False), 7, NOW, SHANGHAI)
    )
    assert "no IM admin key" in nokey
    ((_, field),) = provider_views.status_fields(a_view([], keyed=False), a_status(), NOW, SHANGHAI)
    assert "no IM key" in field
