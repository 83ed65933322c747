"""Drive the bot the way Slack and users do: signed HTTP requests over loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.app import FeedbackBot
from storage import Store
from tests.credentials import API_TOKEN, SIGNING_SECRET
from tests.slack_payloads import (
    CHANNEL,
    event_envelope,
    new_ts,
    new_uuid,
    reaction_event,
    sign,
    slash_command,
)
from tests.standins import DEADLINE
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn

# The bot's provider request timeout in in-process tests, and the stand-ins' own.
PROVIDER_TIMEOUT = 0.5

_replies = itertools.count(1)


@dataclass
class SlackSide:
    """Sends what Slack sends to the bot's request URL."""

    http: httpx.AsyncClient
    url: str
    sent_event_ids: list[str] = field(default_factory=list)

    async def post(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        signed: bool = True,
        secret: str = SIGNING_SECRET,
    ) -> httpx.Response:
        h = {"Content-Type": content_type, **(sign(body, secret) if signed else {})}
        h.update(headers or {})
        return await self.http.post(self.url, content=body.encode(), headers=h)

    async def event(
        self, event: dict[str, Any], event_id: str | None = None, retry: int | None = None
    ) -> httpx.Response:
        envelope = event_envelope(event, event_id)
        self.sent_event_ids.append(envelope["event_id"])
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(json.dumps(envelope), headers=headers if retry else None)

    async def react(
        self, user: str, emoji: str, ts: str, *, added: bool = True, channel: str = CHANNEL
    ) -> httpx.Response:
        r = await self.event(reaction_event(user, emoji, ts, added=added, channel=channel))
        assert r.status_code == 200, r.text
        return r

    async def unreact(
        self, user: str, emoji: str, ts: str, channel: str = CHANNEL
    ) -> httpx.Response:
        return await self.react(user, emoji, ts, added=False, channel=channel)

    async def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, content_type="application/x-www-form-urlencoded")

    async def command(self, fields: dict[str, str]) -> httpx.Response:
        return await self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")


@dataclass
class Harness:
    bot: FeedbackBot
    slack_api: SlackStandIn
    contextual: ProviderStandIn
    aquilax: ProviderStandIn
    langsmith: ProviderStandIn
    langfuse: ProviderStandIn
    http: httpx.AsyncClient
    slack: SlackSide

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.port}"

    @property
    def store(self) -> Store:
        assert self.bot.services is not None
        return self.bot.services.store

    async def register(self, body: dict[str, Any], token: str = API_TOKEN) -> httpx.Response:
        return await self.http.post(
            f"{self.base_url}/v1/answers",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    async def contextual_answer(
        self, ts: str | None = None, sources: int = 0, channel: str = CHANNEL
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "channel": channel,
            "ts": ts or new_ts(),
            "provider": "contextual",
            "agent_id": new_uuid(),
            "message_id": new_uuid(),
        }
        if sources:
            body["sources"] = [
                {"content_id": new_uuid(), "label": f"Doc {i + 1}"} for i in range(sources)
            ]
        r = await self.register(body)
        assert r.status_code == 201, r.text
        return body

    async def langsmith_answer(
        self, ts: str | None = None, channel: str = CHANNEL, trace: bool = True
    ) -> dict[str, Any]:
        body = {"channel": channel, "ts": ts or new_ts(), "provider": "langsmith"}
        body["run_id"] = new_uuid()
        if trace:
            body["trace_id"] = new_uuid()
        r = await self.register(body)
        assert r.status_code == 201, r.text
        return body

    async def langfuse_answer(
        self, ts: str | None = None, channel: str = CHANNEL, observation: bool = True
    ) -> dict[str, Any]:
        body = {"channel": channel, "ts": ts or new_ts(), "provider": "langfuse"}
        body["trace_id"] = new_uuid().replace("-", "")  # Langfuse's ids are any string
        if observation:
            body["observation_id"] = f"gen-{new_uuid()[:8]}"
        r = await self.register(body)
        assert r.status_code == 201, r.text
        return body

    async def aquilax_answer(self, ts: str | None = None, channel: str = CHANNEL) -> dict[str, Any]:
        body = {
            "channel": channel,
            "ts": ts or new_ts(),
            "provider": "aquilax",
            "request_id": new_uuid(),
            "org": "65dd3e835a669e3347654200",
            "group": "67e86d036e9921509f730483",
        }
        r = await self.register(body)
        assert r.status_code == 201, r.text
        return body

    async def feedback(self, user: str, text: str, channel: str = CHANNEL) -> str:
        """Run `/feedback text` as `user`; return the reply, from the ack or from the
        response_url ("" when it opened a modal instead)."""
        key = f"r{next(_replies)}"
        before = len(self.slack_api.responses)
        r = await self.slack.command(
            slash_command(
                user, text, channel=channel, response_url=self.slack_api.response_url(key)
            )
        )
        assert r.status_code == 200, r.text
        if r.text:  # answered in the ack: Bolt sends plain text, which Slack shows ephemerally
            json_reply = r.headers["content-type"].startswith("application/json")
            return str(r.json()["text"]) if json_reply else r.text
        opened = len(self.slack_api.calls_to("views.open"))

        async def answered() -> bool:
            return (
                len(self.slack_api.responses) > before
                or len(self.slack_api.calls_to("views.open")) > opened
            )

        await wait_until(answered)
        if len(self.slack_api.responses) == before:
            return ""
        reply = self.slack_api.responses[before]
        assert reply["response_type"] == "ephemeral"
        return str(reply["text"])

    async def settled(self, timeout: float = DEADLINE) -> None:
        """Wait until no delivery is pending or in flight."""
        await wait_until(self._nothing_queued, timeout)

    async def _nothing_queued(self) -> bool:
        counts = await self.store.delivery_counts()
        return counts.pending == 0 and counts.sending == 0

    def violations(self) -> list[str]:
        providers = (self.contextual, self.aquilax, self.langsmith, self.langfuse)
        found = list(self.slack_api.violations)
        for provider in providers:
            found += provider.violations + provider.overlaps()
        return found


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float = DEADLINE, every: float = 0.02
) -> None:
    """Poll `condition` until it holds; fail after `timeout` (a bound on a failure only)."""
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110 - polls the real database
            await asyncio.sleep(every)
