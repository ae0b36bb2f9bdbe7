"""Every refusal the plan service can give, as one exception tree.

    PlanError                      a refusal written for the person in Slack
    ├── AppNotFound, AmbiguousAppName, AppNameTaken, InvalidAppName
    ├── AppPurged                  terminal state: nothing changes any more
    ├── LegacyBillingMode          current-mode operation on a legacy app
    ├── AlreadyCurrentBilling
    ├── UpgradeNotAllowed, InvalidTargetPlan
    ├── ConfigChangeNotAllowed, ConfigChangeLimitReached, UnknownAddon, InvalidAddonValue
    ├── NothingToChange
    ├── InvalidBillMonth           a bill asked for a month that cannot have one
    ├── ExtendNotAllowed, DisableNotAllowed, EnableNotAllowed, PurgeDeadlinePassed
    ├── RequestNotFound, RequestExpired, RequestAlreadyDecided, AppChangedSincePreview,
    │   AlreadyApproved, RequestReplayed
    ├── PermissionDenied, NotYourRequest, SelfApprovalNotAllowed, AwaitingApproval,
    │   ChannelNotAllowed, NoApproverAvailable
    ├── CsvImportError             a CSV with bad rows (nothing imported)
    ├── DatabaseBusy               the database did not answer in time (nothing changed)
    └── GroupsNotYetKnown          the person's user groups have not been read yet

Each message says what was refused, why, and what to do instead. Messages are plain text with
`code` marks only; the edge escapes and formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AlreadyApproved",
    "AlreadyCurrentBilling",
    "AmbiguousAppName",
    "AppChangedSincePreview",
    "AppNameTaken",
    "AppNotFound",
    "AppPurged",
    "AwaitingApproval",
    "ChannelNotAllowed",
    "ConfigChangeLimitReached",
    "ConfigChangeNotAllowed",
    "CsvImportError",
    "DatabaseBusy",
    "DisableNotAllowed",
    "EnableNotAllowed",
    "ExtendNotAllowed",
    "GroupsNotYetKnown",
    "InvalidAddonValue",
    "InvalidAppName",
    "InvalidBillMonth",
    "InvalidTargetPlan",
    "LegacyBillingMode",
    "NoApproverAvailable",
    "NotYourRequest",
    "NothingToChange",
    "PermissionDenied",
    "PlanError",
    "PurgeDeadlinePassed",
    "RequestAlreadyDecided",
    "RequestExpired",
    "RequestNotFound",
    "RequestReplayed",
    "SelfApprovalNotAllowed",
    "UnknownAddon",
    "UpgradeNotAllowed",
]


def _app(app_id: str, name: str = "") -> str:
    """How a refusal names an app: its name as typed in lists, and its id."""
    return f"`{name}` (`{app_id}`)" if name and name != app_id else f"`{app_id}`"


def _zone(moment: datetime) -> str:
    """The time zone of a moment by its name (`Asia/Shanghai`), never an ambiguous
    abbreviation such as `CST`."""
    return str(getattr(moment.tzinfo, "key", None) or moment.strftime("%Z") or "UTC")


class PlanError(Exception):
    """A refusal: the message tells the person what, why, and what to do instead."""

    #: whether a refused confirmation for this reason is written to the audit log
    audited: bool = False

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        #: the facts the refusal is made of (for the edge to word it, and for the records)
        self.params: dict[str, Any] = params


class AppNotFound(PlanError):
    """No app has that id or name; `suggestions` are the nearest names, if any."""

    def __init__(self, ref: str, suggestions: Sequence[str] = ()) -> None:
        near = ", ".join(f"`{s}`" for s in suggestions)
        hint = f" Did you mean {near}?" if near else ""
        super().__init__(
            f"No app `{ref}` found.{hint} Use the app id (digits) or its name; "
            "`/plan list` shows the apps you can see.",
            ref=ref,
            suggestions=list(suggestions),
        )
        self.ref = ref
        self.suggestions = tuple(suggestions)


class AmbiguousAppName(PlanError):
    """Several apps share the name given."""

    def __init__(self, name: str, app_ids: Sequence[str]) -> None:
        ids = ", ".join(f"`{i}`" for i in app_ids)
        super().__init__(
            f"Several apps are named `{name}` ({ids}). Use the app id instead.",
            name=name,
            app_ids=list(app_ids),
        )
        self.app_ids = tuple(app_ids)


class AppNameTaken(PlanError):
    """Creating an app under a name another app already has."""

    def __init__(self, name: str, app_id: str) -> None:
        super().__init__(
            f"An app named `{name}` already exists (`{app_id}`). Choose another name.",
            name=name,
            app_id=app_id,
        )


class InvalidAppName(PlanError):
    """A name that cannot be an app's name."""

    def __init__(self, reason: str, *, problem: str = "", **facts: object) -> None:
        super().__init__(
            f"That app name can't be used: {reason}", reason=reason, problem=problem, **facts
        )


class AppPurged(PlanError):
    """The app was purged: terminal, nothing can change it."""

    def __init__(self, app_id: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} was purged after more than 90 days disabled; its data and services "
            "can't be recovered and it can't be changed. Create a new app with `/plan create <name>`.",
            app_id=app_id,
        )


class LegacyBillingMode(PlanError):
    """A current-billing operation was asked of an app still on legacy billing."""

    def __init__(self, app_id: str, operation: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} is on the legacy billing mode, so it can't be {operation} here: plan "
            "operations belong to the current billing mode. Migrate it first with "
            f"`/plan migrate {app_id}` (one-way: legacy billing can't be restored).",
            app_id=app_id,
            operation=operation,
        )


class AlreadyCurrentBilling(PlanError):
    """Migration asked of an app already on the current billing mode."""

    def __init__(self, app_id: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} is already on the current billing mode; there is nothing to migrate.",
            app_id=app_id,
        )


class UpgradeNotAllowed(PlanError):
    """Upgrade asked of an app that is not on the developer plan."""

    def __init__(self, app_id: str, plan: str, name: str = "") -> None:
        hint = (
            f" To switch between standard and premium use `/plan config {app_id} edition=...`."
            if plan in ("standard", "premium")
            else ""
        )
        super().__init__(
            f"App {_app(app_id, name)} is on the {plan} plan; only developer apps can be "
            f"upgraded.{hint}",
            app_id=app_id,
            plan=plan,
        )


class InvalidTargetPlan(PlanError):
    """An upgrade target that is not standard or premium."""

    def __init__(self, target: str) -> None:
        super().__init__(
            f"`{target}` is not an upgrade target: choose `standard` or `premium`. There is no "
            "way back to the developer plan; to use it again, create a new app.",
            target=target,
        )


class ConfigChangeNotAllowed(PlanError):
    """Feature configuration asked of an app that is not an active paid app."""

    def __init__(self, app_id: str, reason: str, name: str = "") -> None:
        super().__init__(
            f"The configuration of app {_app(app_id, name)} can't be changed: {reason}",
            app_id=app_id,
            reason=reason,
        )


class ConfigChangeLimitReached(PlanError):
    """A second configuration change in the same billing month."""

    def __init__(
        self, app_id: str, changed_at: datetime, next_allowed: datetime, name: str = ""
    ) -> None:
        super().__init__(
            f"App {_app(app_id, name)} had its configuration changed on {changed_at:%Y-%m-%d}; "
            "the configuration can be changed once per calendar month. The next change is "
            f"possible from {next_allowed:%Y-%m-%d %H:%M} ({_zone(next_allowed)}).",
            app_id=app_id,
            changed_at=changed_at,
            next_allowed=next_allowed,
            name=name,
        )
        self.next_allowed = next_allowed


class UnknownAddon(PlanError):
    """An add-on the catalog does not offer."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(
            f"There is no add-on `{name}`. Available: {', '.join(f'`{k}`' for k in known)}.",
            name=name,
            known=list(known),
        )


class InvalidAddonValue(PlanError):
    """An add-on value the catalog does not offer."""

    def __init__(self, name: str, value: str, options: Sequence[str]) -> None:
        super().__init__(
            f"`{value}` is not a value of `{name}`. Choose one of: "
            f"{', '.join(f'`{o}`' for o in options)}.",
            name=name,
            value=value,
            options=list(options),
        )


class NothingToChange(PlanError):
    """The change asked for is what the app already has."""

    def __init__(self, app_id: str, what: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} already has {what}; nothing to change.",
            app_id=app_id,
            what=what,
        )


class InvalidBillMonth(PlanError):
    """A bill asked for a month that cannot have one (not a month, or too far back or ahead)."""

    def __init__(
        self,
        year: int,
        month: int,
        reason: str,
        *,
        problem: str = "",
        earliest: str = "",
        created: bool = False,
        latest: str = "",
        ahead: int = 0,
    ) -> None:
        since = f"{earliest} (the app's creation)" if created else earliest
        span = f"Bills can be asked for from {since} to {latest}: g" if latest else "G"
        super().__init__(
            f"There is no bill for {year:04d}-{month:02d}: {reason}. {span}ive a month as "
            "`YYYY-MM`, or none for this month's bill so far.",
            year=year,
            month=month,
            reason=reason,
            problem=problem,
            earliest=earliest,
            created=created,
            latest=latest,
            ahead=ahead,
        )
        self.year, self.month = year, month


class ExtendNotAllowed(PlanError):
    """Extension asked of an app that is not on the developer plan."""

    def __init__(self, app_id: str, plan: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} is on the {plan} plan; only developer apps have a "
            "validity to extend. Paid plans don't expire.",
            app_id=app_id,
            plan=plan,
        )


class DisableNotAllowed(PlanError):
    """Disabling asked of an app that is not an active paid app."""

    def __init__(self, app_id: str, reason: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} can't be disabled: {reason}", app_id=app_id, reason=reason
        )


class EnableNotAllowed(PlanError):
    """Re-enabling asked of an app that is not disabled."""

    def __init__(self, app_id: str, status: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} is {status}, not disabled; there is nothing to re-enable.",
            app_id=app_id,
            status=status,
        )


class PurgeDeadlinePassed(PlanError):
    """Re-enabling asked after the 90-day window."""

    def __init__(self, app_id: str, purge_at: datetime, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} has been disabled for more than 90 days (it could be re-enabled "
            f"until {purge_at:%Y-%m-%d}); it can't be recovered. Create a new app with "
            "`/plan create <name>`.",
            app_id=app_id,
            purge_at=purge_at,
            name=name,
        )


class RequestNotFound(PlanError):
    """A button carried a request id that does not exist."""

    audited = True

    def __init__(self) -> None:
        super().__init__(
            "That request doesn't exist (it may be from another workspace or was never made). "
            "Run the `/plan` command again."
        )


class RequestExpired(PlanError):
    """The pending request was not confirmed in time."""

    audited = True

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(
            f"This request expired at {expired_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, so "
            "nothing was changed. "
            "Run the `/plan` command again for a fresh preview.",
            expired_at=expired_at,
        )


class RequestAlreadyDecided(PlanError):
    """The request was already applied, cancelled or rejected."""

    def __init__(self, state: str, by: str | None, by_id: str | None = None) -> None:
        closed = {  # closed by the service, not by a person: no "by", and a way forward
            "expired": "expired before it was confirmed",
            "stale": "not applied because the app changed since its preview",
            "refused": "refused when it was confirmed",
        }
        if state in closed:
            message = (
                f"This request was {closed[state]}; nothing was changed. Run the `/plan` "
                "command again for a fresh preview."
            )
        else:
            who = f" by {by}" if by else ""
            word = {"applied": "already done", "cancelled": "cancelled", "rejected": "rejected"}
            message = f"This request was {word.get(state, state)}{who}; nothing more to do."
        super().__init__(message, state=state, by=by, by_id=by_id)
        self.state = state
        self.by_id = by_id


class RequestReplayed(PlanError):
    """The same state-changing request arrived again (a replay): it changes nothing."""

    def __init__(self) -> None:
        super().__init__("This request was already received; nothing was changed.")


class AppChangedSincePreview(PlanError):
    """The app changed between the preview and the confirmation."""

    audited = True

    def __init__(self, app_id: str, name: str = "") -> None:
        super().__init__(
            f"App {_app(app_id, name)} changed since this preview was shown, so nothing was applied. "
            "Run the `/plan` command again to see the current state and cost.",
            app_id=app_id,
        )


class PermissionDenied(PlanError):
    """The actor lacks the role the operation needs; `admins` are the people who can grant it."""

    audited = True

    def __init__(self, what: str, role: str, admins: Sequence[str] = ()) -> None:
        super().__init__(
            f"You can't {what}: it needs the `{role}` role. Ask a planbot admin to grant it "
            f"(`/plan access grant @you {role}`).",
            what=what,
            role=role,
            admins=list(admins),
        )
        self.role = role
        self.admins = tuple(admins)


class NotYourRequest(PlanError):
    """Someone other than the requester (or an approver) pressed the button."""

    audited = True

    def __init__(self, requester: str, requester_id: str | None = None) -> None:
        super().__init__(
            f"This request belongs to {requester}; only they can confirm or cancel it.",
            requester=requester,
            requester_id=requester_id,
        )
        self.requester_id = requester_id


class AwaitingApproval(PlanError):
    """A Confirm click on a request that only peers can approve."""

    audited = True

    def __init__(self, approvers: int) -> None:
        who = "another person" if approvers == 1 else f"{approvers} other people"
        super().__init__(
            f"This request needs approval by {who} with the needed role, so it can't be "
            "confirmed directly. Approvers use the approval card; the requester can withdraw it.",
            approvers=approvers,
        )


class AlreadyApproved(PlanError):
    """An approver pressed Approve again on a request that still waits for others."""

    def __init__(self, waiting_for: int) -> None:
        more = "1 more approval" if waiting_for == 1 else f"{waiting_for} more approvals"
        super().__init__(
            f"You already approved this request; it still waits for {more} from other people.",
            waiting_for=waiting_for,
        )


class NoApproverAvailable(PlanError):
    """A change that needs peers' approval when too few people besides the requester could give
    it: `holders` are the people known to hold the role besides the requester (configured
    admins and users granted the role)."""

    def __init__(self, operation: str, role: str, needed: int, holders: Sequence[str] = ()) -> None:
        who = "another person" if needed == 1 else f"{needed} other people"
        have = (
            "nobody else has that role"
            if not holders
            else "only 1 other person has that role"
            if len(holders) == 1
            else f"only {len(holders)} other people have that role"
        )
        super().__init__(
            f"Nothing was requested: `/plan {operation}` needs approval by {who} with the "
            f"`{role}` role, and {have}, so nobody could approve it. Ask a planbot admin to grant "
            f"the role to a colleague (`/plan access grant @someone {role}`), or whoever runs "
            "planbot to ask for fewer approvals for this operation.",
            operation=operation,
            role=role,
            needed=needed,
            holders=list(holders),
        )
        self.role = role
        self.needed = needed
        self.holders = tuple(holders)


class SelfApprovalNotAllowed(PlanError):
    """The requester tried to approve their own peer-approved request."""

    audited = True

    def __init__(self) -> None:
        super().__init__(
            "You made this request, and it needs approval by someone else; ask a colleague "
            "with the needed role to approve it."
        )


class ChannelNotAllowed(PlanError):
    """A plan change from a channel that is not on the allowed list (`channels`)."""

    def __init__(self, channels: Sequence[str]) -> None:
        super().__init__(
            "Plan changes can only be made from the allowed channels. Run it there.",
            channels=list(channels),
        )
        self.channels = tuple(channels)


class CsvImportError(PlanError):
    """A CSV file with bad rows: nothing was imported."""

    def __init__(self, problems: Sequence[str], *, total: int | None = None) -> None:
        total = len(problems) if total is None else total
        shown = list(problems[:50])
        more = f"\n... and {total - len(shown)} more" if total > len(shown) else ""
        super().__init__(
            f"Nothing was imported: {total} "
            f"{'problem' if total == 1 else 'problems'} found.\n" + "\n".join(shown) + more,
            problems=list(problems),
            total=total,
        )
        self.problems = tuple(problems)


class DatabaseBusy(PlanError):
    """The database did not answer within the wait allowed (locked, or unreachable): nothing
    was changed; the same request may succeed a moment later. `waited`: seconds allowed."""

    def __init__(self, waited: float, what: str = "") -> None:
        super().__init__(
            "planbot is busy right now (the database did not answer in time); nothing was "
            "changed — try again in a moment",
            waited=waited,
            what=what,
        )
        self.waited = waited


class GroupsNotYetKnown(PlanError):
    """The person may hold a role through a user group whose members have not been read yet
    (they are being read): nothing was changed, the same request works in a few seconds."""

    def __init__(self, groups: Sequence[str]) -> None:
        super().__init__(
            "planbot is still reading your user groups from Slack (they may give you a role "
            "here); nothing was changed — try again in a few seconds",
            groups=list(groups),
        )
        self.groups = tuple(groups)
