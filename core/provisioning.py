"""Provisioners: where a confirmed change goes after it is recorded.

`RecordingProvisioner` (the default) only records it: the provider has no API, so planbot's own
records are the source of truth. `WebhookProvisioner` POSTs the change as JSON to a company's own
provisioning or billing system, signed with HMAC-SHA256 and carrying an idempotency key; failures
are retried by the outbox. Redirects are never followed: urllib would follow a 301 or 302 with a
GET, without the body, and take the 200 after it for a delivery; a 3xx is a failed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.outbox import DeliveryError

__all__ = ["RecordingProvisioner", "WebhookProvisioner", "webhook_signature"]

log = logging.getLogger(__name__)


class RecordingProvisioner:
    """Records the change in the log (the outbox row is the durable record)."""

    def provision(self, change: Mapping[str, Any]) -> None:
        """Log the change."""
        log.info(
            "provisioned %s of app %s (key %s)",
            change.get("operation"),
            change.get("app_id"),
            change.get("idempotency_key"),
        )


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `v1=` HMAC-SHA256 signature of `timestamp.body`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answers a redirect with the redirect itself (an HTTPError), never following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


class WebhookProvisioner:
    """POSTs each change as signed JSON to a URL; 2xx (or 409 already-done) is success."""

    def __init__(self, url: str, secret: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.opener = _opener()

    def provision(self, change: Mapping[str, Any]) -> None:
        """Deliver one change; raises DeliveryError (retryable unless a 4xx other than 408/409/429)."""
        body = json.dumps(change, sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": str(change.get("idempotency_key", "")),
                "X-Planbot-Timestamp": timestamp,
                "X-Planbot-Signature": webhook_signature(self.secret, timestamp, body),
            },
        )
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            if err.code == 409:
                return  # the receiver already applied this idempotency key
            if 300 <= err.code < 400:  # not followed: the change was not delivered
                raise DeliveryError(
                    f"webhook answered {err.code} (a redirect, not followed)"
                ) from err
            retry_after = err.headers.get("Retry-After") if err.headers else None
            permanent = 400 <= err.code < 500 and err.code not in (408, 429)
            raise DeliveryError(
                f"webhook answered {err.code}",
                retry_after=float(retry_after)
                if retry_after and retry_after.isascii() and retry_after.isdigit()
                else None,
                permanent=permanent,
            ) from err
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DeliveryError(f"webhook unreachable: {err}") from err
        if not 200 <= status < 300:  # a 1xx or 3xx that urllib handed back as an answer
            raise DeliveryError(f"webhook answered {status}")
