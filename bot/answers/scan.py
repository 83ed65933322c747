"""`feedback-bot answers scan`: rebuild the answers of a channel from Slack. Every message in
its history (and in its threads) whose answer metadata comes from a trusted app, or from the
bot itself, is registered as the API would register it. The recovery path for a lost
database, and for answers posted while the bot was down.

It reads with conversations.history and conversations.replies (`include_all_metadata`),
page by page; Slack's rate limits are met by slack_sdk's retry handler, which waits as long
as Retry-After says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers.metadata import as_posted, is_answer_metadata
from bot.answers.self_registration import MetadataRegistrar, Outcome
from storage import StorageError

PAGE = 200  # messages per history page (Slack allows up to 999; it advises 200)


class ScanError(Exception):
    """Slack refused to show the channel; the message says what to change."""


@dataclass(slots=True)
class ScanCounts:
    messages: int = 0  # read, replies included
    found: int = 0  # carrying answer metadata
    registered: int = 0  # new (or replacing an unvoted mapping)
    known: int = 0  # already registered, the same mapping
    conflicts: int = 0  # already registered to another answer: left as it is
    untrusted: int = 0  # from an app nobody trusted: ignored
    invalid: int = 0  # metadata that does not make an answer (the log says why)
    removed: int = 0  # an admin removed the answer there: left removed
    untrusted_apps: set[str] = field(default_factory=set)

    def count(self, outcome: Outcome, app_id: str | None) -> None:
        self.found += 1
        match outcome:
            case Outcome.CREATED | Outcome.REPLACED:
                self.registered += 1
            case Outcome.UNCHANGED:
                self.known += 1
            case Outcome.CONFLICT:
                self.conflicts += 1
            case Outcome.UNTRUSTED:
                self.untrusted += 1
                self.untrusted_apps.add(app_id or "?")
            case Outcome.INVALID:
                self.invalid += 1
            case Outcome.ANSWER_REMOVED:
                self.removed += 1

    def json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "found": self.found,
            "registered": self.registered,
            "already_known": self.known,
            "conflicts": self.conflicts,
            "untrusted": self.untrusted,
            "invalid": self.invalid,
            "removed": self.removed,
            "untrusted_apps": sorted(self.untrusted_apps),
        }


async def scan(
    slack: AsyncWebClient,
    registrar: MetadataRegistrar,
    channel: str,
    oldest: float | None = None,
) -> ScanCounts:
    """Register the answers of `channel` posted since `oldest` (a Unix time; None: all)."""
    counts = ScanCounts()
    seen: set[str] = set()  # a reply also sent to the channel shows in both listings
    try:
        async for message in _messages(slack, channel, oldest):
            if message.get("ts") in seen:
                continue
            seen.add(str(message.get("ts")))
            counts.messages += 1
            if not is_answer_metadata(message.get("metadata")):
                continue
            posted = as_posted(message, channel)
            result = await registrar.register(posted, "scan")
            counts.count(result.outcome, posted.app_id)
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
        raise ScanError(
            f"could not reach Slack ({type(e).__name__}) after {counts.messages} messages"
            f" ({counts.registered} answers registered): run the scan again; what it"
            " registered is kept and counted as already known"
        ) from None
    except StorageError as e:
        raise ScanError(
            f"the database refused a registration after {counts.messages} messages ({e}):"
            " fix it and run the scan again"
        ) from None
    return counts


async def _messages(
    slack: AsyncWebClient, channel: str, oldest: float | None
) -> AsyncIterator[dict[str, Any]]:
    """The channel's messages since `oldest`, each thread's replies after their parent."""
    since = {"oldest": f"{oldest:.6f}"} if oldest is not None else {}
    history = _pages("conversations.history", slack.conversations_history, channel, **since)
    async for parent in history:
        yield parent
        if parent.get("reply_count") and parent.get("thread_ts") == parent.get("ts"):
            # Replies in a thread begun before `oldest` are not read: the history does not
            # show their parent.
            replies = _pages(
                "conversations.replies", slack.conversations_replies, channel, ts=parent["ts"]
            )
            async for reply in replies:
                if reply.get("ts") != parent.get("ts"):
                    yield reply


async def _pages(
    method: str, call: Callable[..., Awaitable[Any]], channel: str, **args: Any
) -> AsyncIterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        try:
            page = await call(
                channel=channel, limit=PAGE, include_all_metadata=True, cursor=cursor, **args
            )
        except SlackApiError as e:
            raise ScanError(_refusal(method, channel, e.response)) from None
        for message in page.get("messages") or ():
            yield dict(message)
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return


def _refusal(method: str, channel: str, response: Any) -> str:
    error = str(response.get("error", "unknown_error"))
    if error == "missing_scope":
        # Slack names the scope; private channels have C ids too, so the id cannot tell.
        needed = response.get("needed") or "channels:history (groups:history if it is private)"
        return (
            f"Slack refused {method} (missing_scope): add the {needed} scope to the app's bot"
            " scopes (OAuth & Permissions; groups:history for private channels, channels:history"
            " for public ones), then reinstall the app"
        )
    hints = {
        "not_in_channel": f"invite the bot to {channel} (/invite @feedback-bot)",
        "channel_not_found": f"check the channel id {channel}, and invite the bot to it",
    }
    hint = hints.get(error)
    return f"Slack refused {method} ({error})" + (f": {hint}" if hint else "")
