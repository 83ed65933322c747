"""Late registration: a reaction on a message the bot does not know yet is held, the message
looked up in Slack after the ack, and counted if a trusted app's answer metadata is on it."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from bot.answers.late_lookup import LateLookup
from bot.answers.lookup_pace import Budget, RetrySchedule
from bot.config.channels import WORKSPACE, ChannelSettings
from storage import Store
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.process import World
from tests.slack_payloads import ASSISTANT_APP, ASSISTANT_BOT, CHANNEL, answer_metadata
from tests.standins import Standins

ADMIN, ALICE, BOB = "U0ADMIN001", "U0ALICE001", "U0BOB00001"
HISTORY = ["channels:history", "groups:history"]


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_trusted_apps": (ASSISTANT_APP,)}


@pytest.fixture
async def standins(
    standins: Standins,
) -> Standins:
    """The history scopes granted, before the bot starts (it reads them at start-up)."""
    standins[0].scopes += HISTORY
    return standins


@pytest.fixture
def h(harness: Harness) -> Harness:
    """The bot, with an admin."""
    harness.slack_api.add_user(ADMIN, admin=True)
    return harness


def by_assistant(h: Harness, metadata: object, **kw: Any) -> str:
    return h.slack_api.add_message(
        CHANNEL, app_id=ASSISTANT_APP, bot_id=ASSISTANT_BOT, metadata=metadata, **kw
    )


async def looked_up(h: Harness) -> None:
    assert h.bot.services is not None
    await wait_until(h.bot.services.late_lookup.idle)


async def held(h: Harness) -> list[tuple[Any, ...]]:
    return await query(h.store, "SELECT channel, ts, user_id, action FROM held_reactions")


async def test_a_reaction_on_an_unknown_trusted_answer_registers_it_and_counts(
    h: Harness,
) -> None:
    reply = await h.feedback(ADMIN, "late-lookup on")
    assert "held while the bot looks the message up" in reply and "scope" not in reply
    metadata = answer_metadata()
    ts = by_assistant(h, metadata)  # posted while the bot was away: no event came

    await h.slack.react(ALICE, "+1", ts)
    await h.slack.react(BOB, "-1", ts)
    await h.slack.unreact(ALICE, "+1", ts)
    received = await h.contextual.wait_for(1)
    await h.settled()
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.message_id == metadata["event_payload"]["message_id"]
    assert await held(h) == []
    # The three reactions counted, in order: Bob's 👎 is what stands.
    assert h.contextual.statuses()[-1] == "thumbs_down"
    assert received[0].body is not None
    assert received[0].body["message_id"] == metadata["event_payload"]["message_id"]
    rows = await query(h.store, "SELECT user_id, withdrawn_at IS NULL FROM votes ORDER BY id")
    assert rows == [(ALICE, 0), (BOB, 1)]
    assert len(h.slack_api.calls_to("conversations.history")) == 1
    assert "(late lookup)" in await h.feedback(ALICE, "status")


async def test_a_reply_in_a_thread_is_found_with_conversations_replies(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    question = h.slack_api.add_message(CHANNEL, user=ALICE, text="what is the refund window?")
    metadata = answer_metadata()
    ts = by_assistant(h, metadata, thread_ts=question)
    await h.slack.react(ALICE, "+1", ts)
    await h.contextual.wait_for(1)
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.thread_ts == question
    [replies] = h.slack_api.calls_to("conversations.replies")
    assert replies["ts"] == ts


async def test_no_answer_there_drops_the_reaction_and_remembers(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    chatter = h.slack_api.add_message(CHANNEL, user=BOB, text="lunch?")
    untrusted = h.slack_api.add_message(
        CHANNEL, app_id="A0OTHER001", bot_id="B0OTHER001", metadata=answer_metadata()
    )
    for ts in (chatter, untrusted):
        await h.slack.react(ALICE, "+1", ts)
        await looked_up(h)
        assert await held(h) == []
        assert await h.store.find_answer(CHANNEL, ts) is None
    calls = len(h.slack_api.calls_to("conversations.history"))
    # Remembered as no answer: another reaction costs no call, and is not held.
    await h.slack.react(BOB, "+1", chatter)
    await looked_up(h)
    assert len(h.slack_api.calls_to("conversations.history")) == calls
    await h.settled()
    assert h.contextual.received == []


async def test_off_by_default_and_without_trusted_apps(h: Harness) -> None:
    ts = by_assistant(h, answer_metadata())
    await h.slack.react(ALICE, "+1", ts)
    await looked_up(h)
    assert h.slack_api.calls_to("conversations.history") == []
    assert await held(h) == []


async def test_without_the_history_scope_it_says_which_to_add(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    for scope in HISTORY:
        h.slack_api.scopes.remove(scope)
    ts = by_assistant(h, answer_metadata())
    await h.feedback(ADMIN, "late-lookup on")
    with caplog.at_level(logging.WARNING, logger="bot.answers.late_lookup"):
        await h.slack.react(ALICE, "+1", ts)
        await looked_up(h)
    assert "missing_scope" in caplog.text and "add the channels:history scope" in caplog.text
    assert await held(h) == []


async def test_slack_failing_keeps_the_reaction_held_until_it_answers(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    ts = by_assistant(h, answer_metadata())
    h.slack_api.errors["conversations.history"] = "internal_error"
    await h.slack.react(ALICE, "+1", ts)
    await h.slack_api.wait_for("conversations.history")
    assert h.bot.services is not None
    assert not await h.bot.services.late_lookup.idle()  # a retry waits its turn
    assert [(r[1], r[2]) for r in await held(h)] == [(ts, ALICE)]
    del h.slack_api.errors["conversations.history"]
    await h.contextual.wait_for(1)  # the retry, 2 s later
    assert await held(h) == []


async def test_a_lookup_cut_off_by_sigkill_counts_the_reaction_after_restart(
    world: World, tmp_path: Path
) -> None:
    store = await Store.open(world.db)
    await ChannelSettings(store).set(WORKSPACE, "late_lookup", True, ADMIN)
    await store.close()
    metadata = answer_metadata()
    ts = world.slack_api.add_message(
        CHANNEL, app_id=ASSISTANT_APP, bot_id=ASSISTANT_BOT, metadata=metadata
    )
    world.slack_api.delays["conversations.history"] = 30.0  # the lookup never ends in time
    bot = world.bot(FEEDBACK_TRUSTED_APPS=ASSISTANT_APP)
    await bot.start()
    await world.slack(bot).react(ALICE, "+1", ts)  # acked: the reaction is held
    await world.slack_api.wait_for("conversations.history")
    await bot.kill()
    assert world.contextual.received == []

    del world.slack_api.delays["conversations.history"]
    again = world.bot(FEEDBACK_TRUSTED_APPS=ASSISTANT_APP)
    await again.start()
    [received] = await world.contextual.wait_for(1)
    assert received.body == {
        "message_id": metadata["event_payload"]["message_id"],
        "feedback": "thumbs_up",
    }
    assert f"late lookup: {CHANNEL}/{ts} is an answer" in again.text
    store = await Store.open(world.db)
    assert await query(store, "SELECT count(*) FROM held_reactions") == [(0,)]
    assert await query(store, "SELECT user_id, status FROM votes") == [(ALICE, "thumbs_up")]
    await store.close()
    assert await again.terminate() == 0


async def test_an_answer_an_admin_removed_stays_removed(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    metadata = answer_metadata()
    ts = by_assistant(h, metadata)
    await h.slack.react(ALICE, "+1", ts)
    await h.contextual.wait_for(1)
    assert await h.store.remove_answer(CHANNEL, ts, "a wrong mapping") is not None
    await h.slack.react(BOB, "-1", ts)
    await looked_up(h)
    assert await h.store.find_answer(CHANNEL, ts) is None
    assert await held(h) == []
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]


# ------------------------------------------------------------------ the budget (issue 18)


class Clock:
    """A monotonic clock that moves only when the test says, and sleeping on it: the
    budget's waits end when the test moves time on, never by the wall clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._moved = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        while self.now < until:
            self._moved.clear()
            await self._moved.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()


def budgeted(h: Harness, per_minute: int, clock: Clock) -> LateLookup:
    """The bot's late lookup, its budget on `clock`."""
    assert h.bot.services is not None
    lookup = h.bot.services.late_lookup
    lookup.budget = Budget(per_minute, clock=clock, sleep=clock.sleep)
    return lookup


def history_calls(h: Harness) -> int:
    return len(h.slack_api.calls_to("conversations.history"))


async def stalled(lookup: LateLookup) -> None:
    """Until the lookup waits for its budget, or has nothing left to do."""

    async def waiting() -> bool:
        return lookup.budget.blocked or await lookup.idle()

    await wait_until(waiting)


async def test_a_flood_on_unknown_messages_makes_no_more_calls_than_the_budget(
    h: Harness,
) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    clock = Clock()
    lookup = budgeted(h, 3, clock)
    chatter = [h.slack_api.add_message(CHANNEL, user=BOB, text=f"#{i}") for i in range(12)]
    for ts in chatter:
        for user in (ALICE, BOB):
            await h.slack.react(user, "+1", ts)
    await stalled(lookup)
    assert history_calls(h) == 3  # a minute's worth, at once
    assert lookup.status().waiting == 9  # each message queued once, for both reactions
    assert len(await held(h)) == 18
    status = await h.feedback(ALICE, "status")
    assert "9 lookups waiting; budget 3 Slack calls a minute, 0 left now" in status

    clock.advance(21)  # a third of a minute: one more call
    await wait_until(lambda: _at(lookup, waiting=8))
    assert history_calls(h) == 4
    clock.advance(3600)  # an hour idle still allows only a minute's worth at once
    await wait_until(lambda: _at(lookup, waiting=5))
    assert history_calls(h) == 7
    assert h.slack_api.calls_to("conversations.replies") == []  # each was found in history


async def _at(lookup: LateLookup, *, waiting: int) -> bool:
    return lookup.budget.blocked and lookup.status().waiting == waiting


async def test_reactions_held_before_the_lookup_answers_count_oldest_first_in_one_call(
    h: Harness,
) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    clock = Clock()
    lookup = budgeted(h, 5, clock)
    for _ in range(5):
        await lookup.budget.take()  # spent: the lookup waits until the clock moves
    metadata = answer_metadata()
    ts = by_assistant(h, metadata)
    chatter = h.slack_api.add_message(CHANNEL, user=BOB, text="lunch?")
    await h.slack.react(BOB, "+1", chatter)  # looked up first: the answer's lookup queues
    await h.slack.react(ALICE, "+1", ts)
    await h.slack.unreact(ALICE, "+1", ts)
    await h.slack.react(BOB, "+1", ts)
    await h.slack.react(BOB, "-1", ts)
    await h.slack.unreact(BOB, "+1", ts)
    await stalled(lookup)
    assert lookup.budget.blocked and history_calls(h) == 0
    assert [(r[2], r[3]) for r in await held(h) if r[1] == ts] == [
        (ALICE, "add"),
        (ALICE, "withdraw"),
        (BOB, "add"),
        (BOB, "add"),
        (BOB, "withdraw"),
    ]

    clock.advance(60)  # room for five calls: two are made
    await h.contextual.wait_for(1)
    await looked_up(h)
    await h.settled()
    assert history_calls(h) == 2  # five reactions on the answer, one lookup
    assert lookup.budget.left() == 3
    assert await held(h) == []
    # In the order they came: Alice took hers back, Bob's 👍 went and his 👎 stands.
    rows = await query(
        h.store, "SELECT user_id, status, withdrawn_at IS NULL FROM votes ORDER BY id"
    )
    assert rows == [(ALICE, "thumbs_up", 0), (BOB, "thumbs_up", 0), (BOB, "thumbs_down", 1)]
    assert h.contextual.statuses()[-1] == "thumbs_down"


async def test_a_429_pauses_lookups_for_its_retry_after(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    clock = Clock()
    lookup = budgeted(h, 3, clock)
    h.slack_api.rate_limited["conversations.history"] = 1
    h.slack_api.retry_after = 30
    ts = by_assistant(h, answer_metadata())
    chatter = h.slack_api.add_message(CHANNEL, user=BOB, text="lunch?")
    await h.slack.react(ALICE, "+1", ts)
    await h.slack.react(ALICE, "+1", chatter)
    await stalled(lookup)
    # The refused call is not made again, by slack_sdk or by the lookup, while paused.
    assert history_calls(h) == 1
    assert lookup.status().waiting == 2 and lookup.status().paused_for == 30
    assert "paused 30 s more: Slack said rate limited" in await h.feedback(ALICE, "status")

    clock.advance(30)
    await h.contextual.wait_for(1)
    # Right after the pause one call, not a burst: the next waits for the bucket.
    await wait_until(lambda: _at(lookup, waiting=1))
    assert history_calls(h) == 2
    clock.advance(20)
    await looked_up(h)
    assert history_calls(h) == 3 and await held(h) == []


async def test_missing_scope_stops_lookups_until_the_scope_is_granted(h: Harness) -> None:
    for scope in HISTORY:
        h.slack_api.scopes.remove(scope)
    await h.feedback(ADMIN, "late-lookup on")
    first = by_assistant(h, answer_metadata())
    await h.slack.react(ALICE, "+1", first)
    await looked_up(h)
    assert history_calls(h) == 1
    auth_tests = len(h.slack_api.calls_to("auth.test"))

    others = [by_assistant(h, answer_metadata()) for _ in range(5)]
    for ts in others:
        await h.slack.react(ALICE, "+1", ts)
        await h.slack.react(BOB, "-1", ts)
    await looked_up(h)
    assert history_calls(h) == 1  # stopped: no call, nothing held
    assert len(h.slack_api.calls_to("auth.test")) == auth_tests
    assert await held(h) == []
    status = await h.feedback(ALICE, "status")
    assert "Late lookup stopped: missing scope channels:history and groups:history" in status

    # Granted and the app reinstalled; the admin turns late lookup on again, and the bot
    # reads its scopes at once (auth.test, no history call).
    h.slack_api.scopes += HISTORY
    await h.feedback(ADMIN, "late-lookup on")
    assert h.bot.services is not None
    lookup = h.bot.services.late_lookup

    async def resumed() -> bool:
        return not lookup.status().missing_scopes

    await wait_until(resumed)
    await h.slack.react(BOB, "+1", others[0])
    await h.contextual.wait_for(1)
    assert history_calls(h) == 2
    assert "stopped" not in await h.feedback(ALICE, "status")


async def test_a_reaction_on_the_bot_s_own_prompt_is_never_held_or_looked_up(
    h: Harness,
) -> None:
    await h.feedback(ADMIN, "prompt on")
    await h.feedback(ADMIN, "late-lookup on")
    a = await h.contextual_answer()
    answer = await h.store.find_answer(CHANNEL, a["ts"])
    assert answer is not None and answer.prompt_ts is not None
    await h.slack.react(ALICE, "+1", answer.prompt_ts)
    await h.slack.react(BOB, "-1", answer.prompt_ts)
    await looked_up(h)
    assert await held(h) == []
    assert history_calls(h) == 0 and h.slack_api.calls_to("conversations.replies") == []
    await h.settled()
    assert h.contextual.received == []


async def test_the_miss_cache_forgets_the_oldest_first(h: Harness) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    assert h.bot.services is not None
    h.bot.services.late_lookup.misses_kept = 2
    a, b, c = (h.slack_api.add_message(CHANNEL, user=BOB, text=t) for t in "abc")
    for ts in (a, b, c):
        await h.slack.react(ALICE, "+1", ts)
        await looked_up(h)
    assert history_calls(h) == 3
    await h.slack.react(BOB, "+1", c)  # still remembered as no answer: no call
    await looked_up(h)
    assert history_calls(h) == 3
    await h.slack.react(BOB, "+1", a)  # the oldest, forgotten: looked up again
    await looked_up(h)
    assert history_calls(h) == 4
    assert await held(h) == []


def test_lookup_retries_double_from_2_s_up_to_5_min() -> None:
    schedule = RetrySchedule()
    pauses = [schedule.pause(n) for n in range(1, 11)]
    assert pauses == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert schedule.pause(100_000) == 300


async def test_a_failing_lookup_waits_by_its_retry_schedule(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await h.feedback(ADMIN, "late-lookup on")
    assert h.bot.services is not None
    h.bot.services.late_lookup.retry = RetrySchedule(first=0.01, cap=0.04)
    ts = by_assistant(h, answer_metadata())
    h.slack_api.errors["conversations.history"] = "internal_error"
    with caplog.at_level(logging.WARNING, logger="bot.answers.late_lookup"):
        await h.slack.react(ALICE, "+1", ts)
        await h.slack_api.wait_for("conversations.history", count=5)
        del h.slack_api.errors["conversations.history"]
        await h.contextual.wait_for(1)
    pauses = re.findall(r"trying again in ([0-9.]+) s", caplog.text)
    assert pauses[:4] == ["0.01", "0.02", "0.04", "0.04"]
