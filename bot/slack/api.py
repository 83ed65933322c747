"""The bot's Slack Web API client, built in one place for the bot and the admin CLI."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config.settings import Settings, SettingsError

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

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
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
    rate_limit_retries: int = 1,
) -> AsyncWebClient:
    """A client with the bot token (empty when SLACK_BOT_TOKEN is unset). A call Slack
    refuses with 429 is made again after Retry-After, `rate_limit_retries` times at most."""
    token = settings.slack_bot_token
    client = CountingWebClient(
        token=token.get_secret_value() if token is not None else None,
        base_url=settings.slack_api_base,
        session=session,
        timeout=int(SLACK_TIMEOUT),
        on_error=on_error,
    )
    client.retry_handlers.append(
        AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries)
    )
    return client


def without_rate_limit_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The same client (token, session, base URL, metrics), except that a 429 is raised at
    once instead of being waited out and made again: for a caller that keeps its own budget
    of calls (bot/answers/late_lookup.py), a retry it did not grant would overspend it."""
    clone = copy.copy(client)
    clone.retry_handlers = [
        h for h in client.retry_handlers if not isinstance(h, AsyncRateLimitErrorRetryHandler)
    ]
    return clone


async def permalink(slack: AsyncWebClient, channel: str, ts: str) -> str | None:
    """A link to the message (chat.getPermalink); None when Slack will not give one (the
    message is gone, or the bot cannot see it). Network trouble is the caller's."""
    try:
        found = await slack.chat_getPermalink(channel=channel, message_ts=ts)
    except SlackApiError:
        return None
    return str(found.get("permalink") or "") or None


def granted_scopes(auth_test: Any) -> frozenset[str]:
    """The scopes the token was granted, as Slack says in auth.test's X-OAuth-Scopes header."""
    header = auth_test.headers.get("x-oauth-scopes") or ""
    return frozenset(s.strip() for s in header.split(",") if s.strip())


# Reading a channel's messages (answers scan, late lookup): channels:history for public
# channels, groups:history for private ones. Optional: not in manifest.yml.
HISTORY_SCOPES = ("channels:history", "groups:history")


def missing_history_scopes(granted: frozenset[str]) -> list[str]:
    return [scope for scope in HISTORY_SCOPES if scope not in granted]


async def check_app_token(slack: AsyncWebClient, app_token: str) -> None:
    """The socket client retries a refused token forever; refuse to start instead."""
    try:
        await slack.apps_connections_open(app_token=app_token)
    except SlackApiError as e:
        raise SettingsError(
            f"SLACK_APP_TOKEN was refused by Slack ({e.response.get('error', 'unknown error')}):"
            " create an app-level token with connections:write under Basic Information"
        ) from None
