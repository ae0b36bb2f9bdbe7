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
from datetime import datetime
from typing import Any

from bot.i18n import ENGLISH, _, day, language, money, number
from bot.kit import button, clip, context, danger_dialog, date_token, escape, header, section
from bot.names import plan_name, status_name
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
            "elements": [button(_("New plan operation"), HOME_NEW, "new", style="primary")],
        },
        context(
            _(
                "Your requests, what is coming up and your apps, as of {day}. "
                "This tab is kept up to date as things change."
            ).format(day=_day(board.at, words))
        ),
    ]
    blocks += _needs_you(board, words)
    blocks += _coming_up(board, words)
    blocks += _your_apps(board, words)
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def _day(moment: datetime, words: Words) -> str:
    """A day as the tab shows it (mrkdwn): in English the billing day as it always was; in
    another language a Slack date token, each reader's own day, with the billing day written
    the language's way as its fallback."""
    if language() == ENGLISH:
        return escape(words.day(moment))
    return date_token(moment, day(moment.astimezone(words.tz).date()), style="{date_long}")


# --- needs you ---------------------------------------------------------------------------------


def _needs_you(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [header(_("Needs you"))]
    if not board.needs_you and not board.yours:
        blocks.append(
            section(_("Nothing waits for your decision, and none of your requests waits."))
        )
        return blocks
    for waiting in board.needs_you:
        request = waiting.request
        blocks.append(section(_request_text(waiting, words)))
        danger = request.operation in (Operation.DISABLE, Operation.MIGRATE)
        approve = button(
            _("Approve"), HOME_APPROVE, request.id, style="danger" if danger else "primary"
        )
        if danger:
            approve["confirm"] = danger_dialog(
                _("Approve this change?"),
                escape(words.title(request.operation, request.app_name, request.app_id)),
                yes=_("Approve"),
                no=_("Not yet"),
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"home_decide:{request.id}"[:255],
                "elements": [approve, button(_("Reject"), HOME_REJECT, request.id)],
            }
        )
    for waiting in board.yours:
        blocks.append(section(_own_request_text(waiting, words)))
        blocks.append(
            {
                "type": "actions",
                "block_id": f"home_own:{waiting.request.id}"[:255],
                "elements": [button(_("Withdraw request"), HOME_WITHDRAW, waiting.request.id)],
            }
        )
    return blocks


def _request_text(waiting: WaitingRequest, words: Words) -> str:
    request = waiting.request
    summary = escape(words.title(request.operation, request.app_name, request.app_id))
    got, needed = len(request.approved_by), request.approvals_needed
    detail = _(
        "Asked by {requester}; {got} of {needed} approvals so far; the request expires on {day}."
    ).format(
        requester=f"<@{request.requester.user_id}>",
        got=number(got),
        needed=number(needed),
        day=_day(request.expires_at, words),
    )
    return f":ballot_box_with_check: *{summary}*\n{detail}"


def _own_request_text(waiting: WaitingRequest, words: Words) -> str:
    request = waiting.request
    summary = escape(words.title(request.operation, request.app_name, request.app_id))
    left = request.approvals_needed - len(request.approved_by)
    head = _("Your request: {summary}").format(summary=summary)
    # Translators: "approval(s)" stays as it is in English whatever the number
    detail = _(
        "It waits for {left} more approval(s) from other people; it expires on {day}."
    ).format(left=number(left), day=_day(request.expires_at, words))
    return f":hourglass_flowing_sand: *{head}*\n{detail}"


# --- coming up ---------------------------------------------------------------------------------


def _coming_up(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    if not board.sees_apps:
        return []
    blocks: list[dict[str, Any]] = [header(_("Coming up in the next 30 days"))]
    if not board.coming_up:
        blocks.append(section(_("No app expires or is purged in the next 30 days.")))
        return blocks
    for coming in board.coming_up:
        block = section(_coming_text(coming, words))
        if coming.allowed:
            if coming.operation is Operation.EXTEND:
                block["accessory"] = button(_("Extend"), HOME_EXTEND, coming.app.app_id)
            else:
                block["accessory"] = button(_("Enable"), HOME_ENABLE, coming.app.app_id)
        blocks.append(block)
    return blocks


def _coming_text(coming: ComingUp, words: Words) -> str:
    app = coming.app
    name, when = escape(clip(app.name, 80)), _day(coming.at, words)
    if coming.operation is Operation.EXTEND:
        text = _(
            "Developer app *{name}* (`{app_id}`) expires on {day}; "
            "it is suspended then unless it is extended or upgraded."
        )
        return ":hourglass_flowing_sand: " + text.format(name=name, app_id=app.app_id, day=when)
    text = _(
        "Disabled app *{name}* (`{app_id}`) is purged on {day}; its data can't be "
        "recovered after that unless an admin re-enables it before."
    )
    return ":warning: " + text.format(name=name, app_id=app.app_id, day=when)


# --- your apps ---------------------------------------------------------------------------------


def _your_apps(board: HomeBoard, words: Words) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [header(_("Your apps"))]
    if not board.sees_apps:
        blocks.append(
            section(_("You may not see any app yet. An admin can give you a role: `/plan help`."))
        )
        return blocks
    filters: list[dict[str, Any]] = [
        {
            "type": "conversations_select",
            "action_id": HOME_TEAM,
            "placeholder": {"type": "plain_text", "text": _("Show one team's apps")},
            **({"initial_conversation": board.team} if board.team else {}),
        }
    ]
    if board.team:
        filters.append(button(_("All teams"), HOME_ALL_TEAMS, ALL_TEAMS))
    blocks.append({"type": "actions", "block_id": "home_filter", "elements": filters})
    if board.teams and not board.team:
        named = ", ".join(f"<#{t}>" for t in board.teams[:_TEAMS_NAMED])
        if len(board.teams) > _TEAMS_NAMED:
            more = number(len(board.teams) - _TEAMS_NAMED)
            named = _("{teams} and {more} more").format(teams=named, more=more)
        blocks.append(context(_("Teams with apps: {teams}.").format(teams=named)))
    if not board.apps:
        if board.team:
            empty = _("There are no apps of {team} to show.").format(team=f"<#{board.team}>")
        else:
            empty = _("There are no apps to show.")
        blocks.append(section(empty))
        return blocks
    team: object = object()
    for line in board.apps:
        owner = line.app.owner_channel
        if owner != team:
            team = owner
            no_team = _("Apps of no team")
            label = _("Team {team}").format(team=f"<#{owner}>") if owner else no_team
            blocks.append(context(f"*{label}*"))
        blocks.append(section(_app_text(line, board, words)))
    blocks += _pager(board)
    return blocks


def _app_text(line: AppLine, board: HomeBoard, words: Words) -> str:
    app = line.app
    name = escape(clip(app.name, 80))
    plan, status = plan_name(app.plan), status_name(app.status)
    if app.billing_mode.value == "legacy":
        state = _("{plan}, {status}, legacy billing").format(plan=plan, status=status)
    else:
        state = _("{plan}, {status}").format(plan=plan, status=status)
    title = f"*{name}* (`{app.app_id}`): {state}"
    if app.dev_expires_at is not None and app.plan.value == "developer":
        detail = _("Developer validity until {day}.").format(day=_day(app.dev_expires_at, words))
    elif app.purge_at is not None:
        detail = _("Disabled; purged after {day}.").format(day=_day(app.purge_at, words))
    else:
        detail = ""
    year, month = board.month
    charges = _(
        "{month}: {so_far} charged so far, {projected} for the month if nothing changes."
    ).format(
        month=f"{year}-{month:02d}",
        so_far=money(line.to_date, board.currency),
        projected=money(line.projected, board.currency),
    )
    return "\n".join(part for part in (title, detail, charges) if part)


def _pager(board: HomeBoard) -> list[dict[str, Any]]:
    total = f"{number(board.total)}+" if board.more else number(board.total)
    pages = _("Page {page} of {pages} · {total} apps").format(
        page=number(board.page), pages=number(board.pages), total=total
    )
    blocks = [context(pages)]
    buttons = []
    if board.page > 1:
        buttons.append(button(_("Previous page"), HOME_PAGE, _page_value(board.page - 1, board)))
    if board.page < board.pages:
        buttons.append(button(_("Next page"), HOME_PAGE, _page_value(board.page + 1, board)))
    if buttons:
        blocks.append({"type": "actions", "block_id": "home_pager", "elements": buttons})
    return blocks


def _page_value(page: int, board: HomeBoard) -> str:
    """A pager button's value: the page, and the team it pages through ("" for all)."""
    return f"{page}:{board.team or ALL_TEAMS}"


def page_of(value: str) -> tuple[int, str | None]:
    """The page and team a pager button carries (page 1 of every team when unreadable)."""
    page, _sep, team = value.partition(":")
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
