"""`feedback-bot worker`: deliveries sent from a process of their own, beside `feedback-bot
run` with FEEDBACK_WORKER=separate, under the same claim and lease rules."""

from __future__ import annotations

import asyncio
import statistics

from tests.harness import wait_until
from tests.process import World, contextual
from tests.slack_payloads import new_ts

ALICE, BOB = "U0ALICE001", "U0BOB00001"


async def test_run_queues_and_the_worker_sends(world: World) -> None:
    bot = world.bot(FEEDBACK_WORKER="separate")
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "+1", body["ts"])
    await asyncio.sleep(1.0)
    assert world.contextual.received == []  # `run` only queues
    assert (await world.health(bot))["deliveries"]["pending"] == 1

    worker = world.worker()
    await worker.start()
    [received] = await world.contextual.wait_for(1, timeout=5)
    assert received.body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    # An idle worker notices the next vote within its watch interval (20 ms), not at its
    # poll (1 s, which would make the median half a second).
    waits = []
    for n in range(6):  # Bob's 👎 on, off, on…: each flips the verdict
        await asyncio.sleep(0.2)  # idle again
        started = asyncio.get_running_loop().time()
        await world.slack(bot).react(BOB, "-1", body["ts"], added=n % 2 == 0)
        await world.contextual.wait_for(2 + n, timeout=5)
        waits.append(asyncio.get_running_loop().time() - started)
    assert statistics.median(waits) < 0.3, waits
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

    async def in_flight() -> bool:
        return (await world.health(bot))["deliveries"]["sending"] == 1

    await wait_until(in_flight)
    await first.kill()
    second = world.worker()
    await second.start()
    received = await world.contextual.wait_for(1, timeout=15)
    assert received[0].body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    assert "took over 1 deliveries whose sender stopped mid-send" in second.text
    a, b = world.contextual.attempts
    assert b.start - a.start >= world.provider_timeout  # not before the cut-off send ended
    assert world.contextual.overlaps() == []
    await second.terminate()
    await bot.terminate()
