"""SQLite admits one writer at a time: writers in different processes take turns."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from core.store.writers import WriterQueue

ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import sys
from core.store.writers import WriterQueue
queue = WriterQueue(sys.argv[1])
queue.acquire()
print("held", flush=True)
sys.stdin.readline()
queue.release()
print("released", flush=True)
"""


def test_writers_in_two_processes_take_turns(tmp_path: Path) -> None:
    database = str(tmp_path / "planbot.sqlite3")
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    queue = WriterQueue(database)
    acquired = threading.Event()

    def write() -> None:
        queue.acquire()
        queue.acquire()  # the same thread again: no deadlock
        acquired.set()
        queue.release()
        queue.release()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not acquired.wait(0.3), "the second process wrote while the first one held its turn"
    finally:
        child.stdin.write("go\n")
        child.stdin.flush()
    assert child.stdout.readline().strip() == "released"
    assert acquired.wait(5), "the second process never got its turn"
    writer.join(5)
    assert child.wait(5) == 0
