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

from bot.settings import Settings
from bot.words import CONNECTOR_OFF
from core import (
    BACKGROUND_WAITS,
    ProviderError,
    ReconcileReport,
    SyncReport,
    UsageReport,
    format_money,
)

__all__ = ["add_parser", "run"]

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


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
        print("usage: planbot provider sync|usage|reconcile YYYY-MM", file=sys.stderr)
        return 2
    month: tuple[int, int] | None = None
    if what == "reconcile":
        match = _MONTH.match(args.month.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
            print(
                f"planbot: {args.month!r} is not a month that has a bill: write it YYYY-MM, "
                "a month that has ended, from 1970 on",
                file=sys.stderr,
            )
            return 2
        month = int(match.group(1)), int(match.group(2))
    if not settings.provider_config().enabled:
        print(f"planbot: {CONNECTOR_OFF}", file=sys.stderr)
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
        print(f"planbot: provider {what} failed: {err.line()}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"planbot: {err}", file=sys.stderr)
        return 1
    finally:
        planbot.close()


def _ids(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "none"


def _print_sync(report: SyncReport) -> None:
    drift = report.drift
    print(
        f"account: {report.account_count} SDKAppIDs · planbot: {report.planbot_count} apps "
        "(not purged)"
    )
    print(f"unknown to planbot ({len(drift.unknown)}): {_ids(drift.unknown)}")
    print(f"no longer in the account ({len(drift.missing)}): {_ids(drift.missing)}")
    if not report.change:
        print("drift unchanged since the last sync")
    else:
        where = "posted to the audit channel" if report.posted else "no audit channel to post to"
        change = report.change
        print(
            f"drift changed: {len(change.new_unknown)} newly unknown, {len(change.new_missing)} "
            f"newly missing, {len(change.resolved)} resolved; {where}"
        )
    if drift.unknown:
        print("adopt an unknown app with `planbot apps import apps.csv`")


def _print_usage(report: UsageReport) -> int:
    print(
        f"usage: {report.apps} apps fetched, {report.days} days stored ({report.new_days} new), "
        f"{report.warnings} warnings queued; {report.without_key} apps without an IM key"
    )
    for _, line in report.failed:
        print(f"failed: {line}")
    if report.stopped_by is not None:
        print(f"stopped: {report.stopped_by.line()}")
    return 1 if report.failed or report.stopped_by is not None else 0


def _print_reconcile(report: ReconcileReport, settings: Settings) -> None:
    currency = report.currency
    print(f"reconciliation of {report.month} ({currency}): {len(report.lines)} apps")
    if report.lines:
        print(f"{'app':<32}{'planbot':>14}{'billed':>14}{'difference':>14}")
    for line in report.lines:
        label = f"{line.app_id} {line.name}"[:31]
        difference = format_money(line.difference, currency)
        if line.difference > 0:
            difference = "+" + difference
        note = ""
        if line.legacy:
            note = "  legacy billing: not computed by planbot"
        elif line.differs:
            note = "  differs"
        print(
            f"{label:<32}{format_money(line.ours, currency):>14}"
            f"{format_money(line.billed, currency):>14}{difference:>14}{note}"
        )
    count = len(report.differences)
    if not count:
        print("no difference over a cent")
    elif report.posted:
        print(f"{count} differences over a cent: posted to the audit channel")
    elif settings.audit_channel:
        print(f"{count} differences over a cent: already posted")
    else:
        print(f"{count} differences over a cent (no audit channel to post to)")
