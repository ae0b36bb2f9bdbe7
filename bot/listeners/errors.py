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
from core import PlanError

__all__ = ["register"]

log = logging.getLogger("bot.listeners")


def register(app: App, bot: Bot) -> None:
    """`@app.error`."""

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        reference = uuid.uuid4().hex[:12]
        if isinstance(error, PlanError):  # a refusal no listener caught (a busy database)
            observe.note(outcome="refused")
            log.warning("refused (reference %s): %s", reference, type(error).__name__)
            message = blocks.refusal(error, bot.words)
        else:
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
            # What failed may be the database: the reply goes straight to Slack, not through
            # the outbox.
            responder = (
                bot.direct if bot.responder.queues_in_outbox and bot.direct else bot.responder
            )
            try:
                responder.send(
                    body.get("response_url"),
                    {**message, "replace_original": False, "response_type": "ephemeral"},
                )
            except Exception as err:  # the click is still answered
                log.error("could not answer the click (reference %s): %s", reference, err)
            return BoltResponse(status=200, body="")
        return BoltResponse(
            status=200,
            body=json.dumps({**message, "response_type": "ephemeral"}),
            headers={"content-type": "application/json"},
        )
