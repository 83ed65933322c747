"""Wiring: one FeedbackBot holds the store, the Slack app, the worker and the web server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.admin.execute import FeedbackCommand
from bot.admin.permissions import Permissions
from bot.answers.admin import AnswerAdmin
from bot.answers.late_lookup import LateLookup
from bot.answers.register import Answers, Registered
from bot.answers.self_registration import MetadataRegistrar
from bot.ask import Asker, ContextualAgent
from bot.config.channels import ChannelSettings
from bot.config.settings import Settings, SettingsError
from bot.delivery.worker import Backoff
from bot.digest.service import Digests
from bot.providers import PROVIDERS, contextual
from bot.providers.registration import AnswerIn
from bot.sending import Senders, build_senders
from bot.services import Identity, Services
from bot.slack.api import check_app_token, granted_scopes, slack_session, web_client
from bot.slack.socket_mode import CheckedSocketModeHandler
from bot.slack.workspace import workspace_guard
from bot.support.background import Background
from bot.support.health import Health
from bot.support.logs import DropMessage, Redactor
from bot.support.metrics import Metrics
from bot.votes.recording import Votes
from bot.web.server import build_web_app, runner
from handlers.reactions import FastLane
from storage import Store

log = logging.getLogger(__name__)


# Bolt gets our own client (our session and SLACK_API_URL), and reads SLACK_BOT_TOKEN from the
# environment all the same: it then warns that the token is unused, on every start. It is
# the same token, which authorize() hands over.
_TOKEN_UNUSED = DropMessage(warning_client_prioritized_and_token_skipped())


class FeedbackBot:
    """The whole application. `start()` binds the web server; `stop()` shuts down cleanly."""

    def __init__(
        self,
        settings: Settings,
        *,
        redactor: Redactor | None = None,
        backoff: Backoff | None = None,
        provider_timeout: float | None = None,
        delivery_concurrency: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings.require_slack()
        self.settings = settings
        self.redactor = redactor or Redactor(settings.secrets())
        self._backoff = backoff
        self._provider_timeout = provider_timeout or settings.feedback_provider_timeout
        self._concurrency = delivery_concurrency
        self._clock = clock  # the digests' (tests move it on rather than wait)
        self._senders: Senders | None = None
        self._runner: web.AppRunner | None = None
        self._socket_handler: CheckedSocketModeHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._http: aiohttp.ClientSession | None = None
        self.services: Services | None = None
        self.bolt: AsyncApp | None = None
        self.port = 0

    async def start(self) -> None:
        s = self.settings
        store = await Store.open(s.feedback_db)
        try:
            metrics = Metrics(store) if s.feedback_metrics else None
            self._session = slack_session()
            slack = web_client(
                s,
                self._session,
                on_error=metrics.slack_error if metrics is not None else None,
            )
            identity = await _identify(slack)
            if s.socket_mode:
                await check_app_token(slack, _secret(s.slack_app_token))
            senders = self._senders = await build_senders(
                store,
                s,
                self.redactor,
                slack,
                timeout=self._provider_timeout,
                concurrency=self._concurrency,
                backoff=self._backoff,
                metrics=metrics,
                clock=self._clock,
            )
            http, keys, worker = senders.http, senders.keys, senders.worker
            self._http = http
            channel_settings = ChannelSettings(store, s.feedback_trusted_apps)
            answers = Answers(store, channel_settings, slack, on_votes=worker.notify)
            registrar = MetadataRegistrar(answers, channel_settings, identity.bot_id)
            late_lookup = LateLookup(
                store,
                slack,
                registrar,
                on_votes=worker.notify,
                per_minute=s.feedback_lookup_per_minute,
            )
            channel_settings.on_change(late_lookup.forget_misses)
            key = partial(keys.get, contextual.SPEC.name)
            agent = ContextualAgent(http, contextual.SPEC.base_url(s), key)
            self.services = Services(
                settings=s,
                store=store,
                channel_settings=channel_settings,
                keys=keys,
                answers=answers,
                answer_admin=AnswerAdmin(store),
                metadata=registrar,
                late_lookup=late_lookup,
                votes=Votes(store, worker, metrics),
                worker=worker,
                feedback_command=FeedbackCommand(
                    store,
                    channel_settings,
                    keys,
                    s,
                    worker,
                    identity.scopes,
                    late_lookup,
                    slack=slack,
                    wake_digests=senders.digests.wake,
                ),
                permissions=Permissions(slack, s.feedback_admins),
                slack=slack,
                identity=identity,
                background=Background(),
                redactor=self.redactor,
                health=Health(store, worker.owner),
                metrics=metrics,
                asker=Asker(store, channel_settings, s, agent, answers, slack, worker.owner),
            )
            bolt = self.bolt = self._bolt_app(slack, identity)
            handlers.register(bolt, self.services)
            await self._serve(bolt)
        except BaseException:
            if self._runner is not None:
                await self._runner.cleanup()
            await self._close_clients()
            await store.close()
            raise
        if s.feedback_worker == "inline":
            senders.start()
        await self.services.late_lookup.start()
        for provider in PROVIDERS:
            if self.services.keys.get(provider) is None:
                log.warning(
                    "no %s API key (environment or /feedback setup): its deliveries will fail",
                    provider,
                )
        log.info(
            "feedback-bot is up as <@%s> in %s (%s, %s event loop)%s",
            identity.bot_user_id,
            identity.team_id,
            "Socket Mode" if s.socket_mode else "HTTP mode",
            type(asyncio.get_running_loop()).__module__.split(".")[0],
            ""
            if s.feedback_worker == "inline"
            else "; deliveries are sent by `feedback-bot worker` (FEEDBACK_WORKER=separate)",
        )

    def _bolt_app(self, slack: AsyncWebClient, identity: Identity) -> AsyncApp:
        authorized = AuthorizeResult(
            enterprise_id=None,
            team_id=identity.team_id,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
            bot_token=_secret(self.settings.slack_bot_token),
        )

        async def authorize() -> AuthorizeResult:
            # auth.test ran at start-up: no network call on the ack path. Requests for
            # another workspace never get here (workspace_guard).
            return authorized

        bolt_log = logging.getLogger("slack_bolt.App")
        bolt_log.addFilter(_TOKEN_UNUSED)  # once: a logger keeps one of each filter
        return AsyncApp(
            name="feedback-bot",
            client=AsyncWebClient(base_url=slack.base_url, session=self._session),
            # Before authorize, so one check serves both doors (HTTP and Socket Mode).
            before_authorize=workspace_guard(identity.team_id),
            authorize=authorize,
            signing_secret=_secret(self.settings.slack_signing_secret) or "",
            # The /slack/events route verifies signatures before parsing; see bot/web/slack.py.
            request_verification_enabled=False,
            # Listeners write the vote to SQLite before the ack, so a crash after the ack
            # cannot lose it; they do no network I/O before returning.
            process_before_response=True,
            # A request no listener takes (another app's command or button pointed here)
            # goes to handlers/errors.py, one line, instead of Bolt's warning with a code
            # sample in it; Slack still gets Bolt's 404.
            raise_error_for_unhandled_request=True,
            logger=bolt_log,
        )

    async def _serve(self, bolt: AsyncApp) -> None:
        assert self.services is not None
        s = self.settings
        fast_lane = FastLane(self.services)
        app = build_web_app(self.services, None if s.socket_mode else bolt, fast_lane)
        self._runner = runner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, s.feedback_host, s.feedback_port).start()
        self.port = self._runner.addresses[0][1]
        log.info("listening on http://%s:%d", s.feedback_host, self.port)
        if s.socket_mode:
            handler = CheckedSocketModeHandler(
                bolt, _secret(s.slack_app_token), fast_lane, self.services.metrics
            )
            await handler.connect_async()
            self._socket_handler = handler
            self.services.health.watch_socket(handler.problem)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking requests, let deliveries in flight finish (or stay queued), close.
        One `grace` for everything, counted from now: the steps run one after another,
        and the whole must fit in a supervisor's stop timeout (Docker's is 10 s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        def left() -> float:
            return max(0.0, deadline - loop.time())

        if self._socket_handler is not None:
            # A Slack end that is gone (the network down at SIGTERM) would hold the close
            # for aiohttp's 10 s WebSocket close timeout.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._socket_handler.close_async(), left())
        if self._runner is not None:
            # Sends go on meanwhile: the worker stops last.
            await self._runner.cleanup()
        if self.services is not None:
            await self.services.background.drain(left())
            await self.services.late_lookup.stop(left())
            if self._senders is not None:
                await self._senders.stop(left())
        await self._close_clients()
        if self.services is not None:
            await self.services.store.close()

    async def _close_clients(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._session is not None:
            await self._session.close()

    @property
    def digests(self) -> Digests:
        assert self._senders is not None, "start() the bot first"
        return self._senders.digests

    async def register_answer(self, payload: AnswerIn | dict[str, object]) -> Registered:
        """Register an answer from code running in the same process (raises
        pydantic.ValidationError for a bad payload, PostError when Slack refuses a post)."""
        assert self.services is not None, "start() the bot first"
        answers = self.services.answers
        request = payload if not isinstance(payload, dict) else await answers.validate(payload)
        return await answers.register(request)


async def _identify(slack: AsyncWebClient) -> Identity:
    try:
        me = await slack.auth_test()
    except SlackApiError as e:
        raise SettingsError(
            f"SLACK_BOT_TOKEN was refused by Slack ({e.response.get('error', 'unknown error')}):"
            " copy the bot token (xoxb-…) from your app's OAuth & Permissions page"
        ) from None
    except (aiohttp.ClientError, TimeoutError) as e:
        raise SettingsError(
            f"cannot reach Slack at {slack.base_url} ({type(e).__name__}): check SLACK_API_URL"
            " and the network"
        ) from None
    return Identity(
        team_id=str(me["team_id"]),
        bot_user_id=str(me["user_id"]),
        bot_id=str(me["bot_id"]),
        scopes=granted_scopes(me),
    )


def _secret(value: SecretStr | None) -> str:
    """The plain text of an optional SecretStr ('' when unset)."""
    return value.get_secret_value() if value is not None else ""
