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
        """The line printed for it."""
        if self.skipped:
            return f"skip  {self.name}: {self.detail}"
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}; fix: {self.fix}"


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
        return _fail(name, str(err), f"correct {variable} (README, Configuration)"), None
    try:
        if settings.app_token:
            settings.require_socket()
            mode = "Socket Mode"
        else:
            settings.require_http()
            mode = "HTTP mode"
    except SettingsError as err:
        return (
            _fail(
                name,
                str(err),
                "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP mode), or SLACK_APP_TOKEN "
                "and SLACK_BOT_TOKEN (Socket Mode)",
            ),
            None,
        )
    backend = make_url(normalize_url(settings.database_url)).get_backend_name()
    database = (
        "PostgreSQL" if backend == "postgresql" else "SQLite" if backend == "sqlite" else backend
    )
    audit = settings.audit_channel or "none"
    return _ok(name, f"{mode}, {database}, audit channel {audit}"), settings


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
                f"no SQLite database at {path}",
                "run `planbot db upgrade` to create it, or set DATABASE_URL",
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
            f"cannot reach {where}: {cause}",
            "check DATABASE_URL, and that the server is up and accepts connections from here",
        ), None
    head = head_revision()
    if current == head:
        return _ok(name, f"{where} answers; schema at the newest revision ({head})"), engine
    engine.dispose()  # the checks that read it are skipped
    if current is None:
        detail = f"{where} answers but holds no planbot schema"
    else:
        detail = f"{where} is at schema revision {current}, this planbot's newest is {head}"
    return _fail(
        name,
        detail,
        "run `planbot db upgrade` (if the database is newer than this planbot, deploy the "
        "newer planbot instead)",
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
                f"Slack refused the token ({code})",
                "put the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions) in "
                "SLACK_BOT_TOKEN; if it was revoked, reinstall the app to the workspace",
            ), None
        return _fail(
            name,
            f"auth.test answered {code or err.response.status_code}",
            "try again later; if it persists, check Slack's status page",
        ), None
    except (SlackRequestError, OSError) as err:
        return _fail(
            name,
            f"Slack unreachable at {client.base_url}: {err}",
            "check this host's network access to Slack (and SLACK_API_URL, if set)",
        ), None
    if not response.get("bot_id"):
        return _fail(
            name,
            f"the token is not a bot's (user {response.get('user_id')})",
            "use the Bot User OAuth Token (xoxb-…), not a user token",
        ), None
    return _ok(
        name,
        f"Slack takes it: bot @{response.get('user')} ({response.get('user_id')}) in "
        f"{response.get('team')} ({response.get('team_id')})",
    ), response


def scopes_check(response: Any, manifest: Path) -> Check:
    """The token was granted every bot scope `manifest.yml` asks for."""
    name = "slack scopes"
    try:
        wanted = manifest_bot_scopes(manifest)
    except (OSError, ValueError, yaml.YAMLError) as err:
        return _fail(name, f"cannot read the manifest: {err}", "pass --manifest PATH")
    headers = {str(k).lower(): str(v) for k, v in (response.headers or {}).items()}
    header = headers.get("x-oauth-scopes")
    if header is None:
        return _fail(
            name,
            "Slack did not say which scopes the token has (no x-oauth-scopes header)",
            "check SLACK_API_URL points at Slack's Web API",
        )
    granted = {s.strip() for s in header.split(",") if s.strip()}
    missing = [s for s in wanted if s not in granted]
    if missing:
        return _fail(
            name,
            f"missing {', '.join(missing)} (granted: {', '.join(sorted(granted)) or 'none'})",
            "add them under OAuth & Permissions → Bot Token Scopes (or update the app from "
            "manifest.yml), then reinstall the app to the workspace",
        )
    return _ok(name, f"all {len(wanted)} of manifest.yml granted ({', '.join(wanted)})")


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
        return _ok(name, f"the bot is a member of {where}")
    if state == "not_member":
        return _fail(
            name,
            f"the bot is not a member of {where}",
            f"invite it: /invite @{bot} in {where}",
        )
    if state == "archived":
        return _fail(name, f"{where} is archived", f"point {variable} at a channel in use")
    if state == "not_found":
        return _fail(
            name,
            f"no channel {channel} that the bot can see",
            f"check {variable}; a private channel must invite the bot first (/invite @{bot})",
        )
    if state == "no_scope":
        return _fail(
            name,
            "the token may not read channels (missing_scope)",
            "grant channels:read and groups:read (see slack scopes) and reinstall the app",
        )
    return _fail(name, f"conversations.info answered {state}", "try again later")


def owner_channels_check(client: WebClient, engine: Engine, *, bot: str) -> Check:
    """How many channels that own apps the bot cannot post in."""
    name = "owner channels"
    try:
        channels = owner_channels(SqlStore(engine))
    except Exception as err:
        cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        return _fail(name, f"cannot read the apps: {cause}", "see the database check")
    if not channels:
        return _ok(name, "no app has an owner channel yet")
    problems: list[str] = []
    for channel in channels:
        state, label = _channel_state(client, channel)
        if state == "no_scope":
            return _fail(
                name,
                "the token may not read channels (missing_scope)",
                "grant channels:read and groups:read (see slack scopes) and reinstall the app",
            )
        if state != "member":
            why = state.replace("_", " ")
            problems.append(
                f"#{label} ({channel}): {why}" if label != channel else f"{channel}: {why}"
            )
    if not problems:
        return _ok(name, f"the bot can post in all {len(channels)}")
    shown = "; ".join(problems[:SHOWN_CHANNELS]) + ("; …" if len(problems) > SHOWN_CHANNELS else "")
    return _fail(
        name,
        f"the bot cannot post in {len(problems)} of {len(channels)}: {shown}",
        f"invite it to each (/invite @{bot}), or give those apps another owner channel",
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
            "correct the file PLANBOT_IM_KEYS names (README, the provider connector)",
        )
    if not connector.enabled:
        return _ok(name, "not set: the provider connector is off")
    account_for = account_for or (lambda config: TencentCloudAccount(config, attempts=1))
    try:
        ids = account_for(connector).app_ids()
    except ProviderError as err:
        if err.kind == "auth":
            return _fail(
                name,
                f"the provider refused them ({err.code})",
                "check TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, and that the key's "
                "policy allows cim:DescribeSdkAppid and billing:DescribeBillResourceSummary "
                "(README, the provider connector)",
            )
        if err.retryable:
            return _fail(
                name,
                f"the provider's API did not answer ({err.code})",
                "try again later; check this host's network access to the provider (and "
                "PLANBOT_TENCENT_ENDPOINT, if set)",
            )
        return _fail(
            name,
            f"the provider's API answered {err.code}: {err.message}",
            "check TENCENTCLOUD_REGION and PLANBOT_TENCENT_ENDPOINT (README, the provider "
            "connector)",
        )
    keyed = len(set(connector.im_keys) & ids)
    return _ok(
        name,
        f"the provider's API takes them: {len(ids)} SDKAppIDs in the account, IM keys for "
        f"{keyed} of them",
    )


# --- the whole run -----------------------------------------------------------------------------


def _checks(
    env: Mapping[str, str], manifest: Path, client_for: Callable[[Settings], WebClient]
) -> Iterator[Check]:
    check, settings = settings_check(env)
    yield check
    if settings is None:
        for name in CHECK_NAMES[1:]:
            yield _skip(name, "needs the settings")
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
            yield _skip(name, "needs a token Slack takes")
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
            "PLANBOT_AUDIT_CHANNEL is not set: changes are announced only in the owners' channels",
            "set it to the id of the channel for audit messages (C…), and invite the bot there",
        ),
    )
    yield channel_check(
        client,
        name="approvals channel",
        channel=settings.approvals_channel,
        variable="PLANBOT_APPROVALS_CHANNEL",
        bot=bot,
        unset=_ok("approvals channel", "not set: approval cards go to the owner channel"),
    )
    if engine is None:
        yield _skip("owner channels", "needs the database, migrated")
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
    failed = skipped = total = 0
    for check in _checks(env, manifest or default_manifest(), client_for):
        total += 1
        skipped += check.skipped
        failed += not check.ok and not check.skipped
        print(check.line(), file=out, flush=True)
    if failed or skipped:
        also = f", {skipped} skipped" if skipped else ""
        print(f"{failed} of {total} checks failed{also}", file=out)
        return 1
    print(f"all {total} checks passed", file=out)
    return 0
