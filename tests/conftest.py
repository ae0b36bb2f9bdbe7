"""Fixtures shared by every test layer: a controllable clock, the catalog, the billing zone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core import Catalog, load_catalog

#: the provider's (and planbot's default) billing time zone, UTC+8
SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """An aware UTC datetime: utc(2026, 11, 30, 16, 30)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand; pass it where the core takes `clock=`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's keyword arguments (days=1, seconds=5, ...)."""
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        """Jump to a moment."""
        self.now = moment
        return self.now


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The catalog shipped with the package."""
    return load_catalog()


@pytest.fixture
def clock() -> Clock:
    """A clock at noon (UTC+8) on Tuesday 10 November 2026, a 30-day month."""
    return Clock(utc(2026, 11, 10, 4, 0))


#: how much of each server log a failed test shows (its end, where the failure is)
LOG_TAIL = 6000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test that ran servers shows the end of their logs (`*.log` in its tmp_path):
    a server's traceback is the reason, and its files are gone once the run is over."""
    report = yield
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and isinstance(tmp, Path):
        for log in sorted(tmp.rglob("*.log")):
            text = log.read_text(errors="replace")
            if text.strip():
                report.sections.append((f"server log {log.name}", text[-LOG_TAIL:]))
    return report
