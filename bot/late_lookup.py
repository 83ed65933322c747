"""Late registration: a reaction on a message that is not a registered answer, in a channel
with `/feedback late-lookup on` and trusted apps, is held (storage/held.py, in the same
transaction that marks its event processed), acked, and the message looked up in Slack
afterwards. If it carries trusted answer metadata, the registration applies the held
reactions (storage/store.py: _register); if not, they are dropped and the message is
remembered as no answer for an hour, so that further reactions on it cost nothing.

The cost: one conversations.history call (and, for a thread reply, one
conversations.replies) per unknown reacted message, never on the ack path. It needs the
channels:history / groups:history scopes. A restarted bot looks up whatever was held when
it stopped, so a crash during a lookup loses no reaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channel_settings import ChannelOptions
from bot.metadata_registrar import MetadataRegistrar, Outcome
from bot.metadata_schema import as_posted, is_answer_metadata
from storage import StorageError, Store

log = logging.getLogger(__name__)

MISS_TTL = 3600.0  # how long a message found to be no answer stays so
MISSES_KEPT = 10_000  # the most such messages remembered (the oldest are forgotten first)
RETRY_FIRST = 2.0  # a lookup Slack could not answer is tried again after 2 s, 4 s … 5 min
RETRY_MAX = 300.0
GIVE_UP_AFTER = 86400.0  # reactions held this long are dropped (with a warning)
# Slack's answers that no retry will change: the reactions are dropped.
# (A token Slack refuses is not among them: the reactions wait while an admin fixes it.)
_PERMANENT = {"missing_scope", "not_in_channel", "channel_not_found", "thread_not_found"}
_NOT_THERE = {"thread_not_found"}  # the message is gone: nothing to tell an admin
_SCOPE_HINT = (
    "add the channels:history scope (groups:history for private channels) under OAuth &"
    " Permissions and reinstall the app, or turn late lookup off (/feedback late-lookup off)"
)

Key = tuple[str, str]


class LateLookup:
    def __init__(
        self,
        store: Store,
        slack: AsyncWebClient,
        registrar: MetadataRegistrar,
        on_votes: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._slack = slack
        self._registrar = registrar
        self._on_votes = on_votes  # held reactions applied: the delivery worker is told
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._retries: dict[Key, float] = {}  # the next pause for a message Slack failed on
        self._misses: OrderedDict[Key, float] = OrderedDict()  # message -> until when
        self._task: asyncio.Task[None] | None = None
        self._waits: set[asyncio.Task[None]] = set()  # retries waiting their turn
        self._waiting: set[Key] = set()  # the messages those retries are for
        self._warned: set[str] = set()

    def wants(self, channel: str, ts: str, config: ChannelOptions) -> bool:
        """Should a reaction on unknown message (channel, ts) be held? No I/O: the ack
        path asks."""
        if not (config.late_lookup and config.trusted_apps):
            return False
        until = self._misses.get((channel, ts))
        if until is None:
            return True
        if until > time.monotonic():
            return False
        del self._misses[(channel, ts)]
        return True

    def forget_misses(self) -> None:
        """Trust or late lookup changed: what was no answer may be one now."""
        self._misses.clear()

    def request(self, channel: str, ts: str) -> None:
        key = (channel, ts)
        if key not in self._queued and key not in self._waiting:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def start(self) -> None:
        """Look up what was held when the bot last stopped, then whatever comes."""
        for message in await self._store.held_messages():
            self.request(message.channel, message.ts)
        self._task = asyncio.create_task(self._run(), name="late lookup")

    async def stop(self, grace: float) -> None:
        for wait in self._waits:
            wait.cancel()
        if self._task is None:
            return
        # What is left stays held in the database: the next start looks it up.
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=grace)

    async def idle(self) -> bool:
        """Nothing queued, being looked up or waiting for a retry (tests wait for this)."""
        return not self._queued and not self._waiting

    async def _run(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                await self._look_up(*key)
            except Exception:
                log.exception("the late lookup of %s/%s failed; it is tried again", *key)
                self._retry_later(key)
            finally:
                self._queued.discard(key)

    async def _look_up(self, channel: str, ts: str) -> None:
        where = f"{channel}/{ts}"
        try:
            message = await self._find(channel, ts)
        except SlackApiError as e:
            error = str(e.response.get("error", "unknown_error"))
            if error not in _PERMANENT:
                log.warning("Slack refused the late lookup of %s (%s): trying again", where, error)
                self._retry_later((channel, ts), _retry_after(e))
                return
            if error in _NOT_THERE:
                log.debug("late lookup of %s: the message is gone (%s)", where, error)
            else:
                self._warn_once(error, where)
            message = None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
            log.warning(
                "could not reach Slack to look up %s (%s): trying again", where, type(e).__name__
            )
            self._retry_later((channel, ts))
            return
        self._retries.pop((channel, ts), None)
        if message is not None and is_answer_metadata(message.get("metadata")):
            result = await self._registrar.register(as_posted(message, channel), "lookup")
            if result.answer is not None and result.outcome is not Outcome.REMOVED:
                log.info(
                    "late lookup: %s is an answer (%s); its held reactions are counted",
                    where,
                    result.outcome.value,
                )
                return
        await self._miss(channel, ts)

    async def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message, with its metadata: in the channel's history, else in a thread."""
        window: dict[str, Any] = {"latest": ts, "oldest": ts, "inclusive": True}
        page = await self._slack.conversations_history(
            channel=channel, limit=1, include_all_metadata=True, **window
        )
        for message in page.get("messages") or ():
            if message.get("ts") == ts:
                return dict(message)
        # A thread reply is not in the history; conversations.replies finds it from its own
        # ts (the thread's parent comes first).
        page = await self._slack.conversations_replies(
            channel=channel, ts=ts, limit=10, include_all_metadata=True, **window
        )
        for message in page.get("messages") or ():
            if message.get("ts") == ts:
                return dict(message)
        return None

    async def _miss(self, channel: str, ts: str) -> None:
        dropped, queued = await self._store.drop_held(channel, ts)
        if queued and self._on_votes is not None:
            self._on_votes()  # registered meanwhile: its held reactions were counted
        log.debug(
            "late lookup: %s/%s is no trusted answer; %d held reaction(s) dropped",
            channel,
            ts,
            dropped,
        )
        self._misses[(channel, ts)] = time.monotonic() + MISS_TTL
        self._misses.move_to_end((channel, ts))
        while len(self._misses) > MISSES_KEPT:
            self._misses.popitem(last=False)

    def _retry_later(self, key: Key, after: float | None = None) -> None:
        pause = self._retries.get(key, RETRY_FIRST)
        self._retries[key] = min(pause * 2, RETRY_MAX)
        self._waiting.add(key)
        wait = after if after is not None else pause
        task = asyncio.create_task(self._again(key, wait), name=f"late lookup retry {key}")
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)

    async def _again(self, key: Key, pause: float) -> None:
        await asyncio.sleep(pause)
        try:
            message = await self._store.held_message(*key)
            if message is not None and time.time() - message.first_at > GIVE_UP_AFTER:
                dropped, _ = await self._store.drop_held(*key)
                log.warning(
                    "late lookup: gave up on %s/%s after a day of failures; %d held"
                    " reaction(s) dropped",
                    *key,
                    dropped,
                )
                message = None
        except StorageError as e:
            log.warning("cannot read the held reactions (%s): trying again", e)
            self._waiting.discard(key)
            self._retry_later(key)
            return
        self._waiting.discard(key)
        if message is None:
            # Registered meanwhile (the API, an event), or given up: nothing left to do.
            self._retries.pop(key, None)
            return
        self.request(*key)

    def _warn_once(self, error: str, where: str) -> None:
        hint = _SCOPE_HINT if error == "missing_scope" else "invite the bot to the channel"
        if error in self._warned:
            log.debug("late lookup of %s refused (%s)", where, error)
            return
        self._warned.add(error)
        log.warning(
            "late lookup of %s refused by Slack (%s): %s; reactions on unknown messages are"
            " dropped meanwhile",
            where,
            error,
            hint,
        )


def _retry_after(error: SlackApiError) -> float | None:
    """Slack's Retry-After on a 429 (slack_sdk's own retry already waited once)."""
    raw = (error.response.headers or {}).get("Retry-After") if error.response else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
