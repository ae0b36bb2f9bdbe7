"""The Bolt listeners, one module per kind, each with its `register(app, bot)`.

- `commands`: `/plan` (the answer is the ack);
- `actions`: the buttons of cards and notices;
- `modals`: the plan operation modal (the shortcut, its picker, its preview and confirmation);
- `home`: the home tab (`app_home_opened` and its buttons);
- `errors`: the one error handler.

A `PlanError` becomes a refusal the person reads; anything else reaches the error handler, which
logs it with a reference and tells the person that nothing was changed, without internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot import observe
from bot.listeners import actions, commands, errors, home, modals
from bot.listeners.context import Bot

__all__ = ["Bot", "register"]


def register(app: App, bot: Bot) -> None:
    """Attach planbot's listeners to a Bolt app."""
    app.middleware(_note_kind)
    commands.register(app, bot)
    actions.register(app, bot)
    modals.register(app, bot)
    home.register(app, bot)
    errors.register(app, bot)


def _note_kind(body: Any, next_: Callable[[], None]) -> None:
    """Every payload's kind, for the metrics and the logs (a slash command's: its listener's)."""
    kind = observe.payload_kind(body) if isinstance(body, dict) else "other"
    if kind is not None:
        observe.note(kind=kind)
    next_()
