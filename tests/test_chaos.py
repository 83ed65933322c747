"""Fault injection: real `feedback-bot run` processes on one database file, killed (SIGKILL),
stopped (SIGTERM) and started beside each other at random points of a stream of verdict
changes over many answers, mapped to Contextual, LangSmith, Langfuse, or to Contextual and
Langfuse at once (each target with its own deliveries, sends in flight to both when a process
is killed), against stand-in
providers that answer each request after a random delay (applying it when it ends) and
record what they applied.

After every round, per slot: the provider's final state is the newest verdict in the
database, what it applied follows the order in which the verdicts were queued, and no two
applied requests of a slot were ever in flight at once.

    pytest tests/test_chaos.py                  # quick: 2 rounds (CI)
    pytest tests/test_chaos.py --long           # 300 rounds
    pytest tests/test_chaos.py --long --rounds 50 --seed 7
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from storage import Store
from tests.dbtools import query
from tests.harness import wait_until
from tests.process import (
    BotProcess,
    World,
    contextual,
    fanned_out,
    langfuse,
    langsmith,
    slot_of,
    targets_of,
)
from tests.slack_payloads import event_envelope, new_ts, reaction_event, sign
from tests.standins.providers import ProviderStandIn

USERS = ("U0ALICE001", "U0BOB00001", "U0CAROL001")
EMOJI = ("+1", "-1", "triangular_flag_on_post")
ANSWERS = 8
EVENTS = 60
MAX_RUNNING = 2


@dataclass
class Round:
    world: World
    rng: random.Random
    running: list[BotProcess] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def start_bot(self) -> None:
        bot = self.world.bot()
        await bot.start()
        self.running.append(bot)
        self.log.append(f"start {len(self.world.bots)}")

    async def fault(self) -> None:
        """One operator action at a random moment: kill, stop, or start one more."""
        action = self.rng.choice(("kill", "kill", "term", "start"))
        if action == "start" or not self.running:
            if len(self.running) < MAX_RUNNING:
                await self.start_bot()
            return
        bot = self.rng.choice(self.running)
        self.running.remove(bot)
        self.log.append(f"{action} {self.world.bots.index(bot) + 1}")
        if action == "kill":
            await bot.kill()
        else:
            await bot.terminate()
        if not self.running:
            await self.start_bot()

    async def deliver(self, envelope: dict) -> None:
        """Send one event the way Slack does: until some bot acknowledges it, retrying the
        same event id after a failure (a kill mid-request may or may not have stored it)."""
        body = json.dumps(envelope)
        async with asyncio.timeout(30):  # a bot that died on its own would hang the round
            await self._deliver(body)

    async def _deliver(self, body: str) -> None:
        while True:
            for bot in self.running:
                assert bot.running, f"a bot exited on its own:\n{bot.text[-3000:]}"
            if self.running:
                bot = self.rng.choice(self.running)
                url = f"http://127.0.0.1:{bot.port}/slack/events"
                headers = {"Content-Type": "application/json", **sign(body)}
                with contextlib.suppress(httpx.HTTPError):
                    r = await self.world.http.post(url, content=body, headers=headers)
                    if r.status_code == 200:
                        return
            await asyncio.sleep(0.05)


async def run_round(world: World, rng: random.Random) -> None:
    world.set_provider_timeout(1.0)
    for provider in providers(world).values():
        provider.delay = lambda slot, status: rng.choice((0.0, 0.0, 0.05, 0.2, 0.6, 0.9))
    r = Round(world, rng)
    await r.start_bot()
    kinds = (contextual, langsmith, langfuse, fanned_out)
    answers = [kinds[i % len(kinds)](new_ts()) for i in range(ANSWERS)]
    for body in answers:
        await world.register(r.running[0], body)

    async def faults() -> None:
        while True:
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            await r.fault()

    chaos = asyncio.create_task(faults())
    try:
        for _ in range(EVENTS):
            body = rng.choice(answers)
            event = reaction_event(
                rng.choice(USERS), rng.choice(EMOJI), body["ts"], added=rng.random() < 0.65
            )
            await r.deliver(event_envelope(event))
            await asyncio.sleep(rng.uniform(0, 0.06))
    finally:
        chaos.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos
    if not r.running:
        await r.start_bot()
    survivor = r.running[0]

    async def drained() -> bool:
        d = (await world.health(survivor))["deliveries"]
        return d["pending"] == 0 and d["sending"] == 0

    await wait_until(drained, every=0.1)
    for bot in r.running:
        await bot.terminate()
    await check(world, answers, r.log)


def providers(world: World) -> dict[str, ProviderStandIn]:
    return {
        "contextual": world.contextual,
        "langsmith": world.langsmith,
        "langfuse": world.langfuse,
    }


async def check(world: World, answers: list[dict], log: list[str]) -> None:
    store = await Store.open(world.db)
    try:
        rows = await query(
            store,
            "SELECT a.ts, d.target, d.status FROM deliveries d JOIN answers a"
            " ON a.id = d.answer_id WHERE d.content_id = '' ORDER BY d.id",
        )
        votes = await query(
            store,
            "SELECT a.ts, v.status FROM votes v JOIN answers a ON a.id = v.answer_id"
            " WHERE v.withdrawn_at IS NULL AND v.content_id = '' ORDER BY v.id",
        )
        unfinished = await query(
            store, "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending')"
        )
    finally:
        await store.close()
    assert unfinished == [(0,)], log
    stand_ins = providers(world)
    for stand_in in stand_ins.values():
        assert stand_in.overlaps() == [], log
    queued: dict[tuple[str, int], list[str]] = {}
    for ts, target, status in rows:
        queued.setdefault((ts, target), []).append(status)
    newest = {ts: status for ts, status in votes}  # the last one wins
    applied = {name: s.applied() for name, s in stand_ins.items()}
    for body in answers:
        for position, target in enumerate(targets_of(body)):
            ts, slot, provider = body["ts"], slot_of(body, position), target["provider"]
            got = applied[provider].get(slot, [])
            verdict = newest.get(ts, "removed")
            final = got[-1] if got else None
            mine = queued.get((ts, position), [])
            detail = (provider, slot, verdict, got, mine, log)
            if verdict == "removed":
                assert final in (None, "removed"), detail
            else:
                assert final == verdict, detail
            assert follows(got, mine), detail
            if provider != "contextual":  # what the provider holds in the end
                held = stand_ins[provider].held_values().get(slot)
                assert held == (None if verdict == "removed" else verdict), detail


def follows(applied: list[str], queued: list[str]) -> bool:
    """Is `applied` the queued verdicts in their order, some skipped (superseded before
    they left) and some repeated back to back (a send cut off and sent again)?"""
    i = 0
    for status in applied:
        while i < len(queued) and queued[i] != status:
            i += 1
        if i == len(queued):
            return False
    return True


async def test_kills_restarts_and_overlapping_processes_keep_every_slot_in_order(
    world: World, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rounds = request.config.getoption("rounds") or (300 if request.config.getoption("long") else 2)
    seed = request.config.getoption("seed")
    seed = random.randrange(1 << 30) if seed is None else seed
    print(f"chaos: {rounds} rounds from seed {seed}")
    for n in range(rounds):
        rng = random.Random(seed + n)
        round_dir = tmp_path / f"round-{n}"
        round_dir.mkdir()
        world.tmp = round_dir
        for provider in providers(world).values():
            provider.attempts.clear()
            provider.received.clear()
            provider.held.clear()
        try:
            await run_round(world, rng)
        except BaseException:
            print(f"chaos: round {n} (seed {seed + n}) failed")
            raise
        finally:
            for bot in world.bots:
                await bot.ensure_stopped()
            world.bots.clear()
