"""Several replicas on one database: three `feedback-bot run` processes behind a round-robin
"load balancer", Slack's events spread over them (the same event sometimes to two at once,
as Slack's retries do), one replica SIGKILLed mid-stream and started again. Run on both
backends; PostgreSQL is the one replicas are meant for."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field

import httpx

from bot.domain import Status, VoteChange, next_standing
from storage import Store
from tests.dbtools import query
from tests.harness import wait_until
from tests.process import BotProcess, World, contextual, fanned_out, slot_of, targets_of
from tests.slack_payloads import new_ts, reaction_event

USERS = ("U0ALICE001", "U0BOB00001", "U0CAROL001")
EMOJI = {"+1": Status.THUMBS_UP, "-1": Status.THUMBS_DOWN}
ANSWERS = 6
EVENTS_PER_ANSWER = 16
SEED = 1312


@dataclass
class Model:
    """What the votes of one answer should be, applied in the order the bots acked them."""

    standing: dict[tuple[str, str], tuple[int, Status]] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    inserted: int = 0
    history: list[str] = field(default_factory=lambda: ["removed"])

    def apply(self, user: str, emoji: str, added: bool) -> None:
        key = (user, f"reaction:{emoji}")
        current = self.standing.get(key)
        change = VoteChange(0, user, key[1], "add" if added else "withdraw", EMOJI[emoji])
        target = next_standing(change.action, current[1] if current else None, change.status)
        if target == (current[1] if current else None):
            return
        self.standing.pop(key, None)
        if target is not None:
            self.standing[key] = (next(self.seq), target)
            self.inserted += 1
        verdict = max(self.standing.values())[1].value if self.standing else "removed"
        if verdict != self.history[-1]:
            self.history.append(verdict)


class Balancer:
    """Round robin over the replicas that are up; a request a replica cannot answer goes to
    the next one, with the same event id, as Slack retries."""

    def __init__(self, world: World, bots: list[BotProcess]) -> None:
        self.world = world
        self.bots = bots
        self.turn = itertools.count()

    async def send(self, event: dict, event_id: str, *, twice: bool) -> None:
        for _ in range(20):
            up = [b for b in self.bots if b.running and b.port]
            first = up[next(self.turn) % len(up)]
            targets = [first]
            if twice and len(up) > 1:
                targets.append(up[(up.index(first) + 1) % len(up)])
            results = await asyncio.gather(
                *(self.world.slack(b).event(event, event_id=event_id) for b in targets),
                return_exceptions=True,
            )
            if any(isinstance(r, httpx.Response) and r.status_code == 200 for r in results):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"no replica took event {event_id}")


async def test_three_replicas_one_killed_keep_every_vote_once_and_every_slot_in_order(
    world: World,
) -> None:
    rng = random.Random(SEED)
    # Sends in flight when the kill comes, to both targets of the answers that have two.
    world.contextual.delay = world.langfuse.delay = lambda slot, status: 0.15
    bots = [world.bot() for _ in range(3)]
    for bot in bots:
        await bot.start()
    answers = [(contextual if i % 2 else fanned_out)(new_ts()) for i in range(ANSWERS)]
    for body in answers:
        await world.register(bots[0], body)
    balancer = Balancer(world, bots)
    models = {body["ts"]: Model() for body in answers}
    sent = itertools.count(1)
    half = ANSWERS * EVENTS_PER_ANSWER // 2
    killed = asyncio.Event()

    async def stream(body: dict) -> None:
        """One answer's reactions, each acked before the next, so their order is known."""
        for _ in range(EVENTS_PER_ANSWER):
            user, emoji = rng.choice(USERS), rng.choice(list(EMOJI))
            added = rng.random() < 0.6
            n = next(sent)
            event = reaction_event(user, emoji, body["ts"], added=added)
            await balancer.send(event, f"EvR{n:08d}", twice=rng.random() < 0.25)
            models[body["ts"]].apply(user, emoji, added)
            if n == half:
                killed.set()

    async def chaos() -> None:
        await killed.wait()
        await bots[1].kill()
        await asyncio.sleep(0.5)
        again = world.bot()
        await again.start()
        bots.append(again)

    await asyncio.gather(*(stream(body) for body in answers), chaos())

    async def settled() -> bool:
        up = next(b for b in bots if b.running)
        d = (await world.health(up))["deliveries"]
        return d["pending"] == 0 and d["sending"] == 0

    await wait_until(settled, timeout=60, every=0.2)
    await wait_until(world.contextual.ended)
    await wait_until(world.langfuse.ended)

    # Every vote stored once: as many rows as the acked changes made, whoever took them.
    store = await Store.open(world.db)
    try:
        rows = await query(
            store,
            "SELECT a.ts, count(v.id) FROM answers a LEFT JOIN votes v ON v.answer_id = a.id"
            " GROUP BY a.ts",
        )
        [(claimed,)] = await query(
            store, "SELECT count(*) FROM deliveries WHERE claimed_by IS NOT NULL"
        )
    finally:
        await store.close()
    assert dict(rows) == {ts: m.inserted for ts, m in models.items()}
    assert claimed == 0

    # Per slot: what the provider applied is the verdicts in their order (some skipped, as
    # a newer one superseded them), the newest last, and never two sends at once.
    assert world.contextual.overlaps() == world.langfuse.overlaps() == []
    applied = {"contextual": world.contextual.applied(), "langfuse": world.langfuse.applied()}
    repeats = 0
    for body in answers:
        model = models[body["ts"]]
        for position, target in enumerate(targets_of(body)):
            got = applied[target["provider"]].get(slot_of(body, position), [])
            collapsed = [s for i, s in enumerate(got) if i == 0 or s != got[i - 1]]
            repeats += len(got) - len(collapsed)
            assert _is_subsequence(collapsed, model.history[1:]), (got, model.history)
            assert (collapsed[-1] if collapsed else "removed") == model.history[-1], (
                got,
                model.history,
            )
    # Sent twice only where the kill cut a send off (at least once): a few at most.
    assert repeats <= 8, applied
    for bot in bots:
        if bot.running:
            assert await bot.terminate() == 0


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)
