"""Slack's surfaces besides messages: modals (`views.open`, `views.update`) and the home tab
(`views.publish`).

Where each call is made, and why:

- `open` and `update` answer a person's click, shortcut or command. A modal must be opened with
  the click's `trigger_id` within 3 seconds, and the ack must never wait for Slack (it is the
  HTTP response, sent when the listener returns). So the listener builds the view (a pure
  function, plus the database reads it needs), hands the call to a small pool of threads here
  and returns: the ack leaves at once, and the call is made beside it, off the HTTP response
  path, typically within milliseconds, well inside the trigger's 3 seconds. Through the outbox
  the call could wait behind a backlog for longer than the trigger lives, so they do not go
  there: a lost call (the process dies in between) leaves the person to click again.
- `publish` draws a home tab. It is only made by the delivery worker, from the outbox, which
  waits for the answer and retries on failure (`DeliveryError`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from core import DeliveryError

__all__ = ["SlackSurfaces", "Surfaces"]

log = logging.getLogger(__name__)

#: Slack errors a retry of `views.publish` will not fix
_PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "user_not_found",
        "invalid_arguments",
        "invalid_blocks",
        "not_enabled",
        "missing_scope",
    }
)


class Surfaces(Protocol):
    """Where modals are opened and updated and home tabs are drawn."""

    def open(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """Open a modal for the click that gave `trigger_id` (returns at once)."""
        ...

    def update(self, view_id: str, view: Mapping[str, Any], *, hash: str | None = None) -> None:
        """Replace an open modal (returns at once; dropped if it changed since `hash`)."""
        ...

    def publish(self, user_id: str, view: Mapping[str, Any]) -> None:
        """Draw the person's home tab (waits; DeliveryError when Slack refused or failed)."""
        ...

    def close(self) -> None:
        """Finish the calls in hand."""
        ...


class SlackSurfaces:
    """The surfaces on Slack's Web API."""

    def __init__(self, client: WebClient, *, workers: int = 4) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="views")

    def open(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """`views.open`, beside the ack."""
        self._pool.submit(self._call, "views.open", trigger_id=trigger_id, view=dict(view))

    def update(self, view_id: str, view: Mapping[str, Any], *, hash: str | None = None) -> None:
        """`views.update`, beside the ack."""
        arguments: dict[str, Any] = {"view_id": view_id, "view": dict(view)}
        if hash:
            arguments["hash"] = hash
        self._pool.submit(self._call, "views.update", **arguments)

    def _call(self, method: str, **arguments: Any) -> None:
        try:
            if method == "views.open":
                self.client.views_open(**arguments)
            else:
                self.client.views_update(**arguments)
        except SlackApiError as err:  # an expired trigger, a modal closed or changed meanwhile
            code = err.response.get("error", "") if err.response else ""
            log.warning("%s refused: %s", method, code or err)
        except Exception:  # Slack unreachable: the person clicks again; never a stack to them
            log.exception("%s failed", method)

    def publish(self, user_id: str, view: Mapping[str, Any]) -> None:
        """`views.publish`, waited for."""
        try:
            self.client.views_publish(user_id=user_id, view=dict(view))
        except SlackApiError as err:
            status = err.response.status_code
            code = str(err.response.get("error", "")) if err.response else ""
            if status == 429:
                after = err.response.headers.get("Retry-After", "1")
                raise DeliveryError("rate limited", retry_after=float(after)) from err
            raise DeliveryError(
                f"Slack answered {status} {code}", permanent=code in _PERMANENT
            ) from err
        except (SlackRequestError, OSError) as err:
            raise DeliveryError(f"Slack unreachable: {err}") from err

    def close(self) -> None:
        """Wait a moment for the calls in hand."""
        self._pool.shutdown(wait=True, cancel_futures=True)
