"""The delivery worker: outbox delivery and the lifecycle sweep, in a process of their own.

`planbot serve` acks Slack's requests on its event loop and starts this worker beside it
(`planbot deliver`), so posting audit messages, replacing cards through response_url, calling the
provisioner and sweeping never take the GIL from the acks; started by the server, the worker runs
at a lower CPU priority, so in a burst the acks come first and the deliveries catch up after. The
worker polls the outbox a few times a second (a read of one indexed row when nothing is due),
checkpoints SQLite's write-ahead log (which a commit would otherwise do under the write lock),
stops on SIGTERM or SIGINT after the delivery in hand, and stops by itself when the server that
started it is gone. Its deliveries, sweeps and database waits are counted (`bot.metrics`) in
the run's metrics directory, so the server's /metrics shows them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from bot import metrics
from bot.app import Planbot

__all__ = ["ChildProcess", "DeliveryChild", "deliver_forever", "stop_when_orphaned"]

log = logging.getLogger(__name__)

#: how often the worker looks for due outbox entries
POLL_SECONDS = 0.1
#: entries of one batch (never two for one app and destination) sent at the same time
SENDERS = 8


def deliver_forever(
    planbot: Planbot, *, parent: int | None = None, poll: float = POLL_SECONDS
) -> int:
    """Deliver and sweep until SIGTERM/SIGINT (or until `parent` is no longer our parent)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        planbot.dispatcher.stop(timeout=0)  # the pass in hand ends after its current entry

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if parent is not None:
        stop_when_orphaned(parent, lambda: on_signal(signal.SIGTERM, None))
        _yield_to_server()
    planbot.dispatcher.concurrency = SENDERS
    metrics.instrument(planbot, role="deliver")
    planbot.lifecycle.start(interval=planbot.settings.sweep_interval)
    planbot.checkpointer.start()
    log.info("delivering the outbox (every %.1fs) and sweeping", poll)
    try:
        while not stop.is_set():
            try:
                planbot.dispatcher.deliver_due()
            except Exception:  # the database may be briefly unreachable: keep going
                log.exception("outbox delivery pass failed")
                stop.wait(1.0)
            stop.wait(poll)
    finally:
        planbot.close()
    return 0


def _yield_to_server() -> None:
    """Give the server's acks the CPU first (nice 10).

    Acks have Slack's 3-second deadline and deliveries have none: in a burst the acks come first
    and the outbox catches up as the burst ebbs, while a worker on a busy host still gets a share.
    """
    if hasattr(os, "nice"):
        os.nice(10)


class ChildProcess:
    """A child process kept running: started again if it dies, until `stop`."""

    def __init__(self, argv: list[str], *, name: str, restart_after: float = 1.0) -> None:
        self.argv = argv
        self.name = name
        self.restart_after = restart_after
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process and watch it."""
        self._spawn()
        threading.Thread(target=self._watch, name=f"{self.name}-watch", daemon=True).start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            code = process.wait() if process is not None else None
            if process is not None:
                metrics.process_ended(process.pid)  # its live gauges go with it
            if self._stopping.is_set():
                return
            log.error("the %s stopped (exit %s); restarting it", self.name, code)
            time.sleep(self.restart_after)
            self._spawn()

    def terminate(self) -> None:
        """Stop restarting it, and ask it to finish (SIGTERM)."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def wait(self, timeout: float) -> None:
        """Wait for it to end after `terminate`; kill it after `timeout` seconds."""
        with self._lock:
            process = self._process
        if process is None:
            return
        try:
            process.wait(max(0.1, timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        metrics.process_ended(process.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """`terminate`, then `wait`."""
        self.terminate()
        self.wait(timeout)


class DeliveryChild(ChildProcess):
    """`planbot deliver` as a child of the server, restarted if it dies."""

    def __init__(self, *, restart_after: float = 1.0) -> None:
        argv = [sys.executable, "-m", "bot.cli", "deliver", "--parent", str(os.getpid())]
        super().__init__(argv, name="delivery worker", restart_after=restart_after)


def stop_when_orphaned(parent: int, stop: Callable[[], None]) -> None:
    """Call `stop` (once) when `parent` is no longer this process's parent (it died)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        log.warning("the process that started this one is gone; stopping")
        stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
