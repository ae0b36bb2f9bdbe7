"""Schema upgrades: replicas starting together on a fresh database all come up."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from core import current_revision, head_revision, make_engine, upgrade_schema


def _upgrade(url: str) -> None:
    upgrade_schema(make_engine(url))


def test_four_processes_upgrading_one_fresh_sqlite_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upgrade, args=(url,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert current_revision(make_engine(url)) == head_revision()
