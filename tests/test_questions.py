"""The question claims the bot answers through (bot/ask/), on both backends: a question is
answered once whoever receives it, one asker's second question in a thread waits for the
first, a dead holder's claim runs out, and a thread keeps its agent's conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storage import Asking, QuestionClaim, QuestionEnd, Store

CHANNEL, THREAD, ALICE, BOB = "C0ASK00001", "1700000000.000100", "U0ALICE001", "U0BOB00001"
AGENT, CONVERSATION = "3c90c3cc-0d44-4b50-8888-8dd25736052a", "0e5b1f8a-2c3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    opened = await Store.open(database)
    yield opened
    await opened.close()


async def test_a_question_is_claimed_once_and_done_once_answered(store: Store) -> None:
    first = await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "replica-1", 30)
    assert first.claim is QuestionClaim.CLAIMED and first.conversation_id is None
    # Slack sends the event again, to the same replica or another.
    again = await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "replica-2", 30)
    assert again.claim is QuestionClaim.BUSY
    assert await store.finish_question(
        CHANNEL,
        THREAD,
        "replica-1",
        QuestionEnd(True, "1700000001.000100", (AGENT, CONVERSATION)),
    )
    done = await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "replica-2", 30)
    assert done.claim is QuestionClaim.DONE
    assert await store.thread_conversation(CHANNEL, THREAD) == (AGENT, CONVERSATION)
    # A follow-up in the thread continues the conversation.
    follow_up = await store.claim_question(
        Asking(CHANNEL, "1700000002.000100", THREAD, BOB), "r1", 30
    )
    assert (follow_up.claim, follow_up.agent_id, follow_up.conversation_id) == (
        QuestionClaim.CLAIMED,
        AGENT,
        CONVERSATION,
    )


async def test_two_replicas_claiming_at_once_get_one_claim(store: Store) -> None:
    results = await asyncio.gather(
        *(
            store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), f"replica-{n}", 30)
            for n in range(8)
        )
    )
    assert sorted(r.claim.value for r in results) == ["busy"] * 7 + ["claimed"]


async def test_an_askers_second_question_waits_for_the_first_and_others_do_not(
    store: Store,
) -> None:
    await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "r1", 30)
    second = await store.claim_question(
        Asking(CHANNEL, "1700000003.000100", THREAD, ALICE), "r1", 30
    )
    assert second.claim is QuestionClaim.BUSY
    other = await store.claim_question(Asking(CHANNEL, "1700000004.000100", THREAD, BOB), "r1", 30)
    assert other.claim is QuestionClaim.CLAIMED
    # A failure said is an end too: asking again is a new question.
    assert await store.finish_question(CHANNEL, THREAD, "r1", QuestionEnd(False))
    assert await store.thread_conversation(CHANNEL, THREAD) is None
    third = await store.claim_question(
        Asking(CHANNEL, "1700000005.000100", THREAD, ALICE), "r1", 30
    )
    assert third.claim is QuestionClaim.CLAIMED


async def test_a_dead_holders_claim_runs_out_and_its_late_outcome_is_not_recorded(
    store: Store,
) -> None:
    await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "crashed", 0.2)
    await asyncio.sleep(0.25)
    taken = await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "survivor", 30)
    assert taken.claim is QuestionClaim.CLAIMED
    late = await store.finish_question(CHANNEL, THREAD, "crashed", QuestionEnd(True, "1.0"))
    assert late is False
    assert await store.finish_question(CHANNEL, THREAD, "survivor", QuestionEnd(True, "2.0"))
    assert (
        await store.claim_question(Asking(CHANNEL, THREAD, THREAD, ALICE), "x", 30)
    ).claim.value == "done"
