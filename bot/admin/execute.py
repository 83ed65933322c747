"""Carrying out a parsed `/feedback` invocation against the channel configuration, the
provider keys and the store; the reply text comes from `render`. Permission checks happen
before this (in the handler)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admin import notices, render
from bot.admin.grammar import RESETTABLE, SWITCHES, UsageError
from bot.admin.invocations import (
    AddEmoji,
    DigestNow,
    ForgetKey,
    Invocation,
    ListEmoji,
    ListTrusted,
    RemoveEmoji,
    Reset,
    Retry,
    SetAgent,
    SetAquilaX,
    SetAsk,
    SetDigest,
    SetEscalation,
    SetProvider,
    ShowDeliveries,
    ShowStats,
    ShowStatus,
    Switch,
    Trust,
)
from bot.answers.late_lookup import LateLookup
from bot.config.channels import WORKSPACE, ChannelSettings, ask_agent
from bot.config.settings import Settings
from bot.delivery.keys import Keys
from bot.delivery.worker import DeliveryWorker
from bot.digest.schedule import DigestPlan, run_now
from bot.domain import DeliveryState, Triage
from bot.escalation.sender import CANNOT_POST, cannot_post
from bot.providers import PROVIDERS
from bot.slack.api import missing_history_scopes
from storage import Store


async def probe(url: str, timeout: float = 3.0) -> str:
    """Can we open a TCP connection to the provider? No request is sent."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        return f"{host} unreachable ({type(e).__name__})"
    writer.close()
    return f"{host} reachable ({(time.perf_counter() - started) * 1000:.0f} ms)"


class FeedbackCommand:
    """Carries out parsed sub-commands. Permission checks happen before this (in the handler)."""

    def __init__(
        self,
        store: Store,
        config: ChannelSettings,
        keys: Keys,
        settings: Settings,
        worker: DeliveryWorker,
        scopes: frozenset[str] = frozenset(),
        late_lookup: LateLookup | None = None,
        slack: AsyncWebClient | None = None,
        wake_digests: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._config = config
        self._keys = keys
        self._settings = settings
        self._worker = worker
        self._scopes = scopes  # what the bot token was granted, at start-up
        self._late_lookup = late_lookup  # its budget and stops, for `status`
        self._slack = slack  # posts where escalations and digests go, to check it may
        self._wake_digests = wake_digests

    async def run(self, inv: Invocation, user: str, channel: str) -> str:
        scope = WORKSPACE if inv.workspace else channel
        where = render.where(channel, inv.workspace)
        match inv:
            case ShowStatus():
                return await self.status(None if inv.workspace else channel)
            case ShowStats(days=days):
                return await self.stats(None if inv.workspace else channel, days)
            case ShowDeliveries():
                return await self.deliveries()
            case Retry(ids=ids):
                return await self.retry(list(ids))
            case SetProvider(provider=provider):
                await self._config.set(scope, "provider", provider, user)
                return render.provider_set(provider, where)
            case SetAgent(agent_id=agent_id):
                await self._config.set(scope, "agent_id", agent_id, user)
                return render.agent_set(agent_id, where)
            case SetAsk(agent_id=agent_id):
                await self._config.set(scope, "ask_agent", agent_id or "off", user)
                return render.ask_set(agent_id, where)
            case SetAquilaX(org=org, group=group):
                await self._config.set(scope, "aquilax_org", org, user)
                await self._config.set(scope, "aquilax_group", group, user)
                return render.aquilax_set(org, group, where)
            case SetEscalation() | SetDigest() | DigestNow():
                return await self.to_people(inv, scope, where, user)
            case ListEmoji() | AddEmoji() | RemoveEmoji():
                return await self.emoji(inv, scope, where, user)
            case Switch(setting=setting, on=on):
                await self._config.set(scope, SWITCHES[setting], on, user)
                reply = render.switched(setting, on, where)
                if setting == "late-lookup" and on:
                    config = await self._config.for_channel(None if inv.workspace else channel)
                    reply += render.late_lookup_needs(
                        missing_history_scopes(self._scopes), bool(config.trusted_apps)
                    )
                return reply
            case ListTrusted():
                config = await self._config.for_channel(None if inv.workspace else channel)
                return render.trusted_listed(
                    config.trusted_apps, self._config.trusted_by_default, where
                )
            case Trust():
                return await self.trust(inv, scope, where, user)
            case Reset(setting=setting):
                return await self.reset(setting, scope, where, user)
            case ForgetKey(provider=provider):
                await self._keys.set(provider, None, user)
                return render.key_forgotten(provider)
        raise UsageError(f"There is no `{inv.name}` sub-command.")  # pragma: no cover

    async def to_people(
        self, inv: SetEscalation | SetDigest | DigestNow, scope: str, where: str, user: str
    ) -> str:
        """escalate and digest: where feedback goes to people. A channel is set only once
        the bot has posted there (saying what it will post), so a channel it cannot post
        in is refused with what to do, and nothing changes."""
        hour = self._settings.feedback_digest_hour
        match inv:
            case SetEscalation(channel=None):
                await self._config.set(scope, "escalate", None if inv.workspace else "off", user)
                return notices.escalation_off(where)
            case SetEscalation(channel=str(channel), anonymous=anonymous):
                await self._announce(channel, notices.escalation_here(where, anonymous, user))
                await self._config.set(
                    scope, "escalate", Triage(channel, anonymous).setting(), user
                )
                return notices.escalation_set(channel, where, anonymous)
            case SetDigest(channel=None):
                await self._config.set(scope, "digest", None, user)
                return notices.digest_off(where)
            case SetDigest(channel=str(channel), period="daily" | "weekly" as period):
                plan = DigestPlan(channel, period, time.time())
                await self._announce(channel, notices.digest_here(where, plan, hour, user))
                await self._config.set(scope, "digest", plan.setting(), user)
                return notices.digest_set(plan, where, hour)
        plan_now = DigestPlan.from_setting(await self._config.own_value(scope, "digest"))
        if plan_now is None:
            raise UsageError(notices.no_digest(where), "digest")
        queued = await self._store.queue_digest(run_now(scope, plan_now, time.time()))
        self._wake_digests()
        return notices.digest_queued(plan_now, queued)

    async def _announce(self, channel: str, text: str) -> None:
        if self._slack is None:  # pragma: no cover - the bot always has a client
            return
        try:
            await self._slack.chat_postMessage(channel=channel, text=text)
        except SlackApiError as e:
            error = str(e.response.get("error", "unknown"))
            problem = cannot_post(channel, error) if error in CANNOT_POST else error
            raise UsageError(f"Nothing changed: {problem}.") from None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise UsageError(
                f"Nothing changed: Slack could not be reached ({type(e).__name__}); try again."
            ) from None

    async def trust(self, inv: Trust, scope: str, where: str, user: str) -> str:
        own = set(await self._config.own_value(scope, "trusted_apps") or ())
        if inv.trusted:
            if inv.app_id in own:
                return render.already_trusted(inv.app_id, where)
            await self._config.set(scope, "trusted_apps", sorted(own | {inv.app_id}), user)
            return render.trusted(inv.app_id, where)
        if inv.app_id not in own:
            workspace = await self._config.own_value(WORKSPACE, "trusted_apps") or ()
            raise UsageError(
                render.not_trusted_here(
                    inv.app_id,
                    where,
                    by_default=inv.app_id in self._config.trusted_by_default,
                    by_workspace=scope != WORKSPACE and inv.app_id in workspace,
                ),
                "trust",
            )
        rest = sorted(own - {inv.app_id})
        await self._config.set(scope, "trusted_apps", rest or None, user)
        return render.distrusted(inv.app_id, where, workspace=scope == WORKSPACE)

    async def status(self, channel: str | None) -> str:
        config = await self._config.for_channel(channel)
        counts = await self._store.delivery_counts()
        specs = list(PROVIDERS.values())
        probes = await asyncio.gather(*(probe(spec.base_url(self._settings)) for spec in specs))
        providers = []
        for spec, reach in zip(specs, probes, strict=True):
            last = await self._store.last_delivered_at(spec.name)
            key = self._keys.status(spec.name).describe()
            providers.append(render.ProviderLine(spec.label, key, reach, last))
        via_metadata = await self._store.last_via_metadata()
        lookup = self._late_lookup.status() if self._late_lookup is not None else None
        ask = ask_agent(config, self._settings)
        return render.status_report(channel, config, providers, counts, via_metadata, lookup, ask)

    async def stats(self, channel: str | None, days: int) -> str:
        counts = await self._store.vote_stats(channel, time.time() - days * 86400)
        return render.stats_report(channel, days, counts)

    async def deliveries(self) -> str:
        counts = await self._store.delivery_counts()
        dead = await self._store.list_deliveries([DeliveryState.DEAD], limit=10)
        digests = await self._store.list_digests(limit=10)
        return render.deliveries_report(counts, dead) + notices.digest_lines(digests)

    async def retry(self, ids: list[int]) -> str:
        requeued, superseded = await self._store.retry_dead(ids)
        if requeued:
            self._worker.notify()
        return render.retried(requeued, superseded, ids)

    async def emoji(
        self, inv: ListEmoji | AddEmoji | RemoveEmoji, scope: str, where: str, user: str
    ) -> str:
        current = await self._config.for_channel(None if scope == WORKSPACE else scope)
        if isinstance(inv, ListEmoji):
            return render.emoji_listed(current.emoji, where)
        emoji_map = {name: status.value for name, status in current.emoji.items()}
        if isinstance(inv, AddEmoji):
            emoji_map[inv.emoji] = inv.status.value
            await self._config.set(scope, "emoji", emoji_map, user)
            return render.emoji_added(inv.emoji, inv.status, where)
        if inv.emoji not in emoji_map:
            raise UsageError(render.not_an_emoji(inv.emoji, where), "emoji")
        del emoji_map[inv.emoji]
        await self._config.set(scope, "emoji", emoji_map, user)
        return render.emoji_removed(inv.emoji, where)

    async def reset(self, setting: str, scope: str, where: str, user: str) -> str:
        for key in RESETTABLE[setting]:
            await self._config.set(scope, key, None, user)
        return render.reset_done(setting, where, workspace=scope == WORKSPACE)
