"""Late registration: a reaction on a message that is not a registered answer, in a channel
with `/feedback late-lookup on` and trusted apps, is held (storage/sqlite/held.py, in the same
transaction that marks its event processed), acked, and the message looked up in Slack
afterwards. If it carries trusted answer metadata, the registration applies the held
reactions (storage/store.py: _register); if not, they are dropped and the message is
remembered as no answer for an hour, so that further reactions on it cost nothing.

The cost: one conversations.history call (and, for a thread reply, one
conversations.replies) per unknown reacted message, never on the ack path, and never more
than the budget allows. It needs the channels:history / groups:history scopes. A restarted
bot looks up whatever was held when it stopped, so a crash during a lookup loses no
reaction.

Slack limits history reads hard (since 2026-03-03 a commercially distributed app outside the
Marketplace gets one call a minute; internal and Marketplace apps Tier 3, about 50), so a
flood of reactions must not become a flood of calls:
- one lookup per message: a message waiting for its lookup is queued once, however many
  reactions come for it;
- a token bucket (`Budget`, FEEDBACK_LOOKUP_PER_MINUTE) paces every call, and a 429 pauses it
  for Slack's Retry-After (slack_sdk's own 429 retry is off for these calls: it would spend a
  call the bucket never granted);
- `missing_scope` stops lookups (in that channel; everywhere when the token has no history
  scope at all) until the token's scopes change (bot/answers/lookup_scopes.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers.lookup_pace import Budget, RetrySchedule, retry_after
from bot.answers.lookup_scopes import ScopeStops
from bot.answers.metadata import as_posted, is_answer_metadata
from bot.answers.self_registration import MetadataRegistrar, Outcome
from bot.config.channels import ChannelOptions
from bot.slack.api import without_rate_limit_retries
from storage import StorageError, Store

log = logging.getLogger(__name__)

MISS_TTL = 3600.0  # how long a message found to be no answer stays so
MISSES_KEPT = 10_000  # the most such messages remembered (the oldest are forgotten first)
GIVE_UP_AFTER = 86400.0  # reactions held this long are dropped (with a warning)
PER_MINUTE = 20  # Slack calls a minute, by default (FEEDBACK_LOOKUP_PER_MINUTE)
RATE_LIMITED_PAUSE = 60.0  # a 429 without a usable Retry-After pauses the budget this long
# Slack's answers that no retry will change: the reactions are dropped.
# (A token Slack refuses is not among them: the reactions wait while an admin fixes it.)
_PERMANENT = {"missing_scope", "not_in_channel", "channel_not_found", "thread_not_found"}
_NOT_THERE = {"thread_not_found"}  # the message is gone: nothing to tell an admin
_SCOPE_HINT = (
    "add the channels:history scope (groups:history for private channels) under OAuth &"
    " Permissions and reinstall the app, or turn late lookup off (/feedback late-lookup off)"
)

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class LookupStatus:
    """What `/feedback status` says of late lookup."""

    waiting: int  # messages queued for their lookup (or waiting for a retry)
    per_minute: int
    left: int  # calls the budget allows now
    paused_for: float  # seconds a 429 still pauses lookups
    missing_scopes: tuple[str, ...]  # what Slack said the token lacks
    stopped_everywhere: bool  # no channel can be read: nothing is held or looked up
    stopped_channels: int  # channels refused for a missing scope (when not everywhere)


class LateLookup:
    def __init__(
        self,
        store: Store,
        slack: AsyncWebClient,
        registrar: MetadataRegistrar,
        on_votes: Callable[[], None] | None = None,
        *,
        per_minute: int = PER_MINUTE,
        misses_kept: int = MISSES_KEPT,
        retry: RetrySchedule | None = None,
    ) -> None:
        self._store = store
        # A 429 is the budget's to handle: no hidden second call.
        self._slack = without_rate_limit_retries(slack)
        self._registrar = registrar
        self._on_votes = on_votes  # held reactions applied: the delivery worker is told
        # Public, so that a test can give a budget on a clock of its own, a smaller cache,
        # shorter retries or re-checks.
        self.budget = Budget(per_minute)
        self.misses_kept = misses_kept
        self.retry = retry or RetrySchedule()
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._failures: dict[Key, int] = {}  # failures in a row, for a message Slack failed on
        self._misses: OrderedDict[Key, float] = OrderedDict()  # message -> until when
        self._task: asyncio.Task[None] | None = None
        self._waits: set[asyncio.Task[None]] = set()  # retries waiting their turn
        self._waiting: set[Key] = set()  # the messages those retries are for
        self._warned: set[str] = set()
        # Once a missing scope is granted, its refusals are worth a warning again.
        self._scopes = ScopeStops(self._slack, lambda: self._warned.discard("missing_scope"))
        self._looking: Key | None = None  # the message being looked up
        self._asked_again = False  # a reaction on it was held meanwhile

    def wants(self, channel: str, ts: str, config: ChannelOptions) -> bool:
        """Should a reaction on unknown message (channel, ts) be held? No I/O: the ack
        path asks."""
        if not (config.late_lookup and config.trusted_apps) or self._scopes.stopped_in(channel):
            return False
        until = self._misses.get((channel, ts))
        if until is None:
            return True
        if until > time.monotonic():
            return False
        del self._misses[(channel, ts)]
        return True

    def _missed(self, key: Key) -> bool:
        until = self._misses.get(key)
        return until is not None and until > time.monotonic()

    def forget_misses(self) -> None:
        """Trust or late lookup changed: what was no answer may be one now, and an admin
        may have granted the scopes that were missing."""
        self._misses.clear()
        self._scopes.recheck_now()

    def request(self, channel: str, ts: str) -> None:
        key = (channel, ts)
        if key == self._looking:
            # Held while its lookup was under way, perhaps after that lookup dropped what
            # was held: seen to once the lookup ends (no second call).
            self._asked_again = True
        elif key not in self._queued and key not in self._waiting:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def status(self) -> LookupStatus:
        everywhere = self._scopes.everywhere()
        return LookupStatus(
            waiting=len(self._queued | self._waiting),
            per_minute=self.budget.per_minute,
            left=self.budget.left(),
            paused_for=self.budget.paused_for(),
            missing_scopes=self._scopes.missing,
            stopped_everywhere=everywhere,
            stopped_channels=0 if everywhere else self._scopes.channels,
        )

    async def start(self) -> None:
        """Look up what was held when the bot last stopped, then whatever comes."""
        for message in await self._store.held_messages():
            self.request(message.channel, message.ts)
        self._task = asyncio.create_task(self._run(), name="late lookup")

    async def stop(self, grace: float) -> None:
        for wait in self._waits:
            wait.cancel()
        self._scopes.cancel()
        if self._task is None:
            return
        # What is left stays held in the database: the next start looks it up.
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=grace)

    async def idle(self) -> bool:
        """Nothing queued, being looked up or waiting for a retry (tests wait for this)."""
        return (
            not self._queued and not self._waiting and self._looking is None and self._queue.empty()
        )

    async def _run(self) -> None:
        while True:
            key = await self._queue.get()
            again = False
            self._looking, self._asked_again = key, False
            try:
                again = await self._look_up(*key)
                if self._asked_again and (self._missed(key) or self._scopes.stopped_in(key[0])):
                    # Held while the lookup ran, perhaps after it dropped what was held:
                    # dropped too, without a second call. (After a registration there is
                    # nothing to do: it applied what was held, and later ones found it.)
                    await self._drop(*key, remember=False)
            except Exception:
                log.exception("the late lookup of %s/%s failed; it is tried again", *key)
                self._retry_later(key)
            finally:
                self._looking = None
                if again:
                    self._queue.put_nowait(key)  # still queued: no second entry for it
                else:
                    self._queued.discard(key)

    async def _look_up(self, channel: str, ts: str) -> bool:
        """Look one message up; True when it is to be looked up again once the budget
        allows (Slack said the call was over its limit)."""
        where = f"{channel}/{ts}"
        if self._missed((channel, ts)):
            # Found to be no answer a moment ago; a reaction held since then is dropped.
            await self._drop(channel, ts, remember=False)
            return False
        if self._scopes.stopped_in(channel):
            # Stopped after it was queued: Slack would refuse it as it refused the others.
            await self._drop(channel, ts, remember=False)
            return False
        try:
            message = await self._find(channel, ts)
        except SlackApiError as e:
            if e.response.status_code == 429:
                pause = retry_after(e) or RATE_LIMITED_PAUSE
                self.budget.pause(pause)
                log.warning(
                    "Slack rate-limited the late lookup of %s: lookups pause for %g s", where, pause
                )
                return True
            error = str(e.response.get("error", "unknown_error"))
            if error not in _PERMANENT:
                self._retry_later((channel, ts), retry_after(e), f"Slack refused it ({error})")
                return False
            if error in _NOT_THERE:
                log.debug("late lookup of %s: the message is gone (%s)", where, error)
            else:
                self._warn_once(error, where)
            if error == "missing_scope":
                await self._scopes.stop(channel, str(e.response.get("needed") or ""))
                # Not remembered as no answer: once the scope is granted, it may be one.
                await self._drop(channel, ts, remember=False)
                return False
            message = None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
            self._retry_later((channel, ts), None, f"could not reach Slack ({type(e).__name__})")
            return False
        self._failures.pop((channel, ts), None)
        if message is not None and is_answer_metadata(message.get("metadata")):
            result = await self._registrar.register(as_posted(message, channel), "lookup")
            if result.answer is not None and result.outcome is not Outcome.ANSWER_REMOVED:
                log.info(
                    "late lookup: %s is an answer (%s); its held reactions are counted",
                    where,
                    result.outcome.value,
                )
                return False
        await self._drop(channel, ts, remember=True)
        return False

    async def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message, with its metadata: in the channel's history, else in a thread."""
        window: dict[str, Any] = {"latest": ts, "oldest": ts, "inclusive": True}
        await self.budget.take()
        page = await self._slack.conversations_history(
            channel=channel, limit=1, include_all_metadata=True, **window
        )
        for message in page.get("messages") or ():
            if message.get("ts") == ts:
                return dict(message)
        # A thread reply is not in the history; conversations.replies finds it from its own
        # ts (the thread's parent comes first).
        await self.budget.take()
        page = await self._slack.conversations_replies(
            channel=channel, ts=ts, limit=10, include_all_metadata=True, **window
        )
        for message in page.get("messages") or ():
            if message.get("ts") == ts:
                return dict(message)
        return None

    async def _drop(self, channel: str, ts: str, *, remember: bool) -> None:
        """No trusted answer there (or none to be found): drop its held reactions, and
        when `remember`, remember it as no answer."""
        dropped, queued = await self._store.drop_held(channel, ts)
        if queued and self._on_votes is not None:
            self._on_votes()  # registered meanwhile: its held reactions were counted
        log.debug(
            "late lookup: %s/%s is no trusted answer; %d held reaction(s) dropped",
            channel,
            ts,
            dropped,
        )
        if not remember:
            return
        self._misses[(channel, ts)] = time.monotonic() + MISS_TTL
        self._misses.move_to_end((channel, ts))
        while len(self._misses) > self.misses_kept:
            self._misses.popitem(last=False)

    @property
    def recheck_every(self) -> float:
        """How often auth.test is asked while stopped for a missing scope (public, so that
        a test can shorten it)."""
        return self._scopes.recheck_every

    @recheck_every.setter
    def recheck_every(self, seconds: float) -> None:
        self._scopes.recheck_every = seconds

    # ------------------------------------------------------------ retries

    def _retry_later(self, key: Key, after: float | None = None, why: str = "it failed") -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        wait = after if after is not None else self.retry.pause(failures)
        log.warning("late lookup of %s/%s: %s; trying again in %g s", *key, why, wait)
        self._waiting.add(key)
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
            self._failures.pop(key, None)
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
