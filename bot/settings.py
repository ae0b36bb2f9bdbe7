"""Settings, read once from the environment (or a mapping in tests) into a frozen object."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.i18n import LANGUAGES, _, language_of_locale
from core import (
    AccessPolicy,
    ApprovalRule,
    CoreConfig,
    Operation,
    ProviderConfig,
    Role,
    load_catalog,
    load_im_keys,
    split_endpoint,
)

__all__ = ["Settings", "SettingsError"]

_ID = re.compile(r"^[A-Z0-9][A-Z0-9_]{1,39}$")


class SettingsError(Exception):
    """A missing or malformed setting; the message names it in one line, in the language
    spoken when it was read (the command line speaks PLANBOT_LANGUAGE's)."""


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = env.get(name, "")
    ids = frozenset(part.strip() for part in raw.split(",") if part.strip())
    bad = sorted(i for i in ids if not _ID.match(i))
    if bad:
        raise SettingsError(
            _("{name}: {ids} is not a Slack id (like U0123ABCD)").format(
                name=name, ids=", ".join(bad)
            )
        )
    return ids


def _channel(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip() or None
    if value is not None and not _ID.match(value):
        raise SettingsError(
            _("{name}: {value} is not a channel id (like C0123ABCD)").format(
                name=name, value=repr(value)
            )
        )
    return value


def _group(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip() or None
    if value is not None and not (_ID.match(value) and value.startswith("S")):
        raise SettingsError(
            _("{name}: {value} is not a user group id (like S0123ABCD)").format(
                name=name, value=repr(value)
            )
        )
    return value


def _megabytes(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise SettingsError(f"{name}: {raw!r} is not a whole number of MiB")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            _("{name}: {value} is not a number of seconds").format(name=name, value=repr(raw))
        ) from None
    if value <= 0:
        raise SettingsError(_("{name}: must be positive, got {value}").format(name=name, value=raw))
    return value


_HOST = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.\-]*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")


def _hosts(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """A comma-separated list of `host` or `host:port`."""
    raw = env.get(name, "").strip() or default
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    bad = [h for h in hosts if not _HOST.match(h)]
    if bad or not hosts:
        raise SettingsError(
            _("{name}: {value} is not a host or host:port").format(
                name=name, value=", ".join(bad) or repr(raw)
            )
        )
    return hosts


def _app_id(env: Mapping[str, str]) -> str | None:
    value = env.get("PLANBOT_APP_ID", "").strip() or None
    if value is not None and not (_ID.match(value) and value.startswith("A")):
        raise SettingsError(
            _("{name}: {value} is not an app id (like A0123ABCD)").format(
                name="PLANBOT_APP_ID", value=repr(value)
            )
        )
    return value


def _language(env: Mapping[str, str], name: str, default: str) -> str:
    """A language planbot speaks (`ko`, also written as a locale: `ko-KR`)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    found = language_of_locale(raw)
    if found is None:
        raise SettingsError(
            _("{name}: {value} is not one of {languages}").format(
                name=name, value=repr(raw), languages=", ".join(LANGUAGES)
            )
        )
    return found


def _approvals(env: Mapping[str, str]) -> dict[str, ApprovalRule]:
    """PLANBOT_APPROVALS="disable=peer,migrate=peer:2" (operation=self|peer[:N])."""
    rules: dict[str, ApprovalRule] = {}
    raw = env.get("PLANBOT_APPROVALS", "")
    for part in filter(None, (p.strip() for p in raw.split(","))):
        op, _eq, rule = part.partition("=")
        mode, _colon, count = rule.partition(":")
        if op not in {o.value for o in Operation if o.requestable}:
            raise SettingsError(
                _("{name}: unknown operation {value}").format(
                    name="PLANBOT_APPROVALS", value=repr(op)
                )
            )
        if mode not in ("self", "peer") or (count and not (count.isascii() and count.isdigit())):
            raise SettingsError(
                _("{name}: {value} is not op=self or op=peer[:N]").format(
                    name="PLANBOT_APPROVALS", value=repr(part)
                )
            )
        rules[op] = ApprovalRule(mode, int(count or 1))
    return rules


@dataclass(frozen=True)
class Settings:
    """Everything planbot reads from its environment."""

    bot_token: str | None = None
    signing_secret: str | None = None
    app_token: str | None = None
    api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///planbot.sqlite3"
    audit_channel: str | None = None
    admins: frozenset[str] = frozenset()
    catalog_path: str | None = None
    billing_tz: str = "Asia/Shanghai"
    default_role: str = "viewer"
    approvals: Mapping[str, ApprovalRule] = field(default_factory=dict)
    approvals_channel: str | None = None
    approver_group: str | None = None
    allowed_channels: frozenset[str] = frozenset()
    request_ttl: float = 900.0
    approval_ttl: float = 86400.0
    sweep_interval: float = 60.0
    outbox_lease: float = 60.0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    tencent_secret_id: str | None = None
    tencent_secret_key: str | None = field(default=None, repr=False)
    tencent_region: str = ""
    tencent_endpoint: str | None = None
    im_keys_path: str | None = None
    im_api_host: str = "console.tim.qq.com"
    metrics_token: str | None = field(default=None, repr=False)
    log_format: str = "text"
    #: hosts (`host` or `host:port`) a response_url may point to
    response_url_hosts: tuple[str, ...] = ("hooks.slack.com",)
    #: the workspaces (team or enterprise ids) requests may come from (empty: auth.test's)
    allowed_teams: frozenset[str] = frozenset()
    #: the app requests must be for (`api_app_id`), when set
    app_id: str | None = None
    #: /healthz fails when the SQLite database's disk has less free than this (MiB)
    health_min_free_mb: int = 16
    #: the language people read until their own is known (and when planbot speaks theirs not)
    language: str = "en"
    #: the language of channel messages (audit, reminders, statements, approval cards)
    channel_language: str = "en"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and check every setting; raises SettingsError naming the bad one."""
        tz = env.get("PLANBOT_BILLING_TZ", "").strip() or "Asia/Shanghai"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                _("{name}: {value} is not a time zone name").format(
                    name="PLANBOT_BILLING_TZ", value=repr(tz)
                )
            ) from None
        catalog = env.get("PLANBOT_CATALOG", "").strip() or None
        if catalog is not None and not Path(catalog).is_file():
            raise SettingsError(
                _("{name}: no file at {path}").format(name="PLANBOT_CATALOG", path=catalog)
            )
        default_role = env.get("PLANBOT_DEFAULT_ROLE", "").strip().lower() or "viewer"
        if default_role not in ("nobody", "viewer", "operator", "admin"):
            raise SettingsError(
                _("{name}: {value} is not nobody, viewer, operator or admin").format(
                    name="PLANBOT_DEFAULT_ROLE", value=repr(default_role)
                )
            )
        api_url = env.get("SLACK_API_URL", "").strip() or "https://slack.com/api/"
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(
                _("{name}: {value} is not an http(s) URL").format(
                    name="SLACK_API_URL", value=repr(api_url)
                )
            )
        webhook_url = env.get("PLANBOT_WEBHOOK_URL", "").strip() or None
        webhook_secret = env.get("PLANBOT_WEBHOOK_SECRET", "").strip() or None
        if webhook_url and not webhook_secret:
            raise SettingsError(
                _("{name}: required when {other} is set").format(
                    name="PLANBOT_WEBHOOK_SECRET", other="PLANBOT_WEBHOOK_URL"
                )
            )
        provider = _provider(env)
        log_format = env.get("PLANBOT_LOG_FORMAT", "").strip().lower() or "text"
        if log_format not in ("text", "json"):
            raise SettingsError(
                _("{name}: {value} is not text or json").format(
                    name="PLANBOT_LOG_FORMAT", value=repr(log_format)
                )
            )
        language = _language(env, "PLANBOT_LANGUAGE", "en")
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN", "").strip() or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip() or None,
            app_token=env.get("SLACK_APP_TOKEN", "").strip() or None,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            database_url=env.get("DATABASE_URL", "").strip() or "sqlite:///planbot.sqlite3",
            audit_channel=_channel(env, "PLANBOT_AUDIT_CHANNEL"),
            admins=_ids(env, "PLANBOT_ADMINS"),
            catalog_path=catalog,
            billing_tz=tz,
            default_role=default_role,
            approvals=_approvals(env),
            approvals_channel=_channel(env, "PLANBOT_APPROVALS_CHANNEL"),
            approver_group=_group(env, "PLANBOT_APPROVER_GROUP"),
            allowed_channels=_ids(env, "PLANBOT_ALLOWED_CHANNELS"),
            request_ttl=_seconds(env, "PLANBOT_REQUEST_TTL", 900.0),
            approval_ttl=_seconds(env, "PLANBOT_APPROVAL_TTL", 86400.0),
            sweep_interval=_seconds(env, "PLANBOT_SWEEP_INTERVAL", 60.0),
            outbox_lease=_seconds(env, "PLANBOT_OUTBOX_LEASE", 60.0),
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            **provider,
            metrics_token=env.get("PLANBOT_METRICS_TOKEN", "").strip() or None,
            log_format=log_format,
            response_url_hosts=_hosts(env, "PLANBOT_RESPONSE_URL_HOSTS", "hooks.slack.com"),
            allowed_teams=_ids(env, "PLANBOT_ALLOWED_TEAMS"),
            app_id=_app_id(env),
            health_min_free_mb=_megabytes(env, "PLANBOT_HEALTH_MIN_FREE_MB", 16),
            language=language,
            channel_language=_language(env, "PLANBOT_CHANNEL_LANGUAGE", language),
        )

    def require_http(self) -> None:
        """HTTP mode needs the bot token and the signing secret."""
        for name, value in (
            ("SLACK_BOT_TOKEN", self.bot_token),
            ("SLACK_SIGNING_SECRET", self.signing_secret),
        ):
            if not value:
                raise SettingsError(
                    _("{name}: required to serve Slack over HTTP").format(name=name)
                )

    def require_socket(self) -> None:
        """Socket Mode needs the app-level token and the bot token."""
        if not self.app_token or not self.app_token.startswith("xapp-"):
            raise SettingsError(
                _("{name}: required for Socket Mode (an xapp- token)").format(
                    name="SLACK_APP_TOKEN"
                )
            )
        if not self.bot_token:
            raise SettingsError(
                _("{name}: required for Socket Mode").format(name="SLACK_BOT_TOKEN")
            )

    def core_config(self) -> CoreConfig:
        """The core's configuration."""
        try:
            catalog = load_catalog(self.catalog_path)
        except (OSError, ValueError) as err:
            raise SettingsError(f"PLANBOT_CATALOG: {err}") from None
        return CoreConfig(
            catalog=catalog,
            billing_tz=ZoneInfo(self.billing_tz),
            request_ttl=timedelta(seconds=self.request_ttl),
            approval_ttl=timedelta(seconds=self.approval_ttl),
            audit_channel=self.audit_channel,
            provisioning_recorded_only=not self.webhook_url,
            access=AccessPolicy(
                admins=self.admins,
                default_role=Role.parse(self.default_role),
                approvals=dict(self.approvals),
                allowed_channels=self.allowed_channels,
                approvals_channel=self.approvals_channel,
                approver_group=self.approver_group,
            ),
        )

    def provider_config(self) -> ProviderConfig:
        """The provider connector's configuration (off without a secret id and key)."""
        keys = {}
        if self.im_keys_path:
            try:
                keys = load_im_keys(self.im_keys_path)
            except ValueError as err:
                raise SettingsError(f"PLANBOT_IM_KEYS: {err}") from None
        return ProviderConfig(
            secret_id=self.tencent_secret_id,
            secret_key=self.tencent_secret_key,
            region=self.tencent_region,
            endpoint=self.tencent_endpoint,
            im_host=self.im_api_host,
            im_keys=keys,
        )


def _provider(env: Mapping[str, str]) -> dict[str, Any]:
    """The provider connector's settings, in the SDK's own names (off without id and key)."""
    secret_id = env.get("TENCENTCLOUD_SECRET_ID", "").strip() or None
    secret_key = env.get("TENCENTCLOUD_SECRET_KEY", "").strip() or None
    if secret_id and not secret_key:
        raise SettingsError(
            _("{name}: required when {other} is set").format(
                name="TENCENTCLOUD_SECRET_KEY", other="TENCENTCLOUD_SECRET_ID"
            )
        )
    if secret_key and not secret_id:
        raise SettingsError(
            _("{name}: required when {other} is set").format(
                name="TENCENTCLOUD_SECRET_ID", other="TENCENTCLOUD_SECRET_KEY"
            )
        )
    endpoint = env.get("PLANBOT_TENCENT_ENDPOINT", "").strip() or None
    if endpoint:
        try:
            split_endpoint(endpoint)
        except ValueError as err:
            raise SettingsError(f"PLANBOT_TENCENT_ENDPOINT: {err}") from None
    keys = env.get("PLANBOT_IM_KEYS", "").strip() or None
    if keys is not None and not Path(keys).is_file():
        raise SettingsError(
            _("{name}: no file at {path}").format(name="PLANBOT_IM_KEYS", path=keys)
        )
    host = env.get("PLANBOT_IM_API_HOST", "").strip().rstrip("/") or "console.tim.qq.com"
    if "://" in host and not host.startswith(("http://", "https://")):
        raise SettingsError(
            _("{name}: {value} is not a host or an http(s) URL").format(
                name="PLANBOT_IM_API_HOST", value=repr(host)
            )
        )
    if "://" not in host and not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?", host):
        raise SettingsError(
            _("{name}: {value} is not a host name").format(
                name="PLANBOT_IM_API_HOST", value=repr(host)
            )
        )
    return {
        "tencent_secret_id": secret_id,
        "tencent_secret_key": secret_key,
        "tencent_region": env.get("TENCENTCLOUD_REGION", "").strip(),
        "tencent_endpoint": endpoint,
        "im_keys_path": keys,
        "im_api_host": host,
    }
