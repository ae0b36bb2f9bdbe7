"""Waiting for something that happens in another thread or process: one poll loop for all tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["eventually", "settled"]

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    timeout: float = 10.0,
    what: str = "",
    *,
    until: Callable[[T], Any] = bool,
    every: float = 0.05,
) -> T:
    """`probe`'s first value that satisfies `until` (truthy by default); fails after `timeout` s."""
    value = settled(probe, timeout, until=until, every=every)
    assert until(value), f"timed out after {timeout} s waiting for {what or probe}: {value!r:.300}"
    return value


def settled(
    probe: Callable[[], T],
    timeout: float = 10.0,
    *,
    until: Callable[[T], Any] = bool,
    every: float = 0.05,
) -> T:
    """`probe`'s first value that satisfies `until`, or its last value after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)
