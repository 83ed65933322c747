"""Late registration: a reaction on a message the bot does not know yet is held, the message
looked up in Slack after the ack, and counted if a trusted app's answer metadata is on it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.channel_settings import WORKSPACE, ChannelSettings
from storage import Store
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.process import World
from tests.slack_payloads import ASSISTANT_APP, ASSISTANT_BOT, CHANNEL, answer_metadata
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn

ADMIN, ALICE, BOB = "U0ADMIN001", "U0ALICE001", "U0BOB00001"
HISTORY = ["channels:history", "groups:history"]


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_trusted_apps": (ASSISTANT_APP,)}


@pytest.fixture
async def standins(
    standins: tuple[SlackStandIn, ProviderStandIn, ProviderStandIn],
) -> tuple[SlackStandIn, ProviderStandIn, ProviderStandIn]:
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
    assert answer is not None and answer.message_id == metadata["event_payload"]["message_id"]
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
    with caplog.at_level(logging.WARNING, logger="bot.late_lookup"):
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
    await h.contextual.wait_for(1, timeout=10)  # the retry, 2 s later
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
    await world.slack_api.wait_for("conversations.history", timeout=10)
    await bot.kill()
    assert world.contextual.received == []

    del world.slack_api.delays["conversations.history"]
    again = world.bot(FEEDBACK_TRUSTED_APPS=ASSISTANT_APP)
    await again.start()
    [received] = await world.contextual.wait_for(1, timeout=15)
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
