"""A bare Bolt app served the stock way: the baseline that planbot is measured against.

It has a ``/plan`` command listener that acks with a small ephemeral Block Kit message (for
``upgrade`` it carries a ``plan_confirm`` button whose value is a fresh request id, like planbot's
preview) and a ``plan_confirm`` block action listener that only acks. It is served by Bolt's
Starlette adapter (``SlackRequestHandler``) under uvicorn at ``POST /slack/events``.

    SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=xoxb-... SLACK_API_URL=http://127.0.0.1:PORT/api/ \\
        python -m bench.bare_app --port 3001 [--process-before-response]

``SLACK_API_URL`` should point at a fake Slack Web API (``fakes.slack``): the token is
not verified at start, and Bolt calls ``auth.test`` there once, on the first request.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["build_app", "build_asgi", "main"]


def _card(text: str, request_id: str | None) -> list[dict[str, Any]]:
    """A small ephemeral card; with a request id, Confirm / Cancel buttons like a preview."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
    ]
    if request_id is not None:
        blocks.append(
            {
                "type": "actions",
                "block_id": "plan_preview",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "plan_confirm",
                        "text": {"type": "plain_text", "text": "Confirm"},
                        "style": "primary",
                        "value": request_id,
                    },
                    {
                        "type": "button",
                        "action_id": "plan_cancel",
                        "text": {"type": "plain_text", "text": "Cancel"},
                        "value": request_id,
                    },
                ],
            }
        )
    return blocks


def build_app(
    *, signing_secret: str, token: str, api_url: str, process_before_response: bool
) -> App:
    """The bare Bolt app: `/plan` acks a small card, `plan_confirm` clicks just ack."""
    app = App(
        signing_secret=signing_secret,
        client=WebClient(token=token, base_url=api_url),
        token_verification_enabled=False,
        process_before_response=process_before_response,
    )

    @app.command("/plan")
    def plan_command(ack: Callable[..., None], command: Mapping[str, Any]) -> None:
        words = str(command.get("text", "")).split()
        request_id = uuid.uuid4().hex if words[:1] == ["upgrade"] else None
        text = f"*{' '.join(words[:2]) or 'help'}*: bare baseline"
        ack(response_type="ephemeral", text=text, blocks=_card(text, request_id))

    @app.action("plan_confirm")
    def plan_confirm(ack: Callable[..., None]) -> None:
        ack()

    return app


def build_asgi(app: App) -> Starlette:
    """The stock Starlette app around Bolt's SlackRequestHandler."""
    handler = SlackRequestHandler(app)

    async def slack_events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    """Serve the bare app under uvicorn on 127.0.0.1."""
    parser = argparse.ArgumentParser(description="bare Bolt baseline app for the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--process-before-response", action="store_true")
    args = parser.parse_args(argv)

    missing = [n for n in ("SLACK_SIGNING_SECRET", "SLACK_API_URL") if not os.environ.get(n)]
    if missing:
        sys.exit(f"bench.bare_app: set {', '.join(missing)} (SLACK_API_URL: a fake Slack Web API)")
    app = build_app(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token=os.environ.get("SLACK_BOT_TOKEN", "xoxb-bench"),
        api_url=os.environ["SLACK_API_URL"],
        process_before_response=args.process_before_response,
    )
    uvicorn.run(
        build_asgi(app), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
