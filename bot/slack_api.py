"""The bot's Slack Web API client, built in one place for the bot and the admin CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

# Seconds a Slack Web API call may take.
SLACK_TIMEOUT = 10.0


def slack_session() -> aiohttp.ClientSession:
    """A session for Slack calls. slack_sdk ignores its own timeout when it is given a session,
    so the session carries it: a Slack that never answers must not hold start-up (auth.test)
    or a reply for minutes."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SLACK_TIMEOUT))


OnError = Callable[[str, str], None]


class CountingWebClient(AsyncWebClient):
    """slack_sdk's client, telling `on_error` (the metrics) of every call Slack refused.
    Every method of the client goes through api_call."""

    def __init__(self, *args: Any, on_error: OnError | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_error = on_error

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as e:
            if self._on_error is not None:
                self._on_error(api_method, str(e.response.get("error", "unknown")))
            raise


def web_client(
    settings: Settings,
    session: aiohttp.ClientSession | None = None,
    on_error: OnError | None = None,
) -> AsyncWebClient:
    """A client with the bot token (empty when SLACK_BOT_TOKEN is unset)."""
    token = settings.slack_bot_token
    return CountingWebClient(
        token=token.get_secret_value() if token is not None else None,
        base_url=settings.slack_api_base,
        session=session,
        timeout=int(SLACK_TIMEOUT),
        on_error=on_error,
    )
