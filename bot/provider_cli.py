"""`planbot provider sync|usage|reconcile`: the provider connector's jobs, now, in a terminal.

Each prints what it found and queues what it posts (the drift, owners' warnings, reconciliation
differences) in the outbox, delivered at once when a Slack token is set (else by the worker).
Exit codes: 0 done, 1 the provider failed or refused, 2 the connector is off or the input is bad.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from bot.i18n import _, money, number
from bot.settings import Settings
from bot.tables import pad
from core import BACKGROUND_WAITS, ProviderError, ReconcileReport, SyncReport, UsageReport

__all__ = ["add_parser", "run"]

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


def connector_off() -> str:
    """What the command line says when the provider connector has no credentials."""
    return _(
        "the provider connector is off: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
    )


def add_parser(sub: Any) -> None:
    """Add `provider` and its subcommands to the `planbot` parser."""
    provider = sub.add_parser(
        "provider", help="the provider's own truth: inventory drift, usage, bill reconciliation"
    ).add_subparsers(dest="provider_command")
    provider.add_parser("sync", help="compare the account's SDKAppIDs with planbot's apps")
    usage = provider.add_parser("usage", help="fetch and store the apps' daily figures now")
    usage.add_argument("--app", action="append", default=None, help="only this app id (repeat)")
    reconcile = provider.add_parser(
        "reconcile", help="compare a month's bill with planbot's charges, per app"
    )
    reconcile.add_argument("month", help="the month, YYYY-MM")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Carry out `planbot provider <command>`."""
    what = getattr(args, "provider_command", None)
    if what is None:
        print(_("usage: planbot provider sync|usage|reconcile YYYY-MM"), file=sys.stderr)
        return 2
    month: tuple[int, int] | None = None
    if what == "reconcile":
        match = _MONTH.match(args.month.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
            print(
                _(
                    "planbot: {month} is not a month that has a bill: write it YYYY-MM, a month "
                    "that has ended, from 1970 on"
                ).format(month=repr(args.month)),
                file=sys.stderr,
            )
            return 2
        month = int(match.group(1)), int(match.group(2))
    if not settings.provider_config().enabled:
        print(f"planbot: {connector_off()}", file=sys.stderr)
        return 2
    from bot.app import build

    planbot = build(
        settings, signing_secret=settings.signing_secret or "unused", waits=BACKGROUND_WAITS
    )
    jobs = planbot.provider
    assert jobs is not None  # the connector is on
    try:
        if what == "sync":
            _print_sync(jobs.sync())
            code = 0
        elif what == "usage":
            code = _print_usage(jobs.fetch_usage(apps=args.app))
        else:
            assert month is not None
            _print_reconcile(jobs.reconcile(*month), settings)
            code = 0
        if settings.bot_token:
            planbot.dispatcher.deliver_due()
        return code
    except ProviderError as err:
        print(
            _("planbot: provider {command} failed: {error}").format(command=what, error=err.line()),
            file=sys.stderr,
        )
        return 1
    except ValueError as err:
        print(f"planbot: {err}", file=sys.stderr)
        return 1
    finally:
        planbot.close()


def _ids(ids: tuple[str, ...]) -> str:
    # Translators: the list of ids when there is none
    return ", ".join(ids) if ids else _("none")


def _print_sync(report: SyncReport) -> None:
    drift = report.drift
    print(
        _("account: {account} SDKAppIDs · planbot: {planbot} apps (not purged)").format(
            account=number(report.account_count), planbot=number(report.planbot_count)
        )
    )
    print(
        _("unknown to planbot ({n}): {ids}").format(
            n=number(len(drift.unknown)), ids=_ids(drift.unknown)
        )
    )
    print(
        _("no longer in the account ({n}): {ids}").format(
            n=number(len(drift.missing)), ids=_ids(drift.missing)
        )
    )
    if not report.change:
        print(_("drift unchanged since the last sync"))
    else:
        change = report.change
        counts = {
            "unknown": number(len(change.new_unknown)),
            "missing": number(len(change.new_missing)),
            "resolved": number(len(change.resolved)),
        }
        if report.posted:
            line = _(
                "drift changed: {unknown} newly unknown, {missing} newly missing, "
                "{resolved} resolved; posted to the audit channel"
            )
        else:
            line = _(
                "drift changed: {unknown} newly unknown, {missing} newly missing, "
                "{resolved} resolved; no audit channel to post to"
            )
        print(line.format(**counts))
    if drift.unknown:
        print(_("adopt an unknown app with `planbot apps import apps.csv`"))


def _print_usage(report: UsageReport) -> int:
    print(
        _(
            "usage: {apps} apps fetched, {days} days stored ({new_days} new), {warnings} "
            "warnings queued; {without_key} apps without an IM key"
        ).format(
            apps=number(report.apps),
            days=number(report.days),
            new_days=number(report.new_days),
            warnings=number(report.warnings),
            without_key=number(report.without_key),
        )
    )
    for _app, line in report.failed:
        print(_("failed: {line}").format(line=line))
    if report.stopped_by is not None:
        print(_("stopped: {line}").format(line=report.stopped_by.line()))
    return 1 if report.failed or report.stopped_by is not None else 0


def _print_reconcile(report: ReconcileReport, settings: Settings) -> None:
    currency = report.currency
    print(
        _("reconciliation of {month} ({currency}): {n} apps").format(
            month=report.month, currency=currency, n=number(len(report.lines))
        )
    )
    if report.lines:
        heads = (_("app"), _("planbot"), _("billed"), _("difference"))
        print(pad(heads[0], 32) + "".join(pad(h, 14, right=True) for h in heads[1:]))
    for line in report.lines:
        label = f"{line.app_id} {line.name}"[:31]
        difference = money(line.difference, currency)
        if line.difference > 0:
            difference = "+" + difference
        note = ""
        if line.legacy:
            note = "  " + _("legacy billing: not computed by planbot")
        elif line.differs:
            note = "  " + _("differs")
        print(
            f"{pad(label, 32)}{pad(money(line.ours, currency), 14, right=True)}"
            f"{pad(money(line.billed, currency), 14, right=True)}"
            f"{pad(difference, 14, right=True)}{note}"
        )
    count = number(len(report.differences))
    if not report.differences:
        print(_("no difference over a cent"))
    elif report.posted:
        print(_("{n} differences over a cent: posted to the audit channel").format(n=count))
    elif settings.audit_channel:
        print(_("{n} differences over a cent: already posted").format(n=count))
    else:
        print(_("{n} differences over a cent (no audit channel to post to)").format(n=count))
