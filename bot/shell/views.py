"""Modals and home tabs in the terminal: the shell's stand-in for Slack's views.

`ShellSurfaces` is the bot's `Surfaces` in the shell: what the listeners open or update and what
the delivery worker publishes is kept here (nothing reaches Slack), for the session to draw after
each line. `draw_view` draws a modal or a home tab as text: its blocks as `render_message` draws
a message (buttons numbered), and each field a person fills in (an app picker, a select,
checkboxes, a team filter) numbered too, with what it holds now; a modal's Submit and Close are
numbered last. `Field` says how a field is filled: by choosing an option by its number or its
text, or, for the app picker, by typing part of a name or id.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.i18n import _
from bot.shell.render import Button, render_message

__all__ = ["Field", "ShellSurfaces", "ViewDrawing", "draw_view", "option_text"]


@dataclass
class ShellSurfaces:
    """Keeps the modal that is open and each person's home tab (the shell's `Surfaces`)."""

    modal: dict[str, Any] | None = None
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what changed since the session last drew: "modal", or a user id whose home tab changed
    changed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def open(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        """Open a modal (over any other: the shell shows one at a time)."""
        with self._lock:
            number = next(self._ids)
            self.modal = {**view, "id": f"VSHELL{number}", "hash": f"{number}.shell"}
            self.changed.append("modal")

    def update(self, view_id: str, view: Mapping[str, Any], *, hash: str | None = None) -> None:
        """Replace the open modal (nothing when it was closed or replaced meanwhile)."""
        with self._lock:
            if self.modal is None or self.modal.get("id") != view_id:
                return
            if hash is not None and self.modal.get("hash") != hash:
                return
            number = next(self._ids)
            self.modal = {**view, "id": view_id, "hash": f"{number}.shell"}
            self.changed.append("modal")

    def replace(self, view: Mapping[str, Any] | None) -> None:
        """What a submission's answer does to the open modal (None closes it)."""
        with self._lock:
            if view is None or self.modal is None:
                self.modal = None
                return
            number = next(self._ids)
            self.modal = {**view, "id": self.modal["id"], "hash": f"{number}.shell"}
            self.changed.append("modal")

    def publish(self, user_id: str, view: Mapping[str, Any]) -> None:
        """Keep the person's home tab."""
        with self._lock:
            self.homes[user_id] = dict(view)
            self.changed.append(user_id)

    def take(self) -> list[str]:
        """What changed since the last call."""
        with self._lock:
            changed, self.changed = self.changed, []
        return list(dict.fromkeys(changed))

    def close(self) -> None:
        """Nothing is in flight: views are kept as they come."""


@dataclass
class Field:
    """Something to fill in on a view, numbered like the buttons."""

    number: int
    kind: str  # external_select, static_select, checkboxes, conversations_select
    block_id: str
    action_id: str
    label: str
    options: list[dict[str, Any]]
    #: an input block's (sent with the submission) or an actions block's (sent at once)
    input: bool
    dispatch: bool
    optional: bool = False


@dataclass
class ViewDrawing:
    """A view drawn as text, with its buttons and its fields."""

    text: str
    buttons: list[Button]
    fields: list[Field]
    #: the numbers of a modal's Submit and Close (None: it has none)
    submit: int | None = None
    close: int | None = None


def option_text(option: Mapping[str, Any]) -> str:
    """An option's text as a person reads it."""
    text = option.get("text") or {}
    shown = str(text.get("text", "")) if isinstance(text, Mapping) else str(text)
    description = option.get("description") or {}
    if isinstance(description, Mapping) and description.get("text"):
        shown += f" ({description['text']})"
    return shown


def _held(state: Any) -> Any:
    """What a field's state (as Slack sends it in `view.state.values`) holds."""
    if not isinstance(state, Mapping):
        return None
    if "selected_options" in state:
        return bool(state["selected_options"])
    return state.get("selected_option") or state.get("selected_conversation")


def _shown(kind: str, value: Any) -> str:
    """What a field holds, as its line shows it."""
    if kind == "checkboxes":
        return _("ticked") if value else _("not ticked")
    if kind == "conversations_select":
        return f"#{value}" if value else ""
    return option_text(value) if isinstance(value, Mapping) else ""


def draw_view(
    view: Mapping[str, Any],
    values: Mapping[str, Mapping[str, Any]],
    *,
    color: bool,
    width: int,
    start: int,
    errors: Mapping[str, str] | None = None,
) -> ViewDrawing:
    """A modal or home tab as text; `values` are what its fields hold (by block id)."""
    number = start
    lines: list[str] = []
    buttons: list[Button] = []
    fields: list[Field] = []
    if view.get("type") == "modal":
        title = (view.get("title") or {}).get("text", "")
        lines += [f"┌─ {title} ─", ""]
    for block in view.get("blocks") or []:
        if not isinstance(block, Mapping):
            continue
        block_id = str(block.get("block_id") or "")
        elements = [block.get("element")] if block.get("type") == "input" else []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        selects = [e for e in elements if isinstance(e, Mapping) and e.get("type") != "button"]
        if block.get("type") == "input" or selects:
            label = str((block.get("label") or {}).get("text", ""))
            for element in selects:
                kind = str(element.get("type"))
                action_id = str(element.get("action_id") or "")
                held = _held(values.get(block_id, {}).get(action_id))
                if held is None:
                    held = element.get("initial_option") or element.get("initial_conversation")
                placeholder = str((element.get("placeholder") or {}).get("text", ""))
                name = label or placeholder
                shown = _shown(kind, held) or (placeholder if label else _("(none chosen)"))
                how = {
                    "external_select": _("type part of a name or id"),
                    "conversations_select": _("type a channel id"),
                    "checkboxes": _("type y or n"),
                }.get(kind) or _("choose")
                titled = (
                    _("{field} (optional)").format(field=name) if block.get("optional") else name
                )
                lines.append(f"[{number}] {titled}: {shown}   ({how})")
                if errors and block_id in errors:
                    lines.append(f"    ⛔ {errors[block_id]}")
                fields.append(
                    Field(
                        number=number,
                        kind=kind,
                        block_id=block_id,
                        action_id=action_id,
                        label=name,
                        options=list(element.get("options") or []),
                        input=block.get("type") == "input",
                        dispatch=block.get("type") != "input" or bool(block.get("dispatch_action")),
                        optional=bool(block.get("optional")),
                    )
                )
                number += 1
            rest = [e for e in elements if isinstance(e, Mapping) and e.get("type") == "button"]
            if not rest:
                continue
            block = {**block, "elements": rest}
        rendered = render_message({"blocks": [block]}, color=color, width=width, start=number)
        lines.append(rendered.text)
        buttons += rendered.buttons
        number += len(rendered.buttons)
    submit = close = None
    if view.get("type") == "modal":
        ends = []
        if view.get("submit"):
            submit = number
            submit_text = view["submit"].get("text") or _("Submit")
            ends.append(f"[{number}] {submit_text}")
            number += 1
        close = number
        close_text = (view.get("close") or {}).get("text") or _("Close")
        ends.append(f"[{number}] {close_text}")
        lines += ["", "  ".join(ends), "└─"]
    return ViewDrawing("\n".join(lines), buttons, fields, submit, close)
