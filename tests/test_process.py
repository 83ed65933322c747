"""The bot as a process: crash and restart, graceful shutdown, secrets in its output."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from storage import Store
from tests.conftest import env_for, settings_for
from tests.harness import (
    API_TOKEN,
    CHANNEL,
    SECRETS,
    SlackSide,
    new_ts,
    new_uuid,
    wait_until,
)
from tests.process import BotProcess
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn

ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"


@dataclass
class World:
    tmp: Path
    slack_api: SlackStandIn
    contextual: ProviderStandIn
    aquilax: ProviderStandIn
    http: httpx.AsyncClient
    bots: list[BotProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        settings = settings_for(
            self.tmp / "feedback.db", self.slack_api, self.contextual, self.aquilax
        )
        return {**env_for(settings), "FEEDBACK_LOG_LEVEL": "DEBUG", **overrides}

    def bot(self, **overrides: str) -> BotProcess:
        bot = BotProcess(self.env(**overrides), self.tmp)
        self.bots.append(bot)
        return bot

    def slack(self, bot: BotProcess) -> SlackSide:
        return SlackSide(self.http, f"http://127.0.0.1:{bot.port}/slack/events")

    async def register(self, bot: BotProcess, body: dict) -> None:
        r = await self.http.post(
            f"http://127.0.0.1:{bot.port}/v1/answers",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert r.status_code == 201, r.text

    async def health(self, bot: BotProcess) -> dict:
        return (await self.http.get(f"http://127.0.0.1:{bot.port}/healthz")).json()


@pytest.fixture
async def world(
    tmp_path: Path, standins: tuple[SlackStandIn, ProviderStandIn, ProviderStandIn]
) -> AsyncIterator[World]:
    async with httpx.AsyncClient(timeout=10) as http:
        world = World(tmp_path, *standins, http)
        try:
            yield world
        finally:
            for bot in world.bots:  # a failed test must not leave a bot running
                await bot.ensure_stopped()


def contextual(ts: str) -> dict:
    return {
        "channel": CHANNEL,
        "ts": ts,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
    }


def aquilax(ts: str) -> dict:
    return {
        "channel": CHANNEL,
        "ts": ts,
        "provider": "aquilax",
        "request_id": new_uuid(),
        "org": "65dd3e835a669e3347654200",
        "group": "67e86d036e9921509f730483",
    }


# Per answer: the reactions to send, and the verdicts they produce in order.
SCRIPTS: list[tuple[list[tuple[str, str, bool]], list[str]]] = [
    ([(ALICE, "+1", True)], ["thumbs_up"]),
    ([(ALICE, "+1", True), (BOB, "-1", True)], ["thumbs_up", "thumbs_down"]),
    (
        [(ALICE, "+1", True), (BOB, "-1", True), (BOB, "-1", False)],
        ["thumbs_up", "thumbs_down", "thumbs_up"],
    ),
    (
        [(ALICE, "triangular_flag_on_post", True), (ALICE, "triangular_flag_on_post", False)],
        ["flagged", "removed"],
    ),
    (
        [(ALICE, "-1", True), (CAROL, "+1::skin-tone-4", True), (ALICE, "-1", False)],
        ["thumbs_down", "thumbs_up"],
    ),
]


async def test_sigkill_with_deliveries_pending_loses_nothing(world: World) -> None:
    # The providers are down while the votes come in.
    ctx_port, aqx_port = world.contextual.port, world.aquilax.port
    await world.contextual.stop()
    await world.aquilax.stop()
    bot = world.bot()
    await bot.start()
    slack = world.slack(bot)
    answers = []
    for script, verdicts in SCRIPTS:
        for make in (contextual, aquilax):
            body = make(new_ts())
            await world.register(bot, body)
            for user, emoji, added in script:
                await slack.react(user, emoji, body["ts"], added=added)
            answers.append((body, verdicts))

    async def all_tried() -> bool:
        d = (await world.health(bot))["deliveries"]
        # The flag-then-unflag answers may end with no row at all (the removal cancels a
        # flag that never left) or with a "removed" row (the flag was mid-send).
        return d["pending"] >= len(answers) - 2 and "unreachable" in str(d["last_error"])

    await wait_until(all_tried, timeout=15)
    await bot.kill()

    await world.contextual.start(ctx_port)
    await world.aquilax.start(aqx_port)
    again = world.bot()
    await again.start()
    ctx_count = sum(
        1 for body, v in answers if body["provider"] == "contextual" and v[-1] != "removed"
    )
    # AquilaX has no removal call: one answer ends "removed" and is skipped.
    aqx_count = sum(
        1 for body, v in answers if body["provider"] == "aquilax" and v[-1] != "removed"
    )
    await world.contextual.wait_for(ctx_count, timeout=20)
    await world.aquilax.wait_for(aqx_count, timeout=20)

    async def drained() -> bool:
        d = (await world.health(again))["deliveries"]
        return d["pending"] == 0 and d["sending"] == 0

    await wait_until(drained, timeout=20)
    await again.terminate()

    # Each answer got exactly its newest verdict: once, and nothing older after it.
    for body, verdicts in answers:
        if body["provider"] == "contextual":
            got = [
                r.body["feedback"]
                for r in world.contextual.received
                if r.body and r.body["message_id"] == body["message_id"]
            ]
            expected = [[verdicts[-1]]] if verdicts[-1] != "removed" else [[], ["removed"]]
            assert got in expected, (verdicts, got)
        else:
            got = [
                r.path.rsplit("/", 1)[1]
                for r in world.aquilax.received
                if body["request_id"] in r.path
            ]
            wire = {"thumbs_up": "true", "thumbs_down": "false", "flagged": "false"}
            expected = [] if verdicts[-1] == "removed" else [wire[verdicts[-1]]]
            assert got == expected, (verdicts, got)
    assert "re-queued" not in bot.text  # nothing was in flight at the kill


async def test_sigkill_mid_send_is_delivered_after_restart(world: World) -> None:
    world.contextual.hang(30.0)  # the first send never returns before the kill
    bot = world.bot()
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "+1", body["ts"])

    async def in_flight() -> bool:
        return (await world.health(bot))["deliveries"]["sending"] == 1

    await wait_until(in_flight)
    await bot.kill()

    again = world.bot()
    await again.start()
    received = await world.contextual.wait_for(1, timeout=15)
    assert received[0].body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    assert "re-queued 1 deliveries interrupted by the last shutdown" in again.text
    await again.terminate()


async def test_sigterm_is_graceful(world: World) -> None:
    world.contextual.hang(30.0)
    bot = world.bot()
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "-1", body["ts"])

    async def in_flight() -> bool:
        return (await world.health(bot))["deliveries"]["sending"] == 1

    await wait_until(in_flight)
    started = asyncio.get_running_loop().time()
    assert await bot.terminate() == 0
    assert asyncio.get_running_loop().time() - started < 10
    assert "shutting down" in bot.text
    # The send in flight did not finish: its row is back in the queue, whole.
    store = await Store.open(world.tmp / "feedback.db")
    try:
        counts = await store.delivery_counts()
        assert (counts.pending, counts.sending) == (1, 0)
    finally:
        await store.close()


async def test_sigterm_exits_even_when_nobody_reads_its_output(world: World) -> None:
    bot = world.bot()
    await bot.start()
    await bot.stop_reading()
    await asyncio.sleep(0.2)
    assert await asyncio.wait_for(bot.terminate(), 15) == 0


async def test_no_secret_ever_reaches_the_output(world: World) -> None:
    world.contextual.api_key = "a-different-key-so-that-sends-fail"  # 401s, logged
    world.aquilax.fail(503, times=2)
    bot = world.bot()
    await bot.start()
    slack = world.slack(bot)
    c, a = contextual(new_ts()), aquilax(new_ts())
    await world.register(bot, c)
    await world.register(bot, a)
    await slack.react(ALICE, "+1", c["ts"])
    await slack.react(ALICE, "-1", a["ts"])
    await slack.post('{"type": "event_callback"}', secret="wrong-secret-wrong-secret")
    await world.http.post(f"http://127.0.0.1:{bot.port}/v1/answers", json=c)  # no token
    await world.aquilax.wait_for(1, timeout=15)

    async def dead() -> bool:
        return (await world.health(bot))["deliveries"]["dead"] == 1

    await wait_until(dead, timeout=15)
    await bot.terminate()
    output = bot.text
    assert "HTTP 401" in output and "HTTP 503" in output  # the failures were logged…
    assert "Sending a request" in output  # …at DEBUG, with the Slack client's requests
    for secret in SECRETS:
        assert secret not in output, f"a secret leaked into the logs: {secret[:8]}…"
    database = b"".join(p.read_bytes() for p in world.tmp.glob("feedback.db*"))
    for secret in SECRETS:
        assert secret.encode() not in database
