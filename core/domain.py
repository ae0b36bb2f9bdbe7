"""The plan rules of DOMAIN.md as pure functions over plain values.

An app's state is an immutable `AppState`; each operation is a function that takes the state and
the moment ("now", an aware datetime) and returns the new state, or raises the `PlanError` that
explains the refusal. Nothing here touches a database, a clock or Slack.
"""

from __future__ import annotations

import calendar
import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

from core import errors

__all__ = [
    "APP_NAME_MAX",
    "LEGACY_CUTOFF",
    "PRODUCT_SINCE",
    "PURGE_AFTER",
    "Actor",
    "AppState",
    "BillingMode",
    "HistoryEntry",
    "Operation",
    "Plan",
    "Status",
    "add_months",
    "app_name",
    "billing_mode_for",
    "configure",
    "create",
    "disable",
    "enable",
    "extend",
    "is_app_id",
    "migrate",
    "month_bounds",
    "name_key",
    "next_month_start",
    "one_month_later",
    "purge",
    "purge_at",
    "suspend",
    "upgrade",
]

#: the day the legacy billing mode ended (apps created before it are legacy by default)
LEGACY_CUTOFF = date(2022, 12, 26)
#: how long a disabled app can be re-enabled; after more than this it is purged
PURGE_AFTER = timedelta(days=90)
#: the earliest creation date an app can have: the provider's IM product was launched in 2014
#: (an imported `created_at` before it is a mistake, e.g. 0001-01-01)
PRODUCT_SINCE = date(2014, 1, 1)
#: the longest app name, in characters (after normalisation)
APP_NAME_MAX = 80
#: Unicode categories no name may hold: controls (Cc: newlines, tabs), formats (Cf: U+202E
#: right-to-left override, zero-width spaces and joiners, the BOM), line and paragraph
#: separators (Zl, Zp), and surrogates and unassigned code points (Cs, Cn)
_NAME_FORBIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


class Plan(enum.StrEnum):
    """An app's plan."""

    DEVELOPER = "developer"
    STANDARD = "standard"
    PREMIUM = "premium"

    @property
    def paid(self) -> bool:
        """Whether the plan is postpaid."""
        return self is not Plan.DEVELOPER


class BillingMode(enum.StrEnum):
    """The provider's billing mode of an app."""

    LEGACY = "legacy"
    CURRENT = "current"


class Status(enum.StrEnum):
    """An app's service status."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    DISABLED = "disabled"
    PURGED = "purged"


class Operation(enum.StrEnum):
    """A change a person can ask for (and the lifecycle's own changes)."""

    CREATE = "create"
    UPGRADE = "upgrade"
    CONFIGURE = "configure"
    EXTEND = "extend"
    DISABLE = "disable"
    ENABLE = "enable"
    MIGRATE = "migrate"
    SUSPEND = "suspend"
    PURGE = "purge"

    @property
    def verb(self) -> str:
        """The past participle used in messages ("upgraded")."""
        return _VERBS[self]

    @property
    def requestable(self) -> bool:
        """Whether a person can ask for it (suspend and purge are the lifecycle's own)."""
        return self not in (Operation.SUSPEND, Operation.PURGE)


_VERBS = {
    Operation.CREATE: "created",
    Operation.UPGRADE: "upgraded",
    Operation.CONFIGURE: "reconfigured",
    Operation.EXTEND: "extended",
    Operation.DISABLE: "disabled",
    Operation.ENABLE: "re-enabled",
    Operation.MIGRATE: "migrated",
    Operation.SUSPEND: "suspended",
    Operation.PURGE: "purged",
}


@dataclass(frozen=True)
class Actor:
    """Who acts: an opaque, stable user id, a display name, and the groups they belong to."""

    user_id: str
    name: str = ""
    groups: frozenset[str] = frozenset()
    #: groups holding grants whose members are not known yet (the edge is reading them): the
    #: actor may be in them
    pending_groups: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """How the actor is named in records."""
        return self.name or self.user_id

    def in_pending_groups(self) -> Actor:
        """The actor as if they were in every group not known yet (what they might hold)."""
        return replace(self, groups=self.groups | self.pending_groups, pending_groups=frozenset())


@dataclass(frozen=True)
class AppState:
    """An app's plan state at one moment."""

    app_id: str
    name: str
    plan: Plan
    billing_mode: BillingMode
    status: Status
    created_at: datetime
    owner_channel: str | None = None
    dev_expires_at: datetime | None = None
    disabled_at: datetime | None = None
    config_changed_at: datetime | None = None
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 1
    #: when planbot came to know the app (created or imported); None: since its creation
    known_since: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    @property
    def purge_at(self) -> datetime | None:
        """When a disabled app is purged."""
        return purge_at(self.disabled_at) if self.disabled_at else None


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One entry of an app's plan history: its state from `at` on, and who made it so."""

    app_id: str
    at: datetime
    operation: str  # an Operation, or "import"
    plan: Plan
    status: Status
    billing_mode: BillingMode
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    monthly_price: Decimal
    actor: Actor
    request_id: str | None = None


# --- dates ---------------------------------------------------------------------------------


def add_months(moment: datetime, months: int = 1) -> datetime:
    """The same day and time `months` calendar months later, clamped to the month's end."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The first instant of the month and of the next one, in the billing time zone."""
    start = datetime(year, month, 1, tzinfo=tz)
    return start, add_months(start)


def next_month_start(moment: datetime, tz: ZoneInfo) -> datetime:
    """Midnight of the 1st of the month after `moment`, in the billing time zone."""
    local = moment.astimezone(tz)
    return add_months(datetime.combine(local.date().replace(day=1), time(), tzinfo=tz))


def purge_at(disabled_at: datetime) -> datetime:
    """The moment after which a disabled app can no longer be recovered."""
    return disabled_at + PURGE_AFTER


def billing_mode_for(created_at: datetime, tz: ZoneInfo | None = None) -> BillingMode:
    """The billing mode an app created at that moment has by default (its day counted in `tz`)."""
    day = (created_at.astimezone(tz) if tz is not None else created_at).date()
    return BillingMode.LEGACY if day < LEGACY_CUTOFF else BillingMode.CURRENT


def one_month_later(moment: datetime, tz: ZoneInfo | None = None) -> datetime:
    """One calendar month later, counted in `tz` (in the moment's own zone when None)."""
    if tz is None:
        return add_months(moment)
    return add_months(moment.astimezone(tz)).astimezone(moment.tzinfo)


# --- guards --------------------------------------------------------------------------------


def _not_purged(app: AppState) -> None:
    if app.status is Status.PURGED:
        raise errors.AppPurged(app.app_id, app.name)


def _current_billing(app: AppState, op: Operation) -> None:
    _not_purged(app)
    if app.billing_mode is BillingMode.LEGACY:
        raise errors.LegacyBillingMode(app.app_id, op.verb, app.name)


# --- operations ----------------------------------------------------------------------------


def is_app_id(text: str) -> bool:
    """Whether `text` is an app id: 1 to 20 ASCII digits (never other scripts' digits)."""
    return 1 <= len(text) <= 20 and text.isascii() and text.isdigit()


def app_name(raw: str) -> str:
    """The name an app can have, from what was typed or imported; InvalidAppName otherwise.

    The one rule for names (creation, import, the command grammar): NFC-normalised, trimmed,
    1 to `APP_NAME_MAX` characters, no control, format or separator characters (a newline
    could forge a line of an audit message; a zero-width space makes `dev-1` and `dev-1\u200b`
    look alike), and not only digits (it would read as an app id). Uniqueness, ignoring case,
    is the store's (`name_key`, a unique index).
    """
    clean = unicodedata.normalize("NFC", raw).strip()
    if not clean:
        raise errors.InvalidAppName("it is empty.", problem="empty")
    bad = sorted(
        {f"U+{ord(ch):04X}" for ch in clean if unicodedata.category(ch) in _NAME_FORBIDDEN}
    )
    if bad:
        shown = ", ".join(bad[:5])
        raise errors.InvalidAppName(
            f"it holds invisible or control characters ({shown}): a name is one line of "
            "visible text.",
            problem="invisible",
            characters=shown,
        )
    if len(clean) > APP_NAME_MAX:
        raise errors.InvalidAppName(
            f"it is longer than {APP_NAME_MAX} characters.", problem="too_long", limit=APP_NAME_MAX
        )
    if clean.isdigit():
        raise errors.InvalidAppName(
            "it is all digits, which would read as an app id.", problem="digits"
        )
    return clean


def name_key(name: str) -> str:
    """What two names must not share: the name with case folded (`Dev-1` and `dev-1` clash)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def create(
    *,
    app_id: str,
    name: str,
    owner_channel: str | None,
    now: datetime,
    tz: ZoneInfo | None = None,
) -> AppState:
    """A new developer app on the current billing mode, valid for one month (counted in `tz`)."""
    clean = app_name(name)
    return AppState(
        app_id=app_id,
        name=clean,
        plan=Plan.DEVELOPER,
        billing_mode=BillingMode.CURRENT,
        status=Status.ACTIVE,
        created_at=now,
        owner_channel=owner_channel,
        dev_expires_at=one_month_later(now, tz),
        known_since=now,
    )


def upgrade(app: AppState, target: Plan, now: datetime) -> AppState:
    """Developer -> standard or premium, at once; never back."""
    _current_billing(app, Operation.UPGRADE)
    if target not in (Plan.STANDARD, Plan.PREMIUM):
        raise errors.InvalidTargetPlan(str(target))
    if app.plan is not Plan.DEVELOPER:
        raise errors.UpgradeNotAllowed(app.app_id, app.plan, app.name)
    if app.status not in (Status.ACTIVE, Status.SUSPENDED):
        raise errors.UpgradeNotAllowed(app.app_id, f"{app.plan} ({app.status})", app.name)
    return replace(
        app, plan=target, status=Status.ACTIVE, dev_expires_at=None, version=app.version + 1
    )


def configure(
    app: AppState,
    *,
    edition: Plan | None,
    addons: Mapping[str, str],
    now: datetime,
    tz: ZoneInfo,
    defaults: Mapping[str, str] | None = None,
) -> AppState:
    """Change a paid app's edition and/or add-ons, at most once per billing month.

    Add-on names and values are checked against the catalog by the caller (money.Catalog), which
    also gives each add-on's `defaults`: an add-on at its default is the same as no add-on.
    """
    _current_billing(app, Operation.CONFIGURE)
    if not app.plan.paid:
        raise errors.ConfigChangeNotAllowed(
            app.app_id,
            f"it is on the developer plan. Upgrade it first with `/plan upgrade {app.app_id} "
            "standard` (or premium).",
            app.name,
        )
    if app.status is not Status.ACTIVE:
        raise errors.ConfigChangeNotAllowed(
            app.app_id,
            f"it is {app.status}. Re-enable it first with `/plan enable {app.app_id}`.",
            app.name,
        )
    if edition is not None and edition not in (Plan.STANDARD, Plan.PREMIUM):
        raise errors.InvalidTargetPlan(str(edition))
    new_plan = edition or app.plan
    at_default = defaults or {}
    new_config = {k: v for k, v in {**app.config, **addons}.items() if at_default.get(k) != v}
    old_config = {k: v for k, v in app.config.items() if at_default.get(k) != v}
    if new_plan is app.plan and new_config == old_config:
        raise errors.NothingToChange(app.app_id, "that configuration", app.name)
    if app.config_changed_at is not None:
        changed = app.config_changed_at.astimezone(tz)
        local_now = now.astimezone(tz)
        if (changed.year, changed.month) == (local_now.year, local_now.month):
            raise errors.ConfigChangeLimitReached(
                app.app_id, changed, next_month_start(now, tz), app.name
            )
    return replace(
        app, plan=new_plan, config=new_config, config_changed_at=now, version=app.version + 1
    )


def extend(app: AppState, now: datetime, tz: ZoneInfo | None = None) -> AppState:
    """One more calendar month (in `tz`) of developer validity from the later of now and expiry."""
    _current_billing(app, Operation.EXTEND)
    if app.plan is not Plan.DEVELOPER:
        raise errors.ExtendNotAllowed(app.app_id, app.plan, app.name)
    base = max(now, app.dev_expires_at) if app.dev_expires_at else now
    return replace(
        app, dev_expires_at=one_month_later(base, tz), status=Status.ACTIVE, version=app.version + 1
    )


def disable(app: AppState, now: datetime) -> AppState:
    """Stop a paid app's service at once; it can be re-enabled for 90 days."""
    _current_billing(app, Operation.DISABLE)
    if not app.plan.paid:
        reason = (
            "it is a developer app; a suspended developer app is left to expire."
            if app.status is Status.SUSPENDED
            else "disabling is for standard and premium apps; a developer app simply expires "
            "at the end of its validity."
        )
        raise errors.DisableNotAllowed(app.app_id, reason, app.name)
    if app.status is Status.DISABLED:
        raise errors.DisableNotAllowed(app.app_id, "it is already disabled.", app.name)
    return replace(app, status=Status.DISABLED, disabled_at=now, version=app.version + 1)


def enable(app: AppState, now: datetime) -> AppState:
    """Re-enable a disabled app within 90 days, restoring its plan and configuration."""
    _not_purged(app)
    if app.status is not Status.DISABLED or app.disabled_at is None:
        raise errors.EnableNotAllowed(app.app_id, app.status, app.name)
    deadline = purge_at(app.disabled_at)
    if now > deadline:
        raise errors.PurgeDeadlinePassed(app.app_id, deadline, app.name)
    return replace(app, status=Status.ACTIVE, disabled_at=None, version=app.version + 1)


def migrate(app: AppState, now: datetime) -> AppState:
    """Move a legacy app to the current billing mode (one-way)."""
    _not_purged(app)
    if app.billing_mode is BillingMode.CURRENT:
        raise errors.AlreadyCurrentBilling(app.app_id, app.name)
    return replace(app, billing_mode=BillingMode.CURRENT, version=app.version + 1)


def suspend(app: AppState, now: datetime) -> AppState | None:
    """The developer app whose validity has ended, suspended; None when nothing is due."""
    if (
        app.plan is Plan.DEVELOPER
        and app.status is Status.ACTIVE
        and app.dev_expires_at is not None
        and app.dev_expires_at <= now
    ):
        return replace(app, status=Status.SUSPENDED, version=app.version + 1)
    return None


def purge(app: AppState, now: datetime) -> AppState | None:
    """The app disabled for more than 90 days, purged; None when nothing is due."""
    if app.status is Status.DISABLED and app.disabled_at and now > purge_at(app.disabled_at):
        return replace(app, status=Status.PURGED, version=app.version + 1)
    return None


def utcnow() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)
