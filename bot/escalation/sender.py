"""The sender of escalations: the delivery worker's "slack" provider.

A send reads the escalation as it is now (storage's `escalation_view`) and makes the triage
channel show it: the first send posts the message, every later one updates it (its channel
and ts are the `ref` the previous delivered send recorded). A send that may have posted
before it was cut off (a crash between Slack's answer and the record) first looks for that
message by its metadata, so a restart does not post a second one.
"""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import Answer, Target, Verdict
from bot.escalation.message import EVENT_TYPE, Message, render
from bot.providers.base import (
    Outcome,
    PermanentError,
    ProviderError,
    RetryableError,
    Sent,
    Skipped,
    parse_retry_after,
)
from bot.slack.api import permalink
from storage import Store

# Slack's errors that say the bot cannot post in the channel: an admin must act.
CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
# Slack's errors that a later try may not get.
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# How far back a send looks for the message a cut-off send may have posted.
LOOK_BACK = 200


def cannot_post(channel: str, error: str) -> str:
    """What an admin reads when the bot may not post in a channel (replies, `deliveries`)."""
    if error == "is_archived":
        return f"<#{channel}> is archived: choose another channel"
    return (
        f"the bot cannot post in <#{channel}> ({error}): invite it there with"
        " `/invite @feedback-bot`, or choose another channel"
    )


def slack_failure(method: str, e: BaseException, channel: str) -> ProviderError:
    """A failed Slack call as the worker's errors: retryable or permanent."""
    if isinstance(e, SlackApiError):
        error = str(e.response.get("error", "unknown"))
        status = e.response.status_code
        if status == 429 or error == "ratelimited":
            retry_after = parse_retry_after(dict(e.response.headers or {}))
            return RetryableError(f"Slack {method}: rate limited", retry_after=retry_after)
        if status >= 500 or error in TRANSIENT:
            return RetryableError(f"Slack {method}: {error} (HTTP {status})")
        if error in CANNOT_POST:
            return PermanentError(cannot_post(channel, error))
        return PermanentError(f"Slack refused {method}: {error}")
    if isinstance(e, TimeoutError):
        return RetryableError(f"Slack {method}: no answer in time")
    return RetryableError(f"Slack {method}: {type(e).__name__}")


class SlackEscalations:
    """Posts and updates escalation messages. A whole send (up to four Slack calls) runs
    under one request timeout, so the worker's lease covers it as one request."""

    name = "slack"

    def __init__(self, store: Store, slack: AsyncWebClient, timeout: float) -> None:
        self._store = store
        self._slack = slack
        self._timeout = timeout

    @property
    def requests_per_send(self) -> int:
        """A send's calls share one timeout, so its post may begin as that timeout nears
        its end, and Slack may go on with it for a timeout more: two, as the lease goes."""
        return 2

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        writing: list[bool] = []  # set once the post or update has begun
        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(answer, writing)
        except TimeoutError:
            # A post cut off may still land, for up to a timeout after it began: the retry
            # waits that long, so that its look for the message finds it.
            wait = self._timeout if writing else None
            raise RetryableError("Slack did not answer in time", retry_after=wait) from None

    async def _send(self, answer: Answer, writing: list[bool]) -> Outcome:
        view = await self._store.escalation_view(answer.id)
        ref = view.message
        if ref is None and view.triage is None:
            return Skipped("escalations are off in this channel")
        if ref is None and view.triage is not None and view.maybe_posted:
            ref = await self._posted_before(view.triage.channel, answer)
        message = render(answer, view, await self._permalink(answer), await self._text(answer))
        writing.append(True)
        if ref is not None:
            channel, _, ts = ref.partition(":")
            if await self._update(channel, ts, message):
                return Sent(ref)
            if view.triage is None:
                return Skipped("its message was deleted, and escalations are off in this channel")
        assert view.triage is not None
        channel = view.triage.channel
        try:
            posted = await self._slack.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                metadata=message.metadata,
                unfurl_links=False,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as e:
            raise slack_failure("chat.postMessage", e, channel) from None
        return Sent(f"{posted['channel']}:{posted['ts']}")

    async def _update(self, channel: str, ts: str, message: Message) -> bool:
        """Replace the message; False when it is gone (someone deleted it)."""
        try:
            await self._slack.chat_update(
                channel=channel, ts=ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as e:
            if e.response.get("error") in ("message_not_found", "cant_update_message"):
                return False
            raise slack_failure("chat.update", e, channel) from None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise slack_failure("chat.update", e, channel) from None
        return True

    async def _permalink(self, answer: Answer) -> str | None:
        try:
            return await permalink(self._slack, answer.channel, answer.ts)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise slack_failure("chat.getPermalink", e, answer.channel) from None

    async def _text(self, answer: Answer) -> str | None:
        """The answer's text, for its first lines; none without the history scope."""
        try:
            if answer.thread_ts and answer.thread_ts != answer.ts:
                page = await self._slack.conversations_replies(
                    channel=answer.channel,
                    ts=answer.thread_ts,
                    latest=answer.ts,
                    oldest=answer.ts,
                    inclusive=True,
                    limit=1,
                )
            else:
                page = await self._slack.conversations_history(
                    channel=answer.channel, latest=answer.ts, inclusive=True, limit=1
                )
        except SlackApiError:
            return None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise slack_failure("conversations.history", e, answer.channel) from None
        for m in page.get("messages") or []:
            if m.get("ts") == answer.ts:
                return str(m.get("text") or "") or None
        return None

    async def _posted_before(self, channel: str, answer: Answer) -> str | None:
        """The escalation message a cut-off send posted, found by its metadata."""
        try:
            page = await self._slack.conversations_history(
                channel=channel, limit=LOOK_BACK, include_all_metadata=True
            )
        except SlackApiError:
            return None  # no history scope: posting again is the lesser harm
        except (aiohttp.ClientError, TimeoutError) as e:
            raise slack_failure("conversations.history", e, channel) from None
        for m in page.get("messages") or []:
            metadata = m.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == EVENT_TYPE and payload == {
                "channel": answer.channel,
                "ts": answer.ts,
            }:
                return f"{channel}:{m['ts']}"
        return None
