"""`feedback-bot worker`: deliveries sent from a process of their own, beside `feedback-bot
run` with FEEDBACK_WORKER=separate, under the same claim and lease rules."""

from __future__ import annotations

import asyncio
import statistics

from tests.harness import wait_until
from tests.process import BotProcess, World, contextual
from tests.slack_payloads import new_ts

ALICE, BOB = "U0ALICE001", "U0BOB00001"


async def test_run_queues_and_the_worker_sends(world: World) -> None:
    bot = world.bot(FEEDBACK_WORKER="separate")
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "+1", body["ts"])
    assert (await world.health(bot))["deliveries"]["pending"] == 1

    worker = world.worker()
    await worker.start()
    [received] = await world.contextual.wait_for(1)
    assert received.body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    # The worker sent it, and `run` never tried: each logs the outcome of what it sends.
    sent = f"{body['ts']} contextual thumbs_up: delivered"
    await wait_until(lambda: _said(worker, sent))
    assert sent not in bot.text
    # An idle worker notices the next vote within its watch interval (20 ms), not at its
    # poll (1 s): the poll restarts when the worker goes idle, so a worker that only
    # polled would take nearly a second for every vote below. Half a second leaves room
    # for a loaded machine and still tells the two apart.
    waits = []
    for n in range(6):  # Bob's 👎 on, off, on…: each flips the verdict
        await wait_until(lambda: _idle(world, bot))  # the last outcome is recorded
        started = asyncio.get_running_loop().time()
        await world.slack(bot).react(BOB, "-1", body["ts"], added=n % 2 == 0)
        await world.contextual.wait_for(2 + n)
        waits.append(asyncio.get_running_loop().time() - started)
    assert statistics.median(waits) < 0.5, waits
    assert world.contextual.statuses()[:2] == ["thumbs_up", "thumbs_down"]
    assert "deliveries are sent by `feedback-bot worker`" in bot.text
    assert await worker.terminate() == 0
    assert await bot.terminate() == 0


async def test_a_killed_worker_s_send_is_taken_over_after_its_lease(world: World) -> None:
    world.contextual.hang(30.0)  # the first send never returns before the kill
    bot = world.bot(FEEDBACK_WORKER="separate")
    await bot.start()
    first = world.worker()
    await first.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "+1", body["ts"])

    # At the provider, not only claimed in the database: the send has begun.
    await world.contextual.wait_for_attempts(1)
    await first.kill()
    second = world.worker()
    await second.start()
    received = await world.contextual.wait_for(1)
    assert received[0].body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    assert "took over 1 deliveries whose sender stopped mid-send" in second.text
    a, b = world.contextual.attempts
    assert b.start - a.start >= world.provider_timeout  # not before the cut-off send ended
    assert world.contextual.overlaps() == []
    await second.terminate()
    await bot.terminate()


async def _said(bot: BotProcess, text: str) -> bool:
    return text in bot.text


async def _idle(world: World, bot: BotProcess) -> bool:
    d = (await world.health(bot))["deliveries"]
    return d["pending"] == 0 and d["sending"] == 0
