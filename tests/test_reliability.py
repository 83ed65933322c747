"""Order and once-only when operators act: kills, restarts and a second process on the same
database, against stand-in providers that answer slowly and record what they applied."""

from __future__ import annotations

from storage import Store
from tests.dbtools import query
from tests.harness import wait_until
from tests.process import BotProcess, World, contextual
from tests.slack_payloads import new_ts

ALICE, BOB = "U0ALICE001", "U0BOB00001"


def slow_thumbs_up(seconds: float):
    """thumbs_up takes `seconds` at the provider (and is applied); the rest are instant."""
    return lambda slot, status: seconds if status == "thumbs_up" else 0.0


async def sending(world: World, bot: BotProcess, count: int) -> None:
    async def in_flight() -> bool:
        return (await world.health(bot))["deliveries"]["sending"] == count

    await wait_until(in_flight)


async def drained(world: World, bot: BotProcess, timeout: float = 30) -> None:
    async def empty() -> bool:
        d = (await world.health(bot))["deliveries"]
        return d["pending"] == 0 and d["sending"] == 0

    await wait_until(empty, timeout=timeout, every=0.1)


async def _up(bot: BotProcess) -> bool:
    return "feedback-bot is up" in bot.text


async def cut_off_then_newer(world: World, stop: str, timeout: float, slow: float) -> None:
    """thumbs_up is in flight (slow, but the provider will apply it) and thumbs_down waits
    for it when the bot is stopped (`kill` or `terminate`) and started again. The provider
    must apply thumbs_up then thumbs_down, never both in flight at once, and the cut-off
    thumbs_up is not sent again (thumbs_down supersedes it)."""
    world.set_provider_timeout(timeout)
    world.contextual.delay = slow_thumbs_up(slow)
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _up(bot))  # so that SIGTERM is handled, not fatal
    body = contextual(new_ts())
    await world.register(bot, body)
    slack = world.slack(bot)
    await slack.react(ALICE, "+1", body["ts"])
    # In flight at the provider, not only in the database: a row claimed a moment before
    # the kill may not have been sent yet, and then 👎 alone is all there is to apply.
    await world.contextual.wait_for_attempts(1)
    await slack.react(BOB, "-1", body["ts"])  # ALICE's 👍 and BOB's 👎: BOB's is newer
    await (bot.kill() if stop == "kill" else bot.terminate())

    again = world.bot()
    await again.start()
    await drained(world, again)
    await wait_until(world.contextual.ended)
    assert world.contextual.overlaps() == []
    assert world.contextual.applied()[f"{body['message_id']}/"] == ["thumbs_up", "thumbs_down"]
    cut_off, newer = world.contextual.attempts
    assert newer.start >= cut_off.start + timeout  # not before the cut-off one's timeout
    await again.terminate()


async def test_sigkill_with_a_newer_verdict_queued_ends_on_the_newer(world: World) -> None:
    # Before: the restart sent both at once and the slow thumbs_up was applied last.
    await cut_off_then_newer(world, "kill", timeout=3.0, slow=2.5)


async def test_sigterm_past_the_grace_does_not_let_the_cut_off_send_win(world: World) -> None:
    # The same after SIGTERM once the 5 s grace runs out: the cancelled send still reaches
    # the provider (slowly), so what follows must wait for it.
    await cut_off_then_newer(world, "terminate", timeout=6.0, slow=5.5)


async def test_a_second_process_does_not_send_again_what_the_first_is_sending(
    world: World,
) -> None:
    world.set_provider_timeout(4.0)
    world.contextual.delay = lambda slot, status: 1.5
    first = world.bot()
    await first.start()
    slack = world.slack(first)
    answers = [contextual(new_ts()) for _ in range(10)]
    for body in answers:
        await world.register(first, body)
        await slack.react(ALICE, "+1", body["ts"])
    await sending(world, first, 10)

    second = world.bot()  # an overlapping deploy, or a mistaken second start
    await second.start()
    await drained(world, second)
    assert len(world.contextual.attempts) == 10
    assert world.contextual.overlaps() == []
    await first.terminate()
    await second.terminate()


async def test_two_processes_share_the_sends_and_keep_each_slot_in_order(world: World) -> None:
    world.contextual.delay = lambda slot, status: 0.3
    one, two = world.bot(), world.bot()
    await one.start()
    await two.start()
    answers = [contextual(new_ts()) for _ in range(6)]
    for body in answers:
        await world.register(one, body)
    # Both take Slack's events (a load balancer in front of two replicas), for the same
    # answers, while both send.
    for i in range(3):
        for n, body in enumerate(answers):
            bot = (one, two)[(i + n) % 2]
            await world.slack(bot).react(ALICE, "+1", body["ts"], added=i % 2 == 0)
            await world.slack(bot).react(BOB, "-1", body["ts"], added=i % 2 == 0)
    await drained(world, one)
    await wait_until(world.contextual.ended)
    assert world.contextual.overlaps() == []
    applied = world.contextual.applied()
    for body in answers:
        assert applied[f"{body['message_id']}/"][-1] == "thumbs_down", applied
    store = await Store.open(world.db)
    try:
        [(delivered, claimed)] = await query(
            store,
            "SELECT count(*) FILTER (WHERE state = 'delivered'),"
            " count(*) FILTER (WHERE claimed_by IS NOT NULL) FROM deliveries",
        )
    finally:
        await store.close()
    assert claimed == 0  # every claim was settled by its owner
    assert len(world.contextual.attempts) == delivered  # each delivery sent once
    await one.terminate()
    await two.terminate()
