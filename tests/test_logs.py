"""Logs people can use: one line per delivery outcome and per registration, no library
chatter at DEBUG, JSON lines on request, and never a secret."""

from __future__ import annotations

import json
import logging

import pytest

from tests.credentials import SECRETS
from tests.harness import Harness, wait_until
from tests.process import World, aquilax, contextual
from tests.slack_payloads import new_ts

ALICE = "U0ALICE001"


async def test_json_lines_with_an_outcome_per_delivery_and_per_registration(
    world: World,
) -> None:
    world.contextual.api_key = "a-different-key-so-that-sends-fail"  # 401: dead
    world.aquilax.fail(503, times=2)  # retried twice, then delivered
    bot = world.bot(FEEDBACK_LOG_FORMAT="json")  # at DEBUG, as every World bot
    await bot.start()
    slack = world.slack(bot)
    c, a = contextual(new_ts()), aquilax(new_ts())
    await world.register(bot, c)
    await world.register(bot, a)
    await slack.react(ALICE, "+1", c["ts"])
    await slack.react(ALICE, "-1", a["ts"])
    await world.aquilax.wait_for(1)

    async def dead() -> bool:
        return (await world.health(bot))["deliveries"]["dead"] == 1

    await wait_until(dead)
    await bot.terminate()

    records = [json.loads(line) for line in bot.output]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert not [r for r in records if r["logger"].startswith("aiosqlite")]
    registrations = [r for r in records if r.get("event") == "registration"]
    assert [(r["ts"], r["result"], r["level"]) for r in registrations] == [
        (c["ts"], "created", "INFO"),
        (a["ts"], "created", "INFO"),
    ]
    outcomes = [
        (r["provider"], r["verdict"], r["result"], r["attempt"], r["level"])
        for r in records
        if r.get("event") == "delivery"
    ]
    assert sorted(outcomes) == sorted(
        [
            ("contextual", "thumbs_up", "dead", 1, "ERROR"),
            ("aquilax", "thumbs_down", "retried", 1, "WARNING"),
            ("aquilax", "thumbs_down", "retried", 2, "WARNING"),
            ("aquilax", "thumbs_down", "delivered", 3, "INFO"),
        ]
    )
    [dead_line] = [r for r in records if r.get("result") == "dead"]
    assert "HTTP 401" in dead_line["detail"] and dead_line["ts"] == c["ts"]
    assert dead_line["message"].startswith(f"delivery {dead_line['delivery_id']} ")
    for secret in SECRETS:
        assert secret not in bot.text, f"a secret leaked into the logs: {secret[:8]}…"


async def test_text_lines_say_slot_provider_verdict_result_and_attempt(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    await h.settled()
    [registered] = [r.getMessage() for r in caplog.records if r.name == "bot.answers.register"]
    assert registered.startswith(f"registration C0FEEDBK01/{a['ts']}: created (contextual ")
    [delivered] = [r.getMessage() for r in caplog.records if r.name == "bot.delivery.worker"]
    assert delivered.startswith(
        f"delivery 1 C0FEEDBK01/{a['ts']} contextual thumbs_down: delivered (attempt 1, "
    )
