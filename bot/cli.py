"""The `planbot` command: run the bot (HTTP, Socket Mode or the local shell) and admin tasks.

This is the only place that reads the environment (and `.env`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from dotenv import load_dotenv

from bot import metricsdir, provider_cli
from bot.i18n import _, language_of_locale, number, speaking
from bot.names import sweep_line
from bot.observe import configure_logging
from bot.settings import Settings, SettingsError
from core import (
    BACKGROUND_WAITS,
    HASHED_FIELDS,
    Actor,
    PlanError,
    PlanService,
    SqlStore,
    current_revision,
    head_revision,
    make_engine,
    upgrade_schema,
    verify_chain,
)

__all__ = ["main"]

log = logging.getLogger(__name__)

CLI_ACTOR = Actor("cli", "planbot CLI")


def _workers(value: str) -> int:
    """A number of server processes: a positive integer, or `auto` (one per usable CPU)."""
    if value.strip().lower() == "auto":
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return len(usable) if usable else os.cpu_count() or 1
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of workers or auto")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="planbot",
        description="Slack chat-ops for IM app plans. With no command: Socket Mode when "
        "SLACK_APP_TOKEN is set, HTTP mode when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set, "
        "otherwise the local shell.",
    )
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve Slack over HTTP (POST /slack/events)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    serve.add_argument(
        "--workers",
        type=_workers,
        default=os.environ.get("PLANBOT_WORKERS", "1"),
        help="server processes sharing the port, or `auto` for one per CPU (default 1)",
    )
    serve.add_argument(
        "--no-delivery",
        action="store_true",
        help="do not start the delivery worker (run `planbot deliver` apart instead)",
    )
    # one of the processes of `serve --workers N`: bind with SO_REUSEPORT, stop with its parent
    serve.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    deliver = sub.add_parser(
        "deliver", help="deliver the outbox and run the lifecycle sweep (serve starts this)"
    )
    deliver.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    socket = sub.add_parser("socket", help="connect to Slack with Socket Mode")
    for runs_apart in (deliver, socket):
        runs_apart.add_argument(
            "--metrics-port",
            type=int,
            default=os.environ.get("PLANBOT_METRICS_PORT") or None,
            help="serve GET /metrics and GET /healthz on this port (default: PLANBOT_METRICS_PORT, "
            "else none)",
        )
        runs_apart.add_argument("--metrics-host", default="0.0.0.0", help=argparse.SUPPRESS)
    doctor = sub.add_parser(
        "doctor", help="check the setup: settings, database, Slack token, scopes and channels"
    )
    doctor.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="the Slack app manifest whose bot scopes the token must have "
        "(default: ./manifest.yml, else the one shipped beside planbot)",
    )
    shell = sub.add_parser("shell", help="the whole bot in a terminal, no Slack workspace needed")
    shell.add_argument("-c", dest="one_shot", metavar="COMMAND", help="run one command and exit")
    shell.add_argument("--as", dest="user", default=None, help="act as this Slack user id")
    shell.add_argument("--no-color", action="store_true", help="plain text, no ANSI colors")
    shell.add_argument(
        "--lang",
        choices=("ko", "en"),
        default=None,
        help="the language the shell speaks: its person and its channels (default: "
        "PLANBOT_LANGUAGE, else English)",
    )
    sub.add_parser("tick", help="one lifecycle sweep and outbox delivery, then exit")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command")
    db.add_parser("upgrade", help="bring the schema to the newest revision")
    db.add_parser("current", help="show the schema revision")
    apps = sub.add_parser("apps", help="apps").add_subparsers(dest="apps_command")
    imp = apps.add_parser("import", help="import apps from CSV (all rows or none)")
    imp.add_argument("path", help="CSV file, or - for standard input")
    lst = apps.add_parser("list", help="list apps")
    lst.add_argument("filter", nargs="?", default=None)
    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command")
    audit.add_parser("verify", help="check the hash chain")
    export = audit.add_parser("export", help="export every audit record")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file, or - for standard output")
    provider_cli.add_parser(sub)
    return parser


#: options of the shell that, given with no command, mean the shell (`planbot -c "..."`)
_SHELL_OPTIONS = ("-c", "--as", "--no-color", "--lang")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `planbot` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    first = words[0] if words else ""
    if first.split("=")[0] in _SHELL_OPTIONS or first.startswith("-c"):
        words = ["shell", *words]  # `planbot -c "/plan status demo-chat"` runs the shell
    args = _parser().parse_args(words)
    if args.command == "shell" and args.lang:
        # the shell's person and its channels speak it: set before the settings are read
        os.environ["PLANBOT_LANGUAGE"] = args.lang
        os.environ["PLANBOT_CHANNEL_LANGUAGE"] = args.lang
    load_dotenv(Path.cwd() / ".env", override=False)
    _configure_logging()
    with speaking(cli_language(os.environ)):
        if args.command == "doctor":
            from bot.doctor import run_doctor

            return run_doctor(os.environ, manifest=args.manifest)
        try:
            settings = Settings.from_env(os.environ)
            return _dispatch(args, settings)
        except SettingsError as err:
            print(_("planbot: configuration error: {error}").format(error=err), file=sys.stderr)
            return 2
        except PlanError as err:
            print(f"planbot: {err.message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


def cli_language(env: Mapping[str, str]) -> str | None:
    """The language the command line speaks to its person: PLANBOT_LANGUAGE (`ko`, `ko-KR`),
    English when it is unset or names a language planbot does not speak."""
    return language_of_locale(env.get("PLANBOT_LANGUAGE"))


def _configure_logging() -> None:
    """Log lines in the format and at the level the environment asks for (text, INFO)."""
    configure_logging(
        os.environ.get("PLANBOT_LOG_LEVEL", "INFO"),
        os.environ.get("PLANBOT_LOG_FORMAT", "text").strip().lower(),
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command is None:
        if settings.app_token:
            command = "socket"
        elif settings.bot_token and settings.signing_secret:
            command = "serve"
            args.host, args.port = "0.0.0.0", int(os.environ.get("PORT", "3000"))
            args.workers = os.environ.get("PLANBOT_WORKERS", "1")
        else:
            command = "shell"
            args.one_shot, args.user, args.no_color, args.lang = None, None, False, None
    if command == "serve":
        delivery = not getattr(args, "no_delivery", False)
        try:
            workers = _workers(str(getattr(args, "workers", "1")))
        except argparse.ArgumentTypeError as err:
            raise SettingsError(f"PLANBOT_WORKERS: {err}") from None
        if getattr(args, "shared_port", False):
            return _serve_one_of_many(settings, args.host, args.port, args.parent)
        clean_up = metricsdir.prepare(starts_run=True)
        try:
            return _serve(settings, args.host, args.port, workers, delivery)
        finally:
            clean_up()
    if command == "deliver":
        clean_up = metricsdir.prepare(starts_run=False)
        try:
            return _deliver(settings, args.parent, _metrics_port(args, apart=args.parent is None))
        finally:
            clean_up()
    if command == "socket":
        clean_up = metricsdir.prepare(starts_run=False)
        try:
            return _socket(settings, _metrics_port(args, apart=True))
        finally:
            clean_up()
    if command == "shell":
        from bot.shell import run_shell

        return run_shell(
            settings,
            one_shot=args.one_shot,
            user=args.user,
            color=not args.no_color,
            lang=args.lang or cli_language(os.environ),
        )
    if command == "tick":
        return _tick(settings)
    if command == "db":
        return _db(settings, args.db_command)
    if command == "apps":
        return _apps(settings, args)
    if command == "audit":
        return _audit(settings, args)
    if command == "provider":
        return provider_cli.run(settings, args)
    _parser().print_help()
    return 2


def _serve(
    settings: Settings, host: str, port: int, workers: int = 1, delivery: bool = True
) -> int:
    from bot.app import build
    from bot.server import serve, serve_workers
    from bot.worker import DeliveryChild

    settings.require_http()
    child = DeliveryChild() if delivery else None
    if workers > 1:
        upgrade_schema(make_engine(settings.database_url))  # once, before the replicas start
        serve_workers(host=host, port=port, workers=workers, delivery=child)
    else:
        serve(build(settings, verified_upstream=True), host=host, port=port, delivery=child)
    return 0


def _serve_one_of_many(settings: Settings, host: str, port: int, parent: int | None) -> int:
    from bot.app import build
    from bot.server import serve

    settings.require_http()
    planbot = build(settings, verified_upstream=True)
    serve(planbot, host=host, port=port, delivery=None, shared_port=True, parent=parent)
    return 0


def _metrics_port(args: argparse.Namespace, *, apart: bool) -> tuple[str, int] | None:
    """Where to serve /metrics of a process that runs apart (none for the server's own worker,
    whose figures the server's /metrics shows)."""
    port = getattr(args, "metrics_port", None)
    if not apart or port is None:
        return None
    return getattr(args, "metrics_host", "0.0.0.0"), int(port)


def _deliver(
    settings: Settings, parent: int | None, metrics_at: tuple[str, int] | None = None
) -> int:
    from bot.app import build
    from bot.worker import deliver_forever

    planbot = build(
        settings, signing_secret=settings.signing_secret or "unused", waits=BACKGROUND_WAITS
    )
    _serve_metrics(planbot, metrics_at)
    return deliver_forever(planbot, parent=parent)


def _serve_metrics(planbot: Any, at: tuple[str, int] | None) -> None:
    """/metrics and /healthz on a port of their own, if asked for."""
    if at is None:
        return
    from bot.metrics import serve_metrics

    try:
        serve_metrics(planbot, host=at[0], port=at[1])
    except OSError as err:
        planbot.close()
        raise SettingsError(
            _("PLANBOT_METRICS_PORT: cannot listen on {host}:{port}: {error}").format(
                host=at[0], port=at[1], error=err
            )
        ) from None


def asgi_from_env() -> Any:
    """The ASGI app of one worker process of `planbot serve --workers N` (reads the environment)."""
    from bot.app import build
    from bot.server import create_asgi

    load_dotenv(Path.cwd() / ".env", override=False)
    _configure_logging()
    return create_asgi(build(Settings.from_env(os.environ), verified_upstream=True))


def _socket(settings: Settings, metrics_at: tuple[str, int] | None = None) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot import metrics
    from bot.app import build

    settings.require_socket()
    planbot = build(settings, signing_secret="socket-mode")
    metrics.instrument(planbot, role="socket")
    _serve_metrics(planbot, metrics_at)
    planbot.start()
    planbot.only_from_its_workspace()
    try:
        SocketModeHandler(planbot.app, settings.app_token).start()
    finally:
        planbot.close()
    return 0


def _tick(settings: Settings) -> int:
    from bot.app import build

    planbot = build(
        settings, signing_secret=settings.signing_secret or "unused", waits=BACKGROUND_WAITS
    )
    report = planbot.lifecycle.sweep()
    delivered = planbot.dispatcher.deliver_due()
    print(_("sweep: {summary}").format(summary=sweep_line(report)))
    print(
        _("outbox: {delivered} delivered, {retried} to retry, {dead} given up").format(
            delivered=number(delivered.delivered),
            retried=number(delivered.retried),
            dead=number(delivered.dead),
        )
    )
    planbot.close()
    return 1 if report.failed else 0


def _db(settings: Settings, what: str | None) -> int:
    engine = make_engine(settings.database_url, waits=BACKGROUND_WAITS)
    if what == "upgrade":
        print(_("schema at revision {revision}").format(revision=upgrade_schema(engine)))
    else:
        print(
            _("schema at revision {revision} (newest {newest})").format(
                revision=current_revision(engine), newest=head_revision()
            )
        )
    return 0


def _apps(settings: Settings, args: argparse.Namespace) -> int:
    config = settings.core_config()
    engine = make_engine(settings.database_url, waits=BACKGROUND_WAITS)
    upgrade_schema(engine)
    service = PlanService(engine=engine, config=config)
    if args.apps_command == "import":
        return _import(service, args.path)
    with service.store.unit_of_work(write=False) as uow:
        offset, shown = 0, 0
        while True:
            rows, _total = uow.apps.page(
                contains=args.filter, channels=None, offset=offset, limit=1000
            )
            for row in rows:
                print(
                    f"{row.app_id}\t{row.name}\t{row.plan}\t{row.status}\t{row.billing_mode}\t{row.owner_channel or '-'}"
                )
            shown += len(rows)
            offset += 1000
            if not rows:
                break
        print(_("{n} apps").format(n=number(shown)), file=sys.stderr)
    return 0


def _import(service: PlanService, path: str) -> int:
    """`planbot apps import PATH`: the file read as a stream (twice: checked, then written in
    one transaction); a failure of the database said in one line, nothing imported."""
    with contextlib.ExitStack() as stack:
        if path == "-":  # standard input is read once: kept in a temporary file to read twice
            spool = stack.enter_context(tempfile.NamedTemporaryFile("w+", encoding="utf-8"))
            shutil.copyfileobj(sys.stdin, spool)
            spool.flush()
            path = spool.name
        _readable(path)
        try:
            result = service.imports.from_csv(lambda: _lines(path), actor=CLI_ACTOR)
        except PlanError:
            raise
        except UnicodeDecodeError as err:
            raise PlanError(
                _("Can't read {path}: it is not UTF-8 text ({reason})").format(
                    path=path, reason=err.reason
                )
            ) from None
        except OSError as err:
            raise PlanError(
                _("Can't read {path}: {error}").format(path=path, error=err.strerror or err)
            ) from None
        except Exception as err:  # the database's: a full disk, a constraint, a lost server
            log.debug("import failed", exc_info=err)
            raise PlanError(
                _("Nothing was imported: the database refused it: {cause}").format(
                    cause=_cause(err)
                )
            ) from None
    print(_("imported {n} apps").format(n=result.imported))
    return 0


def _lines(path: str) -> TextIO:
    return open(path, encoding="utf-8-sig", newline="")


def _readable(path: str) -> None:
    try:
        with open(path, "rb") as probe:
            probe.read(1)
    except OSError as err:
        raise PlanError(
            _("Can't read {path}: {error}").format(path=path, error=err.strerror or err)
        ) from None


def _cause(err: BaseException) -> str:
    """A database error in one line, without the SQL statement or its parameters."""
    cause = getattr(err, "orig", None) or err
    lines = str(cause).strip().splitlines()
    return (lines[0] if lines else type(cause).__name__)[:200]


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings.database_url, waits=BACKGROUND_WAITS)
    upgrade_schema(engine)
    with SqlStore(engine).unit_of_work(write=False) as uow:
        if args.audit_command == "verify":
            head_seq, head_hash = uow.audit.head()
            report = verify_chain(uow.audit.records(), head_seq=head_seq, head_hash=head_hash)
            if report.ok:
                print(
                    _("audit log intact: {n} records, chain verified").format(
                        n=number(report.records)
                    )
                )
                return 0
            print(
                _("audit log TAMPERED: {problem}").format(problem=report.problem), file=sys.stderr
            )
            return 1
        if args.output == "-":
            _export(uow.audit.records(), sys.stdout, args.format)
        else:
            with open(args.output, "w", newline="", encoding="utf-8") as out:
                _export(uow.audit.records(), out, args.format)
    return 0


#: what a spreadsheet takes for the start of a formula (OWASP's list for CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will show as text: a string starting like a formula gets a `'` first.

    Every string is treated alike, negative amounts written as text included (`-12.50` becomes
    `'-12.50`): a cell that only looks like a number may still be read as a formula
    (`-1+cmd|...`), and telling the two apart is the spreadsheet's parser, not ours. Values that
    are numbers (the sequence number) are written as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _export(records: Iterable[dict[str, Any]], out: TextIO, fmt: str) -> None:
    fields = [*HASHED_FIELDS, "prev_hash", "hash"]
    writer = csv.DictWriter(out, fieldnames=fields) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for record in records:
        record["at"] = record["at"].isoformat()
        if writer:
            writer.writerow(
                {
                    k: csv_cell(json.dumps(v) if isinstance(v, dict) else v)
                    for k, v in record.items()
                    if k in fields
                }
            )
        else:
            out.write(json.dumps({k: record[k] for k in fields}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
