"""The one error handler: whatever nobody expected is logged with a reference, and the person
is told that nothing was changed, without internals, in their language (it runs inside the
dispatch of their payload, `bot.app.SpeakingApp`)."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from slack_bolt import App, BoltResponse

from bot import blocks, modals, observe
from bot.i18n import _
from bot.listeners.context import Bot

__all__ = ["register"]

log = logging.getLogger("bot.listeners")


def register(app: App, bot: Bot) -> None:
    """`@app.error`."""

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        reference = uuid.uuid4().hex[:12]
        observe.note(outcome="error")
        log.error("unexpected error (reference %s)", reference, exc_info=error)
        message = blocks.failure_message(reference)
        if isinstance(body, dict) and body.get("type") == "view_submission":
            # a modal's submission: its answer replaces the modal, which never stays dead
            view = modals.message_view(_("Not done"), message)
            return BoltResponse(
                status=200,
                body=json.dumps({"response_action": "update", "view": view}),
                headers={"content-type": "application/json"},
            )
        if isinstance(body, dict) and body.get("type") == "block_actions":
            bot.responder.send(
                body.get("response_url"),
                {**message, "replace_original": False, "response_type": "ephemeral"},
            )
            return BoltResponse(status=200, body="")
        return BoltResponse(
            status=200,
            body=json.dumps({**message, "response_type": "ephemeral"}),
            headers={"content-type": "application/json"},
        )
