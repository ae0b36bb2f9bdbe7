"""The provider's truth as plain values, and the pure rules over it.

- `ProviderConfig`: credentials, endpoints and IM admin keys, read by the entrypoint.
- `Drift`: the SDKAppIDs in the account that planbot does not know, and the reverse;
  `Drift.changes_since` says what changed since the last known drift.
- `DailyUsage` and `usage_warnings`: one app's daily figures, and when they reach 80% and 100%
  of the plan's limit.
- `reconcile`: planbot's charge for a month beside the provider's billed amount, per app.

Errors from the provider are one class, `ProviderError`, whose `kind` says what to do about it:

    Exception
     └── ProviderError   kind: "auth" (fix the keys), "throttled", "unavailable" (retry later),
                         "refused" (the provider said no for another reason)
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

__all__ = [
    "DIFFERENCE_THRESHOLD",
    "FIGURES",
    "LIMITED_FIGURES",
    "WARNING_LEVELS",
    "BilledAmount",
    "DailyUsage",
    "Drift",
    "DriftChange",
    "ImKey",
    "ProviderConfig",
    "ProviderError",
    "ReconciliationLine",
    "UsageLevel",
    "load_im_keys",
    "parse_im_keys",
    "reconcile",
    "usage_warnings",
]

#: the daily figures kept per app, in the order they are shown
FIGURES: tuple[str, ...] = (
    "active_users",
    "logins",
    "peak_online",
    "registered_users",
    "groups",
    "messages",
)
#: figures that a plan limit bounds: figure -> the catalog's limit name
LIMITED_FIGURES: Mapping[str, str] = {"active_users": "monthly_active_users"}
#: the shares of a limit at which the owner is warned, in percent
WARNING_LEVELS: tuple[int, ...] = (80, 100)
#: reconciliation differences up to this much are rounding, not news
DIFFERENCE_THRESHOLD = Decimal("0.01")


class ProviderError(Exception):
    """A call to the provider failed; `kind` is auth, throttled, unavailable or refused."""

    def __init__(self, kind: str, code: str, message: str, *, service: str = "") -> None:
        super().__init__(f"{service + ': ' if service else ''}{code}: {message}")
        self.kind = kind
        self.code = code
        self.message = message
        self.service = service

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed without anyone changing anything."""
        return self.kind in ("throttled", "unavailable")

    def line(self) -> str:
        """One line for a terminal or a log: what failed, and what to do."""
        hint = {
            "auth": "check the credentials and their permissions",
            "throttled": "the provider's rate limit; planbot retries later",
            "unavailable": "the provider could not be reached; planbot retries later",
        }.get(self.kind, "the provider refused the request")
        where = f"{self.service} " if self.service else ""
        return f"{where}answered {self.code} ({self.message}): {hint}"


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImKey:
    """The IM REST API's admin identity for one app: admin user id and the app's secret key."""

    app_id: str
    admin: str
    key: str = field(repr=False)
    #: the app's IM data center host (e.g. adminapikr.im.qcloud.com), when not the default
    host: str | None = None


@dataclass(frozen=True)
class ProviderConfig:
    """Credentials and endpoints of the provider's APIs; off without a secret id and key."""

    secret_id: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    region: str = ""
    #: a base URL used for every cloud API call instead of the product's host (tests, proxies)
    endpoint: str | None = None
    im_host: str = "console.tim.qq.com"
    im_keys: Mapping[str, ImKey] = field(default_factory=dict)
    #: the IM REST API's documented ceiling, calls a second
    im_rate: float = 200.0
    #: concurrent IM calls (each waits for its turn under `im_rate`)
    im_concurrency: int = 8
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        """Whether the connector has credentials (without them it does nothing)."""
        return bool(self.secret_id and self.secret_key)


def parse_im_keys(text: str, *, source: str = "the IM keys file") -> dict[str, ImKey]:
    """The keys of a TOML file: `[apps.<SDKAppID>]` tables of `admin`, `key` and optional `host`.

    Raises ValueError with one line naming what is wrong (never the keys themselves).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{source} is not valid TOML: {err}") from None
    apps = raw.get("apps", {})
    if not isinstance(apps, dict):
        raise ValueError(f"{source}: `apps` must be a table of [apps.<SDKAppID>] tables")
    keys: dict[str, ImKey] = {}
    for app_id, entry in apps.items():
        where = f"{source}: [apps.{app_id}]"
        if not (str(app_id).isascii() and str(app_id).isdigit()):
            raise ValueError(f"{where}: the table name must be the SDKAppID (digits)")
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table with `admin` and `key`")
        admin, key, host = entry.get("admin"), entry.get("key"), entry.get("host")
        if not isinstance(admin, str) or not admin.strip():
            raise ValueError(f"{where}: `admin` (the app admin's user id) is missing")
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{where}: `key` (the app's secret key) is missing")
        if host is not None and (not isinstance(host, str) or not host.strip()):
            raise ValueError(
                f"{where}: `host` must be a host name such as adminapikr.im.qcloud.com"
            )
        unknown = sorted(set(entry) - {"admin", "key", "host"})
        if unknown:
            raise ValueError(f"{where}: unknown setting {', '.join(unknown)}")
        keys[str(app_id)] = ImKey(str(app_id), admin.strip(), key.strip(), host and host.strip())
    return keys


def load_im_keys(path: str | Path) -> dict[str, ImKey]:
    """The keys of the TOML file at `path` (see `parse_im_keys`)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"can't read {path}: {err.__class__.__name__}") from None
    return parse_im_keys(text, source=str(path))


# --- inventory drift ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftChange:
    """What changed between two drifts: ids newly unknown or missing, and ids resolved."""

    new_unknown: tuple[str, ...] = ()
    new_missing: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.new_unknown or self.new_missing or self.resolved)


@dataclass(frozen=True)
class Drift:
    """Ids in the provider's account that planbot does not know (`unknown`), and ids planbot has
    (not purged) that the account no longer lists (`missing`)."""

    unknown: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @classmethod
    def between(
        cls, account: Iterable[str], planbot: Iterable[str], purged: Iterable[str]
    ) -> Drift:
        """The drift of the account's ids against planbot's (purged apps are gone on both sides:
        one still listed by the account is not unknown, and one no longer listed is not missing)."""
        listed, known, gone = set(account), set(planbot), set(purged)
        return cls(
            unknown=_sorted_ids(listed - known - gone),
            missing=_sorted_ids(known - gone - listed),
        )

    @classmethod
    def of(cls, *, unknown: Iterable[str] = (), missing: Iterable[str] = ()) -> Drift:
        """A drift of these ids, in their usual order."""
        return cls(unknown=_sorted_ids(unknown), missing=_sorted_ids(missing))

    def kinds(self) -> dict[str, str]:
        """Each id of the drift and its kind, "unknown" or "missing"."""
        return {**{a: "unknown" for a in self.unknown}, **{a: "missing" for a in self.missing}}

    def changes_since(self, before: Drift) -> DriftChange:
        """What is new in this drift, and what was in `before` and is no longer."""
        was = set(before.unknown) | set(before.missing)
        now = set(self.unknown) | set(self.missing)
        return DriftChange(
            new_unknown=_sorted_ids(set(self.unknown) - set(before.unknown)),
            new_missing=_sorted_ids(set(self.missing) - set(before.missing)),
            resolved=_sorted_ids(was - now),
        )


def _sorted_ids(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(ids, key=lambda i: (len(i), i)))


# --- usage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyUsage:
    """One app's figures for one day (the provider's day, UTC+8)."""

    app_id: str
    day: date
    active_users: int = 0
    logins: int = 0
    peak_online: int = 0
    registered_users: int = 0
    groups: int = 0
    messages: int = 0

    def figure(self, name: str) -> int:
        """The value of one of `FIGURES`."""
        return int(getattr(self, name))


@dataclass(frozen=True)
class UsageLevel:
    """A figure reached `level`% of the plan's limit in a month (at least `value` of `limit`)."""

    app_id: str
    month: str
    figure: str
    level: int
    value: int
    limit: int
    day: date


def usage_warnings(
    days: Sequence[DailyUsage], limits: Mapping[str, int], *, levels: Sequence[int] = WARNING_LEVELS
) -> list[UsageLevel]:
    """The levels reached by each limited figure in each month of `days` (one app).

    A month's active users are at least its busiest day's active users, so that day alone
    reaching the plan's free monthly active users is certain overage. Each level is reported
    at its highest value in the month; the caller sends each (app, month, figure, level) once.
    """
    found: list[UsageLevel] = []
    by_month: dict[str, list[DailyUsage]] = {}
    for usage in days:
        by_month.setdefault(f"{usage.day:%Y-%m}", []).append(usage)
    for month, month_days in sorted(by_month.items()):
        for figure, limit_name in LIMITED_FIGURES.items():
            limit = int(limits.get(limit_name, 0))
            if limit <= 0:
                continue
            top = max(month_days, key=lambda u: (u.figure(figure), u.day))
            value = top.figure(figure)
            for level in levels:
                if value * 100 >= limit * level:
                    found.append(
                        UsageLevel(top.app_id, month, figure, level, value, limit, top.day)
                    )
    return found


# --- bill reconciliation -----------------------------------------------------------------------


@dataclass(frozen=True)
class BilledAmount:
    """What the provider billed for one resource in a month: after discounts, and list price."""

    real_total: Decimal
    list_total: Decimal | None = None


@dataclass(frozen=True)
class ReconciliationLine:
    """One app's month: planbot's charge, the provider's billed amount, and the difference."""

    app_id: str
    name: str
    ours: Decimal
    billed: Decimal
    list_price: Decimal | None = None
    #: legacy billing: planbot does not compute these charges, so no difference is reported
    legacy: bool = False

    @property
    def difference(self) -> Decimal:
        """The billed amount minus planbot's charge (positive: the provider billed more)."""
        return self.billed - self.ours

    @property
    def differs(self) -> bool:
        """Whether the difference is more than a cent (and planbot computes this app)."""
        return not self.legacy and abs(self.difference) > DIFFERENCE_THRESHOLD


def reconcile(
    charges: Mapping[str, Decimal],
    billed: Mapping[str, BilledAmount],
    *,
    names: Mapping[str, str],
    legacy: Iterable[str] = (),
) -> list[ReconciliationLine]:
    """A line per app planbot knows (`names`) that either side charged, in app id order."""
    old = set(legacy)
    lines = []
    for app_id in _sorted_ids(set(names)):
        ours = charges.get(app_id, Decimal("0.00"))
        theirs = billed.get(app_id)
        if ours == 0 and (theirs is None or theirs.real_total == 0):
            continue
        lines.append(
            ReconciliationLine(
                app_id=app_id,
                name=names[app_id],
                ours=ours,
                billed=theirs.real_total if theirs else Decimal("0.00"),
                list_price=theirs.list_total if theirs else None,
                legacy=app_id in old,
            )
        )
    return lines
