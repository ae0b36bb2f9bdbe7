"""Building the bot: settings in, a ready Bolt app, core service and outbox dispatcher out."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot import blocks, observe
from bot.channels import ChannelDirectory
from bot.delivery import (
    DirectResponder,
    GroupDirectory,
    OutboxResponder,
    Responder,
    SlackNotifier,
    SlackReplier,
    make_client,
)
from bot.edge import Installation, ResponseUrls
from bot.home import HomePublisher
from bot.i18n import _, speaking
from bot.listeners import Bot, register
from bot.people import Languages, user_of
from bot.settings import Settings
from bot.surfaces import SlackSurfaces, Surfaces
from bot.words import Words
from core import (
    REQUEST_WAITS,
    Checkpointer,
    Lifecycle,
    Notifier,
    OutboxDispatcher,
    PlanService,
    ProviderJobs,
    ProviderView,
    Provisioner,
    RecordingProvisioner,
    Replier,
    SqlStore,
    Waits,
    WebhookProvisioner,
    make_engine,
    upgrade_schema,
)

__all__ = ["GROUP_ROUND_BUDGET", "Planbot", "SpeakingApp", "build"]

#: seconds a user group lookup waits for Slack (in the background; lookups run in parallel)
GROUP_ROUND_BUDGET = 10

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Planbot:
    """The assembled bot: Bolt app, core service, outbox dispatcher and lifecycle sweep."""

    settings: Settings
    app: App
    bot: Bot
    service: PlanService
    dispatcher: OutboxDispatcher
    lifecycle: Lifecycle
    client: WebClient
    checkpointer: Checkpointer
    #: draws home tabs (the delivery worker's notifier hands it the home tab's messages)
    home: HomePublisher
    #: the provider connector's jobs (None when it is off: no credentials)
    provider: ProviderJobs | None = None
    #: the workspace and app requests must come from (HTTP mode checks them at the edge)
    installation: Installation | None = None
    #: the hosts a response_url may point to
    response_urls: ResponseUrls = field(default_factory=lambda: ResponseUrls(("hooks.slack.com",)))

    def start(self, *, deliver: bool = True, sweep: bool = True) -> None:
        """Start the background work: group lookups, people's languages, and (in this process)
        outbox delivery with SQLite's checkpoints, and the lifecycle sweep on its timer."""
        self.bot.groups.warm()
        self.bot.channels.warm()
        if self.bot.languages is not None:
            self.bot.languages.warm(also=sorted(self.settings.admins))
        if deliver:
            self.dispatcher.start()
            self.checkpointer.start()
        if sweep:
            self.lifecycle.start(interval=self.settings.sweep_interval)

    def foreign(self, body: dict[str, Any], context: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a request from another workspace or app (logged and counted as
        refused): a slash command's is an ephemeral message saying so, any other's is empty
        ({}); None when the request is ours (or the installation is not checked here)."""
        if self.installation is None or body.get("type") == "url_verification":
            return None
        team, enterprise = context.get("team_id"), context.get("enterprise_id")
        app_id = body.get("api_app_id")
        why = self.installation.refusal(team, enterprise, app_id)
        if why is None:
            return None
        observe.note(kind=observe.payload_kind(body) or "command:other", outcome="refused")
        shown = (str(v)[:40].encode("unicode_escape").decode() for v in (team, enterprise, app_id))
        log.warning(
            "refused a signed request from %s (team %s, enterprise %s, app %s)", why, *shown
        )
        if "command" not in body:
            return {}
        with speaking(self.settings.language):
            message = blocks.text_message(
                _(":no_entry: planbot does not answer this workspace or app; nothing was changed.")
            )
        return {**message, "response_type": "ephemeral"}

    def only_from_its_workspace(self) -> None:
        """Socket Mode: refuse what comes from another workspace or app as the HTTP edge does
        (Slack's socket carries every installation of the app), and learn the workspace from
        `auth.test` now. HTTP mode checks at its edge, before Bolt."""

        def ours_only(
            req: BoltRequest, resp: BoltResponse, next_: Callable[[], None]
        ) -> BoltResponse:
            answer = self.foreign(req.body, req.context)
            if answer is None:
                next_()
                return resp
            return BoltResponse(
                status=200,
                body=json.dumps(answer) if answer else "",
                headers={"content-type": "application/json"} if answer else {},
            )

        self.app.use(ours_only)
        if self.installation is not None:
            self.installation.learn()

    def close(self) -> None:
        """Stop background work."""
        if self.installation is not None:
            self.installation.close()
        self.lifecycle.stop()
        self.dispatcher.stop()
        self.checkpointer.stop()
        self.bot.responder.close()
        if self.bot.direct is not None:
            self.bot.direct.close()
        if self.bot.surfaces is not None:
            self.bot.surfaces.close()
        self.bot.groups.close()
        self.bot.channels.close()
        if self.bot.languages is not None:
            self.bot.languages.close()
        self.service.close()


class _ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose jobs run in the context of whoever submitted them."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn` in a copy of the submitter's context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


class SpeakingApp(App):
    """A Bolt app that answers each payload in the language of the person it comes from: every
    listener, its refusals and the error handler run inside `speaking` that language."""

    def __init__(self, *args: object, languages: Languages, **kwargs: object) -> None:
        # a listener Bolt runs on its executor (after an early ack) speaks the same language
        kwargs.setdefault("listener_executor", _ContextExecutor(max_workers=10))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.languages = languages

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        """Dispatch the payload as Bolt does, speaking its person's language."""
        with speaking(self.languages.of(user_of(req.body))):
            return super().dispatch(req)


class _KnownBoltNotices(logging.Filter):
    """Drops Bolt's start-up notices about the token, which planbot passes on purpose twice."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("unused" in message or "ignored" in message))


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("planbot.bolt")
    if not any(isinstance(f, _KnownBoltNotices) for f in logger.filters):
        logger.addFilter(_KnownBoltNotices())
    return logger


def _provisioner(settings: Settings) -> Provisioner:
    if settings.webhook_url and settings.webhook_secret:
        return WebhookProvisioner(settings.webhook_url, settings.webhook_secret)
    return RecordingProvisioner()


def build(
    settings: Settings,
    *,
    signing_secret: str | None = None,
    token: str | None = None,
    notifier: Notifier | None = None,
    responder: Responder | None = None,
    replier: Replier | None = None,
    surfaces: Surfaces | None = None,
    verified_upstream: bool = False,
    waits: Waits = REQUEST_WAITS,
) -> Planbot:
    """Everything wired once: engine (schema upgraded), service, dispatcher, Bolt app.

    `notifier`, `responder`, `replier` and `surfaces` replace the Slack channel, response_url
    and views delivery (the local shell draws them in the terminal instead). `verified_upstream`:
    the HTTP server has checked
    each request's Slack signature before Bolt sees it, so Bolt does not check it a second time.
    `waits`: how long the database is waited for (`REQUEST_WAITS` where people wait for the
    answer; `BACKGROUND_WAITS` for the delivery worker and the operator's commands).
    """
    config = settings.core_config()
    engine = make_engine(settings.database_url, waits=waits)
    upgrade_schema(engine)
    bot_token = token or settings.bot_token
    client = make_client(bot_token, settings.api_url)
    store = SqlStore(engine)
    service = PlanService(engine=engine, store=store, config=config)
    words = Words(config.catalog, config.billing_tz)
    bot_token = token or settings.bot_token
    if surfaces is None:  # modals open within a trigger's 3 s: a short timeout, no retries
        views = WebClient(token=bot_token, base_url=settings.api_url, timeout=5, retry_handlers=[])
        surfaces = SlackSurfaces(views)
    home = HomePublisher(service, surfaces, words)
    response_urls = ResponseUrls(settings.response_url_hosts)
    # People's locales are read in the background, one try, a short timeout, no sleeping on
    # a 429's Retry-After (a failed read leaves the default until the next refresh).
    lookups = WebClient(token=bot_token, base_url=settings.api_url, timeout=2, retry_handlers=[])
    languages = Languages(
        service.people,
        lookups if bot_token else None,
        default=settings.language,
        channel=settings.channel_language,
    )
    dispatcher = OutboxDispatcher(
        store=store,
        notifier=notifier or SlackNotifier(client, words, home=home, languages=languages),
        provisioner=_provisioner(settings),
        replier=replier
        or SlackReplier(words, client if bot_token else None, response_urls, languages=languages),
        lease=timedelta(seconds=settings.outbox_lease),
        audit_channel=settings.audit_channel,
    )
    service.on_outbox = dispatcher.wake

    def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # One workspace, one token: no auth.test round trip to Slack on the ack path.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=bot_token)

    app = SpeakingApp(
        languages=languages,
        name="planbot",
        logger=_bolt_logger(),
        client=client,
        authorize=authorize,
        signing_secret=signing_secret or settings.signing_secret,
        process_before_response=True,
        token_verification_enabled=False,
        request_verification_enabled=not verified_upstream,
        ssl_check_enabled=True,
        url_verification_enabled=True,
        raise_error_for_unhandled_request=False,
    )
    # User groups are read in the background only (never while a command waits): a slow Slack
    # is waited for up to a round's budget (a failed lookup keeps the last known members).
    # Channel lookups use `lookups`: one try, a short timeout, no sleeping on a Retry-After.
    group_reads = WebClient(
        token=bot_token, base_url=settings.api_url, timeout=GROUP_ROUND_BUDGET, retry_handlers=[]
    )
    groups = GroupDirectory(group_reads if bot_token else None, service.granted_groups)
    connector = settings.provider_config()
    bot = Bot(
        service=service,
        responder=responder or OutboxResponder(service),
        groups=groups,
        words=words,
        surfaces=surfaces,
        provider=ProviderView(store=store, provider=connector),
        channels=ChannelDirectory(lookups if bot_token else None),
        direct=None if responder is not None else DirectResponder(response_urls),
        languages=languages,
    )
    register(app, bot)
    provider = None
    if connector.enabled:
        provider = ProviderJobs(
            store=store,
            config=config,
            provider=connector,
            clock=service.clock,
            wake=dispatcher.wake,
        )
        service.lifecycle.also = provider.sweep_hook
    return Planbot(
        settings,
        app,
        bot,
        service,
        dispatcher,
        service.lifecycle,
        client,
        Checkpointer(engine),
        home,
        provider,
        Installation(
            teams=settings.allowed_teams,
            app_id=settings.app_id,
            client=WebClient(
                token=bot_token, base_url=settings.api_url, timeout=5, retry_handlers=[]
            )
            if bot_token
            else None,
        ),
        response_urls,
    )
