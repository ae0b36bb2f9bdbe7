"""`planbot doctor`: check a setup before the first real click, one line per check.

Each check says what it found and, when it fails, what to do about it:

    ok    settings: HTTP mode, PostgreSQL, audit channel C0AUDIT
    FAIL  audit channel: the bot is not a member of #audit (C0AUDIT); fix: /invite @planbot there

The checks: the settings parse; the database answers and its schema is at the newest revision;
Slack takes the bot token (`auth.test`) and granted every bot scope of `manifest.yml` (Slack
lists them in the `x-oauth-scopes` header); the bot is a member of the audit and approvals
channels (`conversations.info`); how many owner channels it cannot post in; the provider's API
takes its credentials, when they are set (it reads the account's SDKAppIDs), and the IM keys
file reads. Nothing is changed anywhere: no migration is run and no message is posted. The exit
status is 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy.engine import Engine, make_url

from bot.i18n import N_, _, language_of_locale, number, speaking
from bot.settings import Settings, SettingsError
from core import (
    ProviderConfig,
    ProviderError,
    SqlStore,
    TencentCloudAccount,
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    owner_channels,
)

__all__ = [
    "Check",
    "manifest_bot_scopes",
    "provider_check",
    "run_doctor",
]

#: Slack's answers to a token it will not take
REFUSED_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
#: owner channels named in a failing line (the count covers them all)
SHOWN_CHANNELS = 5
#: each check's name as its line shows it (marked here, translated in `Check.line`)
CHECK_LABELS = {
    "settings": N_("settings"),
    "database": N_("database"),
    "slack token": N_("slack token"),
    "slack scopes": N_("slack scopes"),
    "audit channel": N_("audit channel"),
    "approvals channel": N_("approvals channel"),
    "owner channels": N_("owner channels"),
    "provider credentials": N_("provider credentials"),
}
#: every check, in the order they are made
CHECK_NAMES = (
    "settings",
    "database",
    "slack token",
    "slack scopes",
    "audit channel",
    "approvals channel",
    "owner channels",
    "provider credentials",
)


@dataclass(frozen=True)
class Check:
    """One check's verdict: what was found and, when it failed, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False

    def line(self) -> str:
        """The line printed for it (the verdict, `ok`, `FAIL` or `skip`, stays as it is in every
        language, for scripts that read it)."""
        label = CHECK_LABELS.get(self.name)
        name = _(label) if label else self.name
        if self.skipped:
            return f"skip  {name}: {self.detail}"
        if self.ok:
            return f"ok    {name}: {self.detail}"
        return "FAIL  " + _("{name}: {detail}; fix: {fix}").format(
            name=name, detail=self.detail, fix=self.fix
        )


def _ok(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def _skip(name: str, why: str) -> Check:
    return Check(name, False, why, skipped=True)


# --- settings and database ---------------------------------------------------------------------


def settings_check(env: Mapping[str, str]) -> tuple[Check, Settings | None]:
    """The settings parse, and name a way to reach Slack (HTTP or Socket Mode)."""
    name = "settings"
    try:
        settings = Settings.from_env(env)
        settings.core_config()  # the plan catalog is read and checked too
    except SettingsError as err:
        variable = str(err).split(":", 1)[0]
        fix = _("correct {variable} (README, Configuration)").format(variable=variable)
        return _fail(name, str(err), fix), None
    try:
        if settings.app_token:
            settings.require_socket()
            mode = _("Socket Mode")
        else:
            settings.require_http()
            mode = _("HTTP mode")
    except SettingsError as err:
        return (
            _fail(
                name,
                str(err),
                _(
                    "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP mode), or SLACK_APP_TOKEN "
                    "and SLACK_BOT_TOKEN (Socket Mode)"
                ),
            ),
            None,
        )
    backend = make_url(normalize_url(settings.database_url)).get_backend_name()
    database = (
        "PostgreSQL" if backend == "postgresql" else "SQLite" if backend == "sqlite" else backend
    )
    detail = _("{mode}, {database}, audit channel {channel}").format(
        mode=mode, database=database, channel=settings.audit_channel or _("none")
    )
    return _ok(name, detail), settings


def _engine(database_url: str) -> Engine:
    """An engine that gives up on an unreachable server after a few seconds."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": "5"})
    return make_engine(url.render_as_string(hide_password=False))


def database_check(settings: Settings) -> tuple[Check, Engine | None]:
    """The database answers, and its schema is at the revision this planbot ships."""
    name = "database"
    url = make_url(normalize_url(settings.database_url))
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path not in ("", ":memory:") and not Path(path).is_file():
            return _fail(
                name,
                _("no SQLite database at {path}").format(path=path),
                _("run `planbot db upgrade` to create it, or set DATABASE_URL"),
            ), None
    engine = _engine(settings.database_url)
    where = url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except Exception as err:
        engine.dispose()
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        return _fail(
            name,
            _("cannot reach {where}: {cause}").format(where=where, cause=cause),
            _("check DATABASE_URL, and that the server is up and accepts connections from here"),
        ), None
    head = head_revision()
    if current == head:
        detail = _("{where} answers; schema at the newest revision ({head})")
        return _ok(name, detail.format(where=where, head=head)), engine
    engine.dispose()  # the checks that read it are skipped
    if current is None:
        detail = _("{where} answers but holds no planbot schema").format(where=where)
    else:
        detail = _("{where} is at schema revision {current}, this planbot's newest is {head}")
        detail = detail.format(where=where, current=current, head=head)
    return _fail(
        name,
        detail,
        _(
            "run `planbot db upgrade` (if the database is newer than this planbot, deploy the "
            "newer planbot instead)"
        ),
    ), None


# --- Slack -------------------------------------------------------------------------------------


def manifest_bot_scopes(path: Path) -> list[str]:
    """The bot scopes `manifest.yml` asks for (ValueError if it names none)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        scopes = data["oauth_config"]["scopes"]["bot"]
    except (KeyError, TypeError):
        raise ValueError(f"{path} has no oauth_config.scopes.bot list") from None
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"{path}: oauth_config.scopes.bot is not a list of scopes")
    return scopes


def default_manifest() -> Path:
    """`manifest.yml` in the working directory, else the one beside planbot's sources."""
    here = Path.cwd() / "manifest.yml"
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / "manifest.yml"


def _slack_error(err: SlackApiError) -> str:
    response = err.response
    return str(response.get("error", "")) if response is not None else ""


def token_check(client: WebClient) -> tuple[Check, Any]:
    """Slack takes the bot token (`auth.test`), and it is a bot's."""
    name = "slack token"
    try:
        response = client.auth_test()
    except SlackApiError as err:
        code = _slack_error(err)
        if code in REFUSED_TOKEN:
            return _fail(
                name,
                _("Slack refused the token ({code})").format(code=code),
                _(
                    "put the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions) in "
                    "SLACK_BOT_TOKEN; if it was revoked, reinstall the app to the workspace"
                ),
            ), None
        return _fail(
            name,
            _("auth.test answered {code}").format(code=code or err.response.status_code),
            _("try again later; if it persists, check Slack's status page"),
        ), None
    except (SlackRequestError, OSError) as err:
        return _fail(
            name,
            _("Slack unreachable at {url}: {error}").format(url=client.base_url, error=err),
            _("check this host's network access to Slack (and SLACK_API_URL, if set)"),
        ), None
    if not response.get("bot_id"):
        return _fail(
            name,
            _("the token is not a bot's (user {user})").format(user=response.get("user_id")),
            _("use the Bot User OAuth Token (xoxb-…), not a user token"),
        ), None
    return _ok(
        name,
        _("Slack takes it: bot @{bot} ({bot_id}) in {team} ({team_id})").format(
            bot=response.get("user"),
            bot_id=response.get("user_id"),
            team=response.get("team"),
            team_id=response.get("team_id"),
        ),
    ), response


def scopes_check(response: Any, manifest: Path) -> Check:
    """The token was granted every bot scope `manifest.yml` asks for."""
    name = "slack scopes"
    try:
        wanted = manifest_bot_scopes(manifest)
    except (OSError, ValueError, yaml.YAMLError) as err:
        return _fail(
            name,
            _("cannot read the manifest: {error}").format(error=err),
            _("pass --manifest PATH"),
        )
    headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
    header = headers.get("x-oauth-scopes")
    if header is None:
        return _fail(
            name,
            _("Slack did not say which scopes the token has (no x-oauth-scopes header)"),
            _("check SLACK_API_URL points at Slack's Web API"),
        )
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = [s for s in wanted if s not in granted]
    if missing:
        return _fail(
            name,
            _("missing {missing} (granted: {granted})").format(
                missing=", ".join(missing), granted=", ".join(sorted(granted)) or _("none")
            ),
            _(
                "add them under OAuth & Permissions → Bot Token Scopes (or update the app from "
                "manifest.yml), then reinstall the app to the workspace"
            ),
        )
    return _ok(
        name,
        _("all {n} of manifest.yml granted ({scopes})").format(
            n=number(len(wanted)), scopes=", ".join(wanted)
        ),
    )


def _channel_state(client: WebClient, channel: str) -> tuple[str, str]:
    """(state, name): state is member, not_member, archived, not_found, no_scope, or an error."""
    try:
        info = client.conversations_info(channel=channel)
    except SlackApiError as err:
        code = _slack_error(err)
        if code == "channel_not_found":
            return "not_found", channel
        if code == "missing_scope":
            return "no_scope", channel
        return code or f"status {err.response.status_code}", channel
    except (SlackRequestError, OSError) as err:
        return f"unreachable ({err})", channel
    found = info.get("channel") or {}
    name = str(found.get("name") or channel)
    if found.get("is_archived"):
        return "archived", name
    return ("member" if found.get("is_member") else "not_member"), name


def channel_check(
    client: WebClient, *, name: str, channel: str | None, variable: str, bot: str, unset: Check
) -> Check:
    """The bot is a member of the channel `variable` names (`unset` when it names none)."""
    if channel is None:
        return unset
    state, label = _channel_state(client, channel)
    where = f"#{label} ({channel})" if label != channel else channel
    if state == "member":
        return _ok(name, _("the bot is a member of {where}").format(where=where))
    if state == "not_member":
        return _fail(
            name,
            _("the bot is not a member of {where}").format(where=where),
            _("invite it: /invite @{bot} in {where}").format(bot=bot, where=where),
        )
    if state == "archived":
        return _fail(
            name,
            _("{where} is archived").format(where=where),
            _("point {variable} at a channel in use").format(variable=variable),
        )
    if state == "not_found":
        return _fail(
            name,
            _("no channel {channel} that the bot can see").format(channel=channel),
            _(
                "check {variable}; a private channel must invite the bot first (/invite @{bot})"
            ).format(variable=variable, bot=bot),
        )
    if state == "no_scope":
        return _no_scope(name)
    return _fail(
        name,
        _("conversations.info answered {state}").format(state=state),
        _("try again later"),
    )


def _no_scope(name: str) -> Check:
    return _fail(
        name,
        _("the token may not read channels (missing_scope)"),
        _("grant channels:read and groups:read (see slack scopes) and reinstall the app"),
    )


def owner_channels_check(client: WebClient, engine: Engine, *, bot: str) -> Check:
    """How many channels that own apps the bot cannot post in."""
    name = "owner channels"
    try:
        channels = owner_channels(SqlStore(engine))
    except Exception as err:
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        return _fail(
            name,
            _("cannot read the apps: {cause}").format(cause=cause),
            _("see the database check"),
        )
    if not channels:
        return _ok(name, _("no app has an owner channel yet"))
    problems: list[str] = []
    for channel in channels:
        state, label = _channel_state(client, channel)
        if state == "no_scope":
            return _no_scope(name)
        if state != "member":
            why = state.replace("_", " ")
            problems.append(
                f"#{label} ({channel}): {why}" if label != channel else f"{channel}: {why}"
            )
    if not problems:
        return _ok(name, _("the bot can post in all {n}").format(n=number(len(channels))))
    shown = "; ".join(problems[:SHOWN_CHANNELS]) + ("; …" if len(problems) > SHOWN_CHANNELS else "")
    return _fail(
        name,
        _("the bot cannot post in {n} of {total}: {channels}").format(
            n=number(len(problems)), total=number(len(channels)), channels=shown
        ),
        _("invite it to each (/invite @{bot}), or give those apps another owner channel").format(
            bot=bot
        ),
    )


# --- the provider ------------------------------------------------------------------------------


def provider_check(
    settings: Settings, account_for: Callable[[ProviderConfig], Any] | None = None
) -> Check:
    """The provider's API takes the credentials, when they are set (one read: the account's
    SDKAppIDs), and the IM keys file reads."""
    name = "provider credentials"
    try:
        connector = settings.provider_config()
    except SettingsError as err:
        return _fail(
            name,
            str(err),
            _("correct the file PLANBOT_IM_KEYS names (README, the provider connector)"),
        )
    if not connector.enabled:
        return _ok(name, _("not set: the provider connector is off"))
    account_for = account_for or (lambda config: TencentCloudAccount(config, attempts=1))
    try:
        ids = account_for(connector).app_ids()
    except ProviderError as err:
        if err.kind == "auth":
            return _fail(
                name,
                _("the provider refused them ({code})").format(code=err.code),
                _(
                    "check TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, and that the key's "
                    "policy allows cim:DescribeSdkAppid and billing:DescribeBillResourceSummary "
                    "(README, the provider connector)"
                ),
            )
        if err.retryable:
            return _fail(
                name,
                _("the provider's API did not answer ({code})").format(code=err.code),
                _(
                    "try again later; check this host's network access to the provider (and "
                    "PLANBOT_TENCENT_ENDPOINT, if set)"
                ),
            )
        return _fail(
            name,
            _("the provider's API answered {code}: {error}").format(
                code=err.code, error=err.message
            ),
            _(
                "check TENCENTCLOUD_REGION and PLANBOT_TENCENT_ENDPOINT (README, the provider "
                "connector)"
            ),
        )
    keyed = len(set(connector.im_keys) & ids)
    return _ok(
        name,
        _(
            "the provider's API takes them: {n} SDKAppIDs in the account, IM keys for "
            "{keyed} of them"
        ).format(n=number(len(ids)), keyed=number(keyed)),
    )


# --- the whole run -----------------------------------------------------------------------------


def _checks(
    env: Mapping[str, str], manifest: Path, client_for: Callable[[Settings], WebClient]
) -> Iterator[Check]:
    check, settings = settings_check(env)
    yield check
    if settings is None:
        for name in CHECK_NAMES[1:]:
            yield _skip(name, _("needs the settings"))
        return
    check, engine = database_check(settings)
    yield check
    try:
        yield from _slack_checks(settings, engine, manifest, client_for(settings))
    finally:
        if engine is not None:
            engine.dispose()
    yield provider_check(settings)


def _slack_checks(
    settings: Settings, engine: Engine | None, manifest: Path, client: WebClient
) -> Iterator[Check]:
    check, response = token_check(client)
    yield check
    if response is None:
        for name in ("slack scopes", "audit channel", "approvals channel", "owner channels"):
            yield _skip(name, _("needs a token Slack takes"))
        return
    yield scopes_check(response, manifest)
    bot = str(response.get("user") or "planbot")
    yield channel_check(
        client,
        name="audit channel",
        channel=settings.audit_channel,
        variable="PLANBOT_AUDIT_CHANNEL",
        bot=bot,
        unset=_fail(
            "audit channel",
            _(
                "PLANBOT_AUDIT_CHANNEL is not set: changes are announced only in the owners' "
                "channels"
            ),
            _("set it to the id of the channel for audit messages (C…), and invite the bot there"),
        ),
    )
    yield channel_check(
        client,
        name="approvals channel",
        channel=settings.approvals_channel,
        variable="PLANBOT_APPROVALS_CHANNEL",
        bot=bot,
        unset=_ok("approvals channel", _("not set: approval cards go to the owner channel")),
    )
    if engine is None:
        yield _skip("owner channels", _("needs the database, migrated"))
    else:
        yield owner_channels_check(client, engine, bot=bot)


def _client(settings: Settings) -> WebClient:
    # Rate limits are waited out (a workspace with many owner channels takes a while);
    # anything else is reported as it is.
    return WebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        timeout=10,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)],
    )


def run_doctor(
    env: Mapping[str, str],
    *,
    manifest: Path | None = None,
    out: TextIO | None = None,
    client_for: Callable[[Settings], WebClient] = _client,
) -> int:
    """Run every check, printing a line for each as it is done; 0 when all passed, else 1."""
    out = out or sys.stdout
    with speaking(language_of_locale(env.get("PLANBOT_LANGUAGE"))):
        failed = skipped = total = 0
        for check in _checks(env, manifest or default_manifest(), client_for):
            total += 1
            skipped += check.skipped
            failed += not check.ok and not check.skipped
            print(check.line(), file=out, flush=True)
        counts = {"failed": number(failed), "total": number(total), "skipped": number(skipped)}
        if skipped:
            print(
                _("{failed} of {total} checks failed, {skipped} skipped").format(**counts), file=out
            )
            return 1
        if failed:
            print(_("{failed} of {total} checks failed").format(**counts), file=out)
            return 1
        print(_("all {total} checks passed").format(**counts), file=out)
        return 0
