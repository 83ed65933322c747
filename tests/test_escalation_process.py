"""Escalations are durable, with real `feedback-bot run` processes on one database: a bot
SIGKILLed while an escalation is queued, or while its chat.postMessage is in flight, and
started again, posts it once; two bots on one database post one message per answer. The
last test shows a duplicate without any crash: a post cut off by the send's timeout.
Escalations are rows of the outbox (target bot.domain.ESCALATION): see
storage/sqlite/escalations.py and bot/escalation/sender.py."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.domain import ESCALATION
from bot.escalation.message import EVENT_TYPE
from storage import Store
from tests.dbtools import query
from tests.harness import wait_until
from tests.process import BotProcess, World, contextual
from tests.slack_payloads import CHANNEL, new_ts, reaction_event, slash_command

ADMIN, ALICE, BOB = "U0ADMIN001", "U0ALICE001", "U0BOB00001"
TRIAGE = "C0TRIAGE01"
ANSWERS = 4
CUT_OFF = "deliveries whose sender stopped mid-send"  # the log line of a take-over
_replies = itertools.count(1)


@pytest.fixture(autouse=True)
def users(world: World) -> Iterator[None]:
    world.slack_api.add_user(ADMIN, admin=True)
    for user in (ALICE, BOB):
        world.slack_api.add_user(user)
    # manifest.yml grants it: a send that may have posted looks for its message first.
    world.slack_api.scopes.append("channels:history")
    yield
    assert world.slack_api.violations == [], "requests that break the specs or Block Kit"


async def escalate_to_triage(world: World, bot: BotProcess) -> None:
    """`/feedback escalate <#TRIAGE>` by an admin, in the answers' channel."""
    before = len(world.slack_api.responses)
    url = world.slack_api.response_url(f"esc{next(_replies)}")
    command = slash_command(ADMIN, f"escalate <#{TRIAGE}|triage>", response_url=url)
    r = await world.slack(bot).command(command)
    assert r.status_code == 200, r.text
    reply = r.text
    if not reply:

        async def answered() -> bool:
            return len(world.slack_api.responses) > before

        await wait_until(answered)
        reply = str(world.slack_api.responses[before]["text"])
    elif r.headers["content-type"].startswith("application/json"):
        reply = str(r.json()["text"])
    assert f"escalated to <#{TRIAGE}>" in reply, reply


def posted(world: World, ts: str | None = None) -> list[dict[str, Any]]:
    """The escalation messages the triage channel holds (of the answer `ts`, if given)."""
    return [
        m
        for m in world.slack_api.messages.get(TRIAGE, [])
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
        and (ts is None or m["metadata"]["event_payload"] == {"channel": CHANNEL, "ts": ts})
    ]


def the_message(world: World, ts: str) -> dict[str, Any]:
    """The one escalation message of the answer `ts` (fails on none, or on two)."""
    found = posted(world, ts)
    assert len(found) == 1, f"{len(found)} escalation messages for the answer {ts}, not one"
    return found[0]


def post_calls(world: World) -> list[dict[str, Any]]:
    """Every chat.postMessage of an escalation, refused or not (not the bot's note)."""
    return [
        c
        for c in world.slack_api.calls_to("chat.postMessage")
        if (c.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks"), ensure_ascii=False)


async def escalation_rows(world: World) -> list[tuple[str, str | None, str | None]]:
    """(state, provider_ref, claimed_by) of every escalation row, oldest first."""
    store = await Store.open(world.db)
    try:
        rows = await query(
            store,
            "SELECT state, provider_ref, claimed_by FROM deliveries WHERE target = ? ORDER BY id",
            (ESCALATION,),
        )
    finally:
        await store.close()
    return [(str(s), ref, owner) for s, ref, owner in rows]


async def drained(world: World, bot: BotProcess) -> None:
    async def idle() -> bool:
        d = (await world.health(bot))["deliveries"]
        return bool(d["pending"] == 0 and d["sending"] == 0)

    await wait_until(idle, every=0.1)


async def said(bot: BotProcess, text: str) -> bool:
    return text in bot.text


async def answer(world: World, bot: BotProcess) -> str:
    body = contextual(new_ts())
    await world.register(bot, body)
    return str(body["ts"])


async def test_sigkill_with_an_escalation_retrying_posts_it_once_after_the_restart(
    world: World,
) -> None:
    bot = world.bot()
    await bot.start()
    await escalate_to_triage(world, bot)
    world.slack_api.channel_errors[TRIAGE] = "internal_error"  # retryable (TRANSIENT)
    ts = await answer(world, bot)
    slack = world.slack(bot)
    await slack.react(ALICE, "-1", ts)

    async def refused_twice() -> bool:
        d = (await world.health(bot))["deliveries"]
        return len(post_calls(world)) >= 2 and "internal_error" in str(d["last_error"])

    await wait_until(refused_twice)
    await slack.react(BOB, "-1", ts)  # queued while Slack refuses: supersedes the first
    await bot.kill()
    rows = await escalation_rows(world)
    assert [state for state, _, _ in rows if state in ("pending", "sending")] != [], rows
    assert posted(world) == []

    del world.slack_api.channel_errors[TRIAGE]
    again = world.bot()
    await again.start()
    await drained(world, again)
    message = the_message(world, ts)
    assert "👎 2" in shown(message), shown(message)  # the votes as they are now
    assert len(posted(world)) == 1
    rows = await escalation_rows(world)
    assert not [r for r in rows if r[0] in ("pending", "sending")], rows
    assert rows[-1][:2] == ("delivered", f"{TRIAGE}:{message['ts']}"), rows
    assert await again.terminate() == 0


async def test_sigkill_mid_post_finds_the_message_and_does_not_post_again(world: World) -> None:
    bot = world.bot()
    await bot.start()
    await escalate_to_triage(world, bot)
    # Slack takes 1.5 s (under the 2 s timeout) and posts the message even though the
    # bot that asked is gone by then: the stand-in records a call, sleeps, then handles it
    # (aiohttp does not cancel a handler whose client went away).
    world.slack_api.delays["chat.postMessage"] = 1.5
    ts = await answer(world, bot)
    await world.slack(bot).react(ALICE, "-1", ts)

    async def in_flight() -> bool:
        return len(post_calls(world)) == 1

    await wait_until(in_flight)
    await bot.kill()
    del world.slack_api.delays["chat.postMessage"]

    async def landed() -> bool:
        return len(posted(world, ts)) == 1

    await wait_until(landed)  # posted, and the bot never heard
    [(state, ref, owner)] = await escalation_rows(world)
    assert state == "sending" and ref is None and owner, (state, ref, owner)

    again = world.bot()
    await again.start()
    await wait_until(lambda: said(again, CUT_OFF))  # after the cut-off send's lease
    await drained(world, again)
    message = the_message(world, ts)
    assert len(post_calls(world)) == 1, "posted again instead of updating the message"
    # The new send looked in the triage channel's history and updated what it found.
    looked = [
        c for c in world.slack_api.calls_to("conversations.history") if c.get("channel") == TRIAGE
    ]
    assert looked, "the take-over did not look for the message it may have posted"
    [update] = world.slack_api.calls_to("chat.update")
    assert (update["channel"], update["ts"]) == (TRIAGE, message["ts"])
    rows = await escalation_rows(world)
    assert rows[-1][:2] == ("delivered", f"{TRIAGE}:{message['ts']}"), rows
    assert await again.terminate() == 0


async def test_two_processes_on_one_database_post_one_message_per_answer(world: World) -> None:
    one, other = world.bot(), world.bot()
    await asyncio.gather(one.start(), other.start())
    await escalate_to_triage(world, one)
    # Slow Slack: the second vote on an answer comes while its first post is in flight.
    world.slack_api.delays["chat.postMessage"] = 0.3
    world.slack_api.delays["chat.update"] = 0.1
    answers = [await answer(world, one) for _ in range(ANSWERS)]

    async def votes(n: int, ts: str) -> None:
        # Alice's 👎 to both bots at once, as a Slack retry (same event id); Bob's to one.
        event = reaction_event(ALICE, "-1", ts)
        both = [world.slack(b).event(event, event_id=f"EvESC{n:07d}") for b in (one, other)]
        assert [r.status_code for r in await asyncio.gather(*both)] == [200, 200]
        await world.slack((other, one)[n % 2]).react(BOB, "-1", ts)

    await asyncio.gather(*(votes(n, ts) for n, ts in enumerate(answers)))
    await drained(world, one)
    await drained(world, other)
    for ts in answers:
        message = the_message(world, ts)
        assert "👎 2" in shown(message), shown(message)
    assert len(posted(world)) == len(post_calls(world)) == ANSWERS
    rows = await escalation_rows(world)
    assert not [r for r in rows if r[0] in ("pending", "sending")], rows
    assert await one.terminate() == 0
    assert await other.terminate() == 0


async def test_a_post_cut_off_by_the_send_timeout_is_not_posted_again(world: World) -> None:
    """No crash: Slack is slow, the send's one timeout (for all its calls) cuts its
    chat.postMessage off while Slack is still on it; the retry must not post again. Slack
    goes on with a request for up to a timeout after it began, as bot/delivery/worker.py's
    `lease_for` assumes of every provider."""
    world.set_provider_timeout(4.0)
    bot = world.bot()
    await bot.start()
    await escalate_to_triage(world, bot)
    # The first send's calls before the post take 3 s, so its post begins 3 s in; Slack
    # finishes it 3.9 s after that (under the timeout), long after the client gave up at 4.
    world.slack_api.delays["chat.getPermalink"] = 3.0
    world.slack_api.delays["chat.postMessage"] = 3.9
    ts = await answer(world, bot)
    await world.slack(bot).react(ALICE, "-1", ts)

    async def in_flight() -> bool:
        return len(post_calls(world)) == 1

    await wait_until(in_flight)
    world.slack_api.delays.clear()  # the retry's calls are quick
    await wait_until(lambda: said(bot, "Slack did not answer in time"))

    async def every_post_landed() -> bool:
        d = (await world.health(bot))["deliveries"]
        idle = d["pending"] == 0 and d["sending"] == 0
        return idle and len(posted(world)) == len(post_calls(world))

    await wait_until(every_post_landed, every=0.1)
    # The retry waits a timeout (SlackEscalations.send), so its look in the triage
    # channel (_posted_before) finds the post Slack finished meanwhile, and updates it.
    assert len(posted(world, ts)) == 1, f"{len(posted(world, ts))} escalation messages"
    assert await bot.terminate() == 0
