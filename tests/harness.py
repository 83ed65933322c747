"""Drive the bot the way Slack and users do: signed HTTP requests over loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.app import FeedbackBot
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import BOT_USER, TEAM, SlackStandIn

# Real-looking secrets, so that a leak would be visible in logs and bodies.
BOT_TOKEN = "xoxb-2071234567890-4112345678901-Zq8tV3kLmN0pQr5sTu7vWx9y"
APP_TOKEN = "xapp-1-A0APP0001-4112345678901-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CONTEXTUAL_KEY = "key-ctx-5Jd8sK2mQ9vX4bT7nW1eR6yU3oP0aZ"
AQUILAX_KEY = "pat-aqx-7Hq2Lm9Vt4Nc8Xw1Rb6Zy3Kd0Fs5Gp"
API_TOKEN = "api-tok-c2VjcmV0LWFwaS10b2tlbi0xMjM0NTY"
SECRETS = (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, CONTEXTUAL_KEY, AQUILAX_KEY, API_TOKEN)

CHANNEL = "C0FEEDBK01"
# The bot's provider request timeout in in-process tests, and the stand-ins' own.
PROVIDER_TIMEOUT = 0.5
_event_ids = itertools.count(1)
_ts = itertools.count(1)


def new_ts() -> str:
    # Ten digits before the dot whatever the count, as Slack's ts have.
    return f"{1_700_000_000 + next(_ts)}.000100"


def new_uuid() -> str:
    return str(uuid.uuid4())


def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def event_envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API body in Slack's shape."""
    now = time.time()
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "context_team_id": TEAM,
        "api_app_id": "A0APP0001",
        "event": {**event, "event_ts": event.get("event_ts", f"{now:.6f}")},
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):010d}",
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6InJlYWN0aW9uX2FkZGVkIn0",
    }


def reaction_event(
    user: str, emoji: str, ts: str, *, added: bool = True, channel: str = CHANNEL
) -> dict[str, Any]:
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": emoji,
        "item_user": "U0AIBOT001",
        "item": {"type": "message", "channel": channel, "ts": ts},
    }


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
    http: httpx.AsyncClient
    slack: SlackSide

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.port}"

    @property
    def store(self) -> Any:
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

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until no delivery is pending or in flight."""
        await wait_until(self._nothing_queued, timeout)

    async def _nothing_queued(self) -> bool:
        counts = await self.store.delivery_counts()
        return counts.pending == 0 and counts.sending == 0

    def violations(self) -> list[str]:
        return (
            self.slack_api.violations
            + self.contextual.violations
            + self.aquilax.violations
            + self.contextual.overlaps()
            + self.aquilax.overlaps()
        )


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.02
) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110 - polls the real database
            await asyncio.sleep(every)


_action_ts = itertools.count(1)


def block_actions(
    user: str,
    message_ts: str,
    action_id: str,
    value: str,
    *,
    channel: str = CHANNEL,
    block_id: str = "ctrl",
    thread_ts: str | None = None,
    kind: str = "feedback_buttons",
    action_ts: str | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0TEST001/1/abc",
) -> dict[str, Any]:
    """A block_actions payload in Slack's shape, for a click on a message."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER,
        "bot_id": "BBOTFB001",
        "ts": message_ts,
        "text": "…",
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
        message["thread_ts"] = thread_ts
    action: dict[str, Any] = {
        "type": kind,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "action_ts": action_ts or f"{time.time():.0f}.{next(_action_ts):06d}",
    }
    if kind == "button":
        action["text"] = {"type": "plain_text", "text": "🚩 Flag", "emoji": True}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "token": "verification-token-unused",
        "container": container,
        "trigger_id": f"{next(_action_ts)}.1234567890.abcdef0123456789",
        "team": {"id": TEAM, "domain": "test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "ai-answers"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def view_submission(
    user: str, view: dict[str, Any], *, category: str | None, explanation: str | None
) -> dict[str, Any]:
    """The view_submission Slack sends when `user` submits the modal `view` (as opened)."""
    values: dict[str, Any] = {
        "category": {
            "category": {
                "type": "static_select",
                "selected_option": (
                    {"text": {"type": "plain_text", "text": category}, "value": category}
                    if category
                    else None
                ),
            }
        },
        "explanation": {"explanation": {"type": "plain_text_input", "value": explanation}},
    }
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "token": "verification-token-unused",
        "trigger_id": "1.2.3",
        "view": {
            "id": "V0VIEW001",
            "team_id": TEAM,
            "type": "modal",
            "hash": "1700000000.abcdef",
            "root_view_id": "V0VIEW001",
            "app_id": "A0APP0001",
            "bot_id": "BBOTFB001",
            "state": {"values": values},
            **view,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(
    user: str, text: str, *, channel: str = CHANNEL, response_url: str
) -> dict[str, str]:
    """The form fields Slack posts for `/feedback <text>`."""
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "ai-answers",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/feedback",
        "text": text,
        "api_app_id": "A0APP0001",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{next(_action_ts)}.1234567890.fedcba9876543210",
    }
