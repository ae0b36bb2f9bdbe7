"""Delivery marks written together: every mark once, its sender back only once it is written."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from core.outbox import _GroupMarks


class SlowStore:
    """Writes batches slowly (as a busy database would), remembering what it wrote."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def write(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        time.sleep(0.01)
        with self.lock:
            if self.fail_first:
                self.fail_first = False
                raise ConnectionError("database unreachable")
            self.batches.append([entry_id for entry_id, _ in batch])

    def written(self) -> set[int]:
        with self.lock:
            return {entry_id for batch in self.batches for entry_id in batch}


def test_concurrent_marks_are_written_together_once_each_before_their_senders_go_on() -> None:
    store = SlowStore()
    marks = _GroupMarks(store.write)
    premature: list[int] = []

    def sender(first: int) -> None:
        for entry_id in range(first, first + 20):
            marks.mark(entry_id, {"status": "delivered"})
            if entry_id not in store.written():
                premature.append(entry_id)

    threads = [threading.Thread(target=sender, args=(n * 100,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    ids = [entry_id for batch in store.batches for entry_id in batch]
    assert sorted(ids) == sorted(n * 100 + i for n in range(8) for i in range(20))  # once each
    assert premature == []
    assert len(store.batches) < len(ids) / 2  # 160 marks in far fewer writes


def test_a_failed_write_fails_each_of_its_marks_and_later_marks_are_written() -> None:
    store = SlowStore(fail_first=True)
    marks = _GroupMarks(store.write)
    with pytest.raises(ConnectionError):
        marks.mark(1, {"status": "delivered"})
    marks.mark(2, {"status": "delivered"})
    assert store.batches == [[2]]


def test_with_a_failed_write_among_concurrent_marks_each_mark_is_either_written_or_refused() -> (
    None
):
    store = SlowStore(fail_first=True)
    marks = _GroupMarks(store.write)
    refused: list[int] = []

    def sender(entry_id: int) -> None:
        try:
            marks.mark(entry_id, {"status": "delivered"})
        except ConnectionError:
            refused.append(entry_id)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    written = store.written()
    assert refused and not written & set(refused)
    assert written | set(refused) == set(range(12))
