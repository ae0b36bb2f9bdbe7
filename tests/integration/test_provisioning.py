"""WebhookProvisioner against a real HTTP server on loopback."""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core import (
    DeliveryError,
    OutboxDispatcher,
    RecordingProvisioner,
    SqlStore,
    WebhookProvisioner,
    webhook_signature,
)
from core.store.ports import OutboxEntry
from tests.conftest import Clock

SECRET = "webhook-secret"
CHANGE = {
    "idempotency_key": "req-123",
    "operation": "upgrade",
    "app_id": "1400000001",
    "before": {"plan": "developer"},
    "after": {"plan": "premium"},
    "actor": {"id": "UADMIN", "name": "Ada"},
    "at": "2026-11-10T04:00:00+00:00",
}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A provisioning system: answers each POST with the next queued (status, headers)."""

    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append(Received("POST", self.path, dict(self.headers), body))
            status, headers = state.answers.pop(0) if state.answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/provision"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_a_change_is_posted_as_signed_json_with_an_idempotency_key(receiver: Receiver) -> None:
    WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)
    [request] = receiver.received
    assert (request.method, request.path) == ("POST", "/provision")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "req-123"
    assert json.loads(request.body) == CHANGE
    timestamp = request.headers["X-Planbot-Timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    signature = request.headers["X-Planbot-Signature"]
    assert signature.startswith("v1=")
    assert hmac.compare_digest(signature, webhook_signature(SECRET, timestamp, request.body))
    assert signature != webhook_signature("another-secret", timestamp, request.body)
    assert signature != webhook_signature(SECRET, timestamp, request.body + b" ")


def test_the_same_change_carries_the_same_idempotency_key_on_retry(receiver: Receiver) -> None:
    receiver.answers.append((500, {}))
    provisioner = WebhookProvisioner(receiver.url, SECRET)
    with pytest.raises(DeliveryError):
        provisioner.provision(CHANGE)
    provisioner.provision(CHANGE)
    assert [r.headers["Idempotency-Key"] for r in receiver.received] == ["req-123"] * 2
    assert receiver.received[0].body == receiver.received[1].body


def test_a_server_error_is_retryable(receiver: Receiver) -> None:
    receiver.answers.append((500, {}))
    with pytest.raises(DeliveryError) as failed:
        WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)
    assert not failed.value.permanent
    assert "500" in failed.value.reason


def test_retry_after_is_passed_on(receiver: Receiver) -> None:
    receiver.answers.append((503, {"Retry-After": "7"}))
    with pytest.raises(DeliveryError) as failed:
        WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)
    assert not failed.value.permanent and failed.value.retry_after == 7.0


@pytest.mark.parametrize("status", [408, 429])
def test_timeouts_and_rate_limits_are_retryable(receiver: Receiver, status: int) -> None:
    receiver.answers.append((status, {}))
    with pytest.raises(DeliveryError) as failed:
        WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)
    assert not failed.value.permanent


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_client_error_is_permanent(receiver: Receiver, status: int) -> None:
    receiver.answers.append((status, {}))
    with pytest.raises(DeliveryError) as failed:
        WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)
    assert failed.value.permanent


def test_409_means_already_applied_and_is_success(receiver: Receiver) -> None:
    receiver.answers.append((409, {}))
    WebhookProvisioner(receiver.url, SECRET).provision(CHANGE)  # does not raise
    assert len(receiver.received) == 1


def test_an_unreachable_receiver_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError) as failed:
        WebhookProvisioner(f"http://127.0.0.1:{port}/x", SECRET, timeout=2).provision(CHANGE)
    assert not failed.value.permanent and "unreachable" in failed.value.reason


def test_the_recording_provisioner_logs_the_change(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="core.provisioning"):
        RecordingProvisioner().provision(CHANGE)
    assert "provisioned upgrade of app 1400000001 (key req-123)" in caplog.text


class NoMessages:
    """A notifier for a test that writes only provisioning entries."""

    def send(self, destination: str, payload: Any) -> None:
        raise AssertionError(f"unexpected message to {destination}")


def test_the_outbox_retries_the_webhook_until_it_succeeds(
    receiver: Receiver, engine: Engine, clock: Clock
) -> None:
    with SqlStore(engine).unit_of_work() as uow:
        uow.outbox.add(
            OutboxEntry(
                kind="provision",
                topic="provision",
                destination="provisioner",
                app_id="1400000001",
                payload=CHANGE,
                created_at=clock(),
            )
        )
        uow.commit()
    receiver.answers += [(500, {}), (503, {"Retry-After": "20"})]
    dispatcher = OutboxDispatcher(
        store=SqlStore(engine),
        notifier=NoMessages(),
        provisioner=WebhookProvisioner(receiver.url, SECRET),
        clock=clock,
    )
    assert dispatcher.deliver_due().retried == 1
    clock.advance(seconds=2)
    assert dispatcher.deliver_due().retried == 1
    clock.advance(seconds=19)
    assert dispatcher.deliver_due().delivered == 0  # Retry-After: 20
    clock.advance(seconds=1)
    assert dispatcher.deliver_due().delivered == 1
    assert [r.headers["Idempotency-Key"] for r in receiver.received] == ["req-123"] * 3
