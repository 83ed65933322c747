"""The bot's Slack Web API client, built in one place for the bot and the admin CLI."""

from __future__ import annotations

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

# Seconds a Slack Web API call may take.
SLACK_TIMEOUT = 10.0


def slack_session() -> aiohttp.ClientSession:
    """A session for Slack calls. slack_sdk ignores its own timeout when it is given a session,
    so the session carries it: a Slack that never answers must not hold start-up (auth.test)
    or a reply for minutes."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT))


def web_client(settings: Settings, session: aiohttp.ClientSession | None = None) -> AsyncWebClient:
    """A client with the bot token (empty when SLACK_BOT_TOKEN is unset)."""
    token = settings.slack_bot_token
    return AsyncWebClient(
        token=token.get_secret_value() if token is not None else None,
        base_url=settings.slack_api_base,
        session=session,
        timeout=int(SLACK_TIMEOUT),
    )
