"""The Contextual query client the bot answers questions with, against a stand-in agent that
checks every request against the vendored spec (tests/contracts/contextual-query.openapi.yaml)
and answers with retrievals and attributions, or fails on demand."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.ask.agent import ContextualAgent
from bot.providers import PermanentError, RetryableError
from tests.credentials import CONTEXTUAL_KEY
from tests.slack_payloads import new_uuid
from tests.standins.providers import ProviderStandIn

AGENT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
TIMEOUT = 0.5


@pytest.fixture
async def agent() -> AsyncIterator[ProviderStandIn]:
    stand_in = ProviderStandIn("agent", CONTEXTUAL_KEY, timeout=TIMEOUT)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()
    assert stand_in.violations == []


@pytest.fixture
async def client(agent: ProviderStandIn) -> AsyncIterator[ContextualAgent]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield ContextualAgent(session, agent.base_url, lambda: CONTEXTUAL_KEY, timeout=timeout)


def soon(seconds: float = 2.5) -> float:
    return time.monotonic() + seconds


async def test_a_question_gets_the_answer_its_id_and_the_sources_it_cites(
    agent: ProviderStandIn, client: ContextualAgent
) -> None:
    agent.retrievals = [
        ("Refund policy", 4, "https://docs.example.com/refunds", True),
        ("Old FAQ", None, None, False),  # retrieved, not cited: not shown
        ("Terms", None, None, True),
    ]
    answer = await client.ask(AGENT, "How long is the refund window?", None, deadline=soon())
    [sent] = agent.received
    assert sent.path == f"/v1/agents/{AGENT}/query"
    assert sent.body == {
        "messages": [{"role": "user", "content": "How long is the refund window?"}],
        "stream": False,
    }
    [given] = agent.answered
    assert (answer.text, answer.message_id) == (agent.reply, given["message_id"])
    assert answer.conversation_id == given["conversation_id"]
    contents = given["retrieval_contents"]
    assert [(s.content_id, s.label, s.url) for s in answer.sources] == [
        (contents[0]["content_id"], "Refund policy, p. 4", "https://docs.example.com/refunds"),
        (contents[2]["content_id"], "Terms", None),
    ]
    # A follow-up continues the conversation.
    again = await client.ask(AGENT, "And for gifts?", answer.conversation_id, deadline=soon())
    assert agent.received[1].body == {
        "messages": [{"role": "user", "content": "And for gifts?"}],
        "stream": False,
        "conversation_id": answer.conversation_id,
    }
    assert again.conversation_id == answer.conversation_id
    assert again.message_id != answer.message_id


async def test_an_answer_citing_nothing_lists_what_was_retrieved(
    agent: ProviderStandIn, client: ContextualAgent
) -> None:
    agent.retrievals = [("Handbook", 2, None, False), ("Wiki", None, None, False)]
    answer = await client.ask(AGENT, "Hi?", None, deadline=soon())
    assert [s.label for s in answer.sources] == ["Handbook, p. 2", "Wiki"]


@pytest.mark.parametrize(
    ("fail", "retry_after"), [(500, None), (503, None), (429, "0.2"), (408, None)]
)
async def test_one_retryable_failure_is_tried_again_once(
    agent: ProviderStandIn, client: ContextualAgent, fail: int, retry_after: str | None
) -> None:
    agent.fail(fail, retry_after=retry_after)
    answer = await client.ask(AGENT, "Still there?", None, deadline=soon())
    assert answer.message_id == agent.answered[0]["message_id"]
    refused, taken = agent.attempts
    if retry_after:
        assert taken.start - refused.end >= float(retry_after) * 0.9


async def test_two_failures_or_a_wait_past_the_deadline_give_up(
    agent: ProviderStandIn, client: ContextualAgent
) -> None:
    agent.fail(502, times=2)
    with pytest.raises(RetryableError, match="HTTP 502"):
        await client.ask(AGENT, "Anyone?", None, deadline=soon())
    assert len(agent.attempts) == 2
    agent.fail(429, retry_after="30")  # longer than Slack's patience: not waited for
    started = time.monotonic()
    with pytest.raises(RetryableError, match="HTTP 429") as raised:
        await client.ask(AGENT, "Anyone?", None, deadline=soon())
    assert time.monotonic() - started < 1.0 and raised.value.retry_after == 30
    agent.hang(5.0, times=2)  # past the client's timeout, twice
    with pytest.raises(RetryableError, match="timed out"):
        await client.ask(AGENT, "Anyone?", None, deadline=soon())


async def test_refusals_and_answers_the_api_does_not_describe_are_permanent(
    agent: ProviderStandIn, client: ContextualAgent
) -> None:
    agent.fail(422)
    with pytest.raises(PermanentError, match="HTTP 422"):
        await client.ask(AGENT, "?", None, deadline=soon())
    agent.api_key = "someone-elses-key-000000"
    with pytest.raises(PermanentError, match="HTTP 401") as raised:
        await client.ask(AGENT, "?", None, deadline=soon())
    assert CONTEXTUAL_KEY not in str(raised.value)
    agent.api_key = CONTEXTUAL_KEY
    agent.answer(b'{"conversation_id": "not-a-uuid", "retrieval_contents": []}')
    with pytest.raises(PermanentError, match=r"does not describe \(conversation_id\)"):
        await client.ask(AGENT, "?", None, deadline=soon())
    agent.answer(f'{{"conversation_id": "{new_uuid()}", "retrieval_contents": []}}'.encode())
    with pytest.raises(PermanentError, match="without a message"):
        await client.ask(AGENT, "?", None, deadline=soon())


async def test_without_a_key_nothing_is_sent(agent: ProviderStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        keyless = ContextualAgent(session, agent.base_url, lambda: None)
        with pytest.raises(PermanentError, match="CONTEXTUAL_API_KEY"):
            await keyless.ask(AGENT, "?", None, deadline=soon())
    assert agent.attempts == []


async def test_no_request_runs_past_the_deadline(
    agent: ProviderStandIn, client: ContextualAgent
) -> None:
    agent.hang(5.0, times=2)
    started = time.monotonic()
    with pytest.raises(RetryableError, match="timed out"):
        await client.ask(AGENT, "?", None, deadline=started + 0.3)  # before the 0.5 s timeout
    assert time.monotonic() - started < 0.45
    assert len(agent.attempts) == 1  # no time was left for a retry
