"""The home tab: a person's board (`core.HomeBoard`) drawn as a Slack home view, and its delivery.

`home_view` is a pure function of the board; `HomePublisher` is what the delivery worker calls for
the outbox's home messages: a `HomeChanged` is expanded by the core into one `HomePublish` per
person who sees the change, and a `HomePublish` reads that person's board and draws it with
`views.publish`. Nothing here runs on the ack path.

The buttons: Approve / Reject / Withdraw decide a request through the core's one decision (as
the approval card's do); Extend / Enable start the usual preview, in a modal; the pager and the
team filter change what the list shows. A home tab holds at most 100 blocks: the sections are
bounded (eight requests, eight coming events, twenty apps a page) so they always fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.kit import button, clip, context, danger_dialog, escape, header, section
from bot.surfaces import Surfaces
from bot.words import Words
from core import (
    AppLine,
    ComingUp,
    HomeBoard,
    HomeChanged,
    HomePublish,
    Operation,
    PlanService,
    WaitingRequest,
    format_money,
)

__all__ = [
    "ALL_TEAMS",
    "HOME_ACTIONS",
    "HOME_ALL_TEAMS",
    "HOME_APPROVE",
    "HOME_ENABLE",
    "HOME_EXTEND",
    "HOME_NEW",
    "HOME_PAGE",
    "HOME_REJECT",
    "HOME_TEAM",
    "HOME_WITHDRAW",
    "MAX_HOME_BLOCKS",
    "HomePublisher",
    "home_view",
    "page_of",
]

HOME_APPROVE = "home_approve"
HOME_REJECT = "home_reject"
HOME_WITHDRAW = "home_withdraw"
HOME_EXTEND = "home_extend"
HOME_ENABLE = "home_enable"
HOME_PAGE = "home_page"
HOME_TEAM = "home_team"
HOME_ALL_TEAMS = "home_all_teams"
HOME_NEW = "home_new"
ALL_TEAMS = ""
#: every action id a home tab carries
HOME_ACTIONS = (
    HOME_APPROVE,
    HOME_REJECT,
    HOME_WITHDRAW,
    HOME_EXTEND,
    HOME_ENABLE,
    HOME_PAGE,
    HOME_TEAM,
    HOME_ALL_TEAMS,
    HOME_NEW,
)
MAX_HOME_BLOCKS = 100
_TEAMS_NAMED = 10


def home_view(board: HomeBoard, words: Words) -> dict[str, Any]:
    """The home view of a board."""
    blocks: list[dict[str, Any]] = [
        header("planbot"),
        {
            "type": "actions",
            "block_id": "home_top",
            "elements": [button("New plan operation", HOME_NEW, "new", style="primary")],
        },
        context(
            "Your requests, what is coming up and your apps, as of "
            f"{escape(words.day(board.at))}. This tab is kept up to date as things change."
        ),
    ]
    blocks += _needs_you(board, words)
    blocks += _coming_up(board, words)
    blocks += _your_apps(board, words)
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


# --- needs you ---------------------------------------------------------------------------------


def _needs_you(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [header("Needs you")]
    if not board.needs_you and not board.yours:
        blocks.append(section("Nothing waits for your decision, and none of your requests waits."))
        return blocks
    for waiting in board.needs_you:
        request = waiting.request
        blocks.append(section(_request_text(waiting, words)))
        danger = request.operation in (Operation.DISABLE, Operation.MIGRATE)
        approve = button(
            "Approve", HOME_APPROVE, request.id, style="danger" if danger else "primary"
        )
        if danger:
            approve["confirm"] = danger_dialog(
                "Approve this change?",
                escape(words.title(request.operation, request.app_name, request.app_id)),
                yes="Approve",
                no="Not yet",
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"home_decide:{request.id}"[:255],
                "elements": [approve, button("Reject", HOME_REJECT, request.id)],
            }
        )
    for waiting in board.yours:
        blocks.append(section(_own_request_text(waiting, words)))
        blocks.append(
            {
                "type": "actions",
                "block_id": f"home_own:{waiting.request.id}"[:255],
                "elements": [button("Withdraw request", HOME_WITHDRAW, waiting.request.id)],
            }
        )
    return blocks


def _request_text(waiting: WaitingRequest, words: Words) -> str:
    request = waiting.request
    summary = escape(words.title(request.operation, request.app_name, request.app_id))
    got, needed = len(request.approved_by), request.approvals_needed
    expires = escape(words.day(request.expires_at))
    return (
        f":ballot_box_with_check: *{summary}*\n"
        f"Asked by <@{request.requester.user_id}>; {got} of {needed} approvals so far; "
        f"the request expires on {expires}."
    )


def _own_request_text(waiting: WaitingRequest, words: Words) -> str:
    request = waiting.request
    summary = escape(words.title(request.operation, request.app_name, request.app_id))
    left = request.approvals_needed - len(request.approved_by)
    expires = escape(words.day(request.expires_at))
    return (
        f":hourglass_flowing_sand: *Your request: {summary}*\n"
        f"It waits for {left} more approval(s) from other people; it expires on {expires}."
    )


# --- coming up ---------------------------------------------------------------------------------


def _coming_up(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    if not board.sees_apps:
        return []
    blocks: list[dict[str, Any]] = [header("Coming up in the next 30 days")]
    if not board.coming_up:
        blocks.append(section("No app expires or is purged in the next 30 days."))
        return blocks
    for coming in board.coming_up:
        block = section(_coming_text(coming, words))
        if coming.allowed:
            if coming.operation is Operation.EXTEND:
                block["accessory"] = button("Extend", HOME_EXTEND, coming.app.app_id)
            else:
                block["accessory"] = button("Enable", HOME_ENABLE, coming.app.app_id)
        blocks.append(block)
    return blocks


def _coming_text(coming: ComingUp, words: Words) -> str:
    app = coming.app
    name, day = escape(clip(app.name, 80)), escape(words.day(coming.at))
    if coming.operation is Operation.EXTEND:
        return (
            f":hourglass_flowing_sand: Developer app *{name}* (`{app.app_id}`) expires on {day}; "
            "it is suspended then unless it is extended or upgraded."
        )
    return (
        f":warning: Disabled app *{name}* (`{app.app_id}`) is purged on {day}; its data can't be "
        "recovered after that unless an admin re-enables it before."
    )


# --- your apps ---------------------------------------------------------------------------------


def _your_apps(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [header("Your apps")]
    if not board.sees_apps:
        blocks.append(
            section("You may not see any app yet. An admin can give you a role: `/plan help`.")
        )
        return blocks
    filters: list[dict[str, Any]] = [
        {
            "type": "conversations_select",
            "action_id": HOME_TEAM,
            "placeholder": {"type": "plain_text", "text": "Show one team's apps"},
            **({"initial_conversation": board.team} if board.team else {}),
        }
    ]
    if board.team:
        filters.append(button("All teams", HOME_ALL_TEAMS, ALL_TEAMS))
    blocks.append({"type": "actions", "block_id": "home_filter", "elements": filters})
    if board.teams and not board.team:
        named = ", ".join(f"<#{t}>" for t in board.teams[:_TEAMS_NAMED])
        if len(board.teams) > _TEAMS_NAMED:
            named += f" and {len(board.teams) - _TEAMS_NAMED} more"
        blocks.append(context(f"Teams with apps: {named}."))
    if not board.apps:
        where = f" of <#{board.team}>" if board.team else ""
        blocks.append(section(f"There are no apps{where} to show."))
        return blocks
    team: object = object()
    for line in board.apps:
        owner = line.app.owner_channel
        if owner != team:
            team = owner
            blocks.append(context(f"*Team <#{owner}>*" if owner else "*Apps of no team*"))
        blocks.append(section(_app_text(line, board, words)))
    blocks += _pager(board)
    return blocks


def _app_text(line: AppLine, board: HomeBoard, words: Words) -> str:
    app = line.app
    name = escape(clip(app.name, 80))
    title = f"*{name}* (`{app.app_id}`): {app.plan}, {app.status}"
    if app.billing_mode.value == "legacy":
        title += ", legacy billing"
    if app.dev_expires_at is not None and app.plan.value == "developer":
        detail = f"Developer validity until {escape(words.day(app.dev_expires_at))}."
    elif app.purge_at is not None:
        detail = f"Disabled; purged after {escape(words.day(app.purge_at))}."
    else:
        detail = ""
    year, month = board.month
    charges = (
        f"{year}-{month:02d}: {format_money(line.to_date, board.currency)} charged so far, "
        f"{format_money(line.projected, board.currency)} for the month if nothing changes."
    )
    return "\n".join(part for part in (title, detail, charges) if part)


def _pager(board: HomeBoard) -> list[dict[str, Any]]:
    total = f"{board.total:,}+" if board.more else f"{board.total:,}"
    blocks = [context(f"Page {board.page} of {board.pages} · {total} apps")]
    buttons = []
    if board.page > 1:
        buttons.append(button("Previous page", HOME_PAGE, _page_value(board.page - 1, board)))
    if board.page < board.pages:
        buttons.append(button("Next page", HOME_PAGE, _page_value(board.page + 1, board)))
    if buttons:
        blocks.append({"type": "actions", "block_id": "home_pager", "elements": buttons})
    return blocks


def _page_value(page: int, board: HomeBoard) -> str:
    """A pager button's value: the page, and the team it pages through ("" for all)."""
    return f"{page}:{board.team or ALL_TEAMS}"


def page_of(value: str) -> tuple[int, str | None]:
    """The page and team a pager button carries (page 1 of every team when unreadable)."""
    page, _, team = value.partition(":")
    readable = page.isascii() and page.isdigit() and len(page) <= 6  # (no page is that far)
    return (int(page) if readable else 1), (team or None)


# --- delivery ------------------------------------------------------------------------------------


class HomePublisher:
    """Delivers the outbox's home messages (in the delivery worker)."""

    def __init__(self, service: PlanService, surfaces: Surfaces, words: Words) -> None:
        self.service = service
        self.surfaces = surfaces
        self.words = words

    def deliver(self, message: HomeChanged | HomePublish) -> Mapping[str, Any]:
        """Expand a change into publishes, or draw one person's home tab; a receipt."""
        if isinstance(message, HomeChanged):
            return {"queued": self.service.home.expand(message)}
        board = self.service.home.board(message.user_id)
        self.surfaces.publish(message.user_id, home_view(board, self.words))
        return {"published": message.user_id}
