"""Where the processes of one planbot keep their metrics, so that one scrape sees them all.

`planbot serve --workers N` answers with N processes and delivers with another; each counts in
files of a directory they share (prometheus-client's multiprocess mode, chosen by the
`PROMETHEUS_MULTIPROC_DIR` variable before the client is first imported), and whichever answers
`GET /metrics` adds them up. When the operator has not named a directory, the first planbot
process makes one for this run and its children inherit it; it is removed when that process
ends. A directory the operator names is emptied by `planbot serve` when it starts (figures of
processes gone would otherwise be added to this run's): give each server its own.

Nothing here imports prometheus-client, so the variable is set before anything does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["VARIABLE", "prepare"]

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: the files prometheus-client writes there (`counter_<pid>.db`, `gauge_livesum_<pid>.db`, ...)
_PATTERNS = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


def prepare(*, starts_run: bool) -> Callable[[], None]:
    """Make sure this process and its children share a metrics directory; returns the clean-up.

    `starts_run`: this process starts a run of planbot (a `planbot serve` that is not one of
    another's workers), so a directory the operator named is emptied of a previous run's files.
    """
    named = os.environ.get(VARIABLE, "").strip()
    if named:
        path = Path(named)
        path.mkdir(parents=True, exist_ok=True)
        if starts_run:
            for pattern in _PATTERNS:
                for stale in path.glob(pattern):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
        return lambda: None
    made = tempfile.mkdtemp(prefix="planbot-metrics-")
    os.environ[VARIABLE] = made
    owner = os.getpid()

    def clean_up() -> None:
        if os.getpid() == owner:  # not in a forked child
            shutil.rmtree(made, ignore_errors=True)

    return clean_up
