"""The delivery worker: outbox delivery and the lifecycle sweep, in a process of their own.

`planbot serve` acks Slack's requests on its event loop and starts this worker beside it
(`planbot deliver`), so posting audit messages, replacing cards through response_url, calling the
provisioner and sweeping never take the GIL from the acks; started by the server, the worker runs
at a lower CPU priority, so in a burst the acks come first and the deliveries catch up after. The worker polls the outbox a few
times a second (a read of one indexed row when nothing is due), stops on SIGTERM or SIGINT after
the delivery in hand, and stops by itself when the server that started it is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from bot.app import Planbot

__all__ = ["DeliveryChild", "deliver_forever"]

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
        _yield_to_server()
    planbot.dispatcher.concurrency = SENDERS
    planbot.lifecycle.start(interval=planbot.settings.sweep_interval)
    log.info("delivering the outbox (every %.1fs) and sweeping", poll)
    try:
        while not stop.is_set():
            if parent is not None and os.getppid() != parent:
                log.warning("the server that started this worker is gone; stopping")
                break
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


class DeliveryChild:
    """Runs `planbot deliver` as a child of the server, restarting it if it dies."""

    def __init__(self, argv: list[str] | None = None, *, restart_after: float = 1.0) -> None:
        self.argv = argv or [
            sys.executable,
            "-m",
            "bot.cli",
            "deliver",
            "--parent",
            str(os.getpid()),
        ]
        self.restart_after = restart_after
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker and watch it."""
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="delivery-watch", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if not self._stopping.is_set():
                self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            code = process.wait() if process is not None else None
            if self._stopping.is_set():
                return
            log.error("the delivery worker stopped (exit %s); restarting it", code)
            time.sleep(self.restart_after)
            self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to finish (SIGTERM), then kill it after `timeout` seconds."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
