"""The bot as a process: crash and restart, graceful shutdown, secrets in its output."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.cli import event_loop_factory
from storage import Store
from tests.credentials import API_TOKEN, APP_TOKEN, SECRETS
from tests.dbtools import query
from tests.harness import wait_until
from tests.process import BotProcess, World, aquilax, contextual
from tests.slack_payloads import block_actions, new_ts, slash_command

ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"


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

    await wait_until(all_tried)
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
    await world.contextual.wait_for(ctx_count)
    await world.aquilax.wait_for(aqx_count)

    async def drained() -> bool:
        d = (await world.health(again))["deliveries"]
        return d["pending"] == 0 and d["sending"] == 0

    await wait_until(drained)
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


async def test_sigkill_mid_send_is_sent_again_after_the_lease(world: World) -> None:
    world.contextual.hang(30.0)  # the first send never returns before the kill
    bot = world.bot()
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "+1", body["ts"])

    # At the provider, not only claimed in the database: the send has begun.
    await world.contextual.wait_for_attempts(1)
    await bot.kill()

    again = world.bot()
    await again.start()
    received = await world.contextual.wait_for(1)
    assert received[0].body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    assert "took over 1 deliveries whose sender stopped mid-send" in again.text
    # Not before the cut-off request's timeout had passed since it began.
    first, second = world.contextual.attempts
    assert second.start - first.start >= world.provider_timeout
    await again.terminate()


async def test_sigterm_is_graceful(world: World) -> None:
    world.set_provider_timeout(8.0)  # longer than the 5 s grace
    world.contextual.hang(30.0)
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))  # SIGTERM is handled now
    body = contextual(new_ts())
    await world.register(bot, body)
    await world.slack(bot).react(ALICE, "-1", body["ts"])

    # At the provider, not only claimed in the database: the send has begun.
    await world.contextual.wait_for_attempts(1)
    started = asyncio.get_running_loop().time()
    assert await bot.terminate() == 0
    assert asyncio.get_running_loop().time() - started < 10
    assert "shutting down" in bot.text
    assert "1 deliveries were cut off mid-send" in bot.text
    # The send did not finish, and the provider may still apply it: the row stays claimed
    # until the request's timeout (plus margin) has passed since it began.
    store = await Store.open(world.db)
    try:
        [(state, sent_at, lease_until, owner)] = await query(
            store, "SELECT state, sent_at, lease_until, claimed_by FROM deliveries"
        )
    finally:
        await store.close()
    assert state == "sending" and owner
    # A LangSmith key is set (settings_for sets every provider's): its sends make two
    # requests, and every lease covers two timeouts.
    assert lease_until - sent_at == 2 * 8.0 + 4.0


async def test_sigterm_is_not_held_by_a_half_sent_request(world: World) -> None:
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))  # SIGTERM is handled now
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
    try:
        # The headers, then half the body, and never the rest. "100 Continue" comes back
        # once the request is in the handler's hands: the event this test waits for.
        writer.write(
            b"POST /v1/answers HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {API_TOKEN}\r\n".encode()
            + b"Expect: 100-continue\r\nContent-Length: 400\r\n\r\n"
        )
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 100")
        writer.write(b'{"channel": "C0')
        await writer.drain()
        started = asyncio.get_running_loop().time()
        # Within the 5 s grace (and Docker's 10 s stop), not aiohttp's 60 s.
        assert await bot.terminate() == 0
        assert asyncio.get_running_loop().time() - started < 8
    finally:
        writer.close()
    assert "Traceback" not in bot.text


async def test_sigterm_is_not_held_by_a_request_waiting_on_slack(world: World) -> None:
    # Slack hangs: the bot's call would give up after 10 s, and aiohttp would wait for it.
    world.slack_api.delays["chat.postMessage"] = 60.0
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))
    body = {**contextual(new_ts()), "post": {"text": "An answer."}}
    del body["ts"]
    registering = asyncio.create_task(
        world.http.post(
            f"http://127.0.0.1:{bot.port}/v1/answers",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
    )
    try:
        await world.slack_api.wait_for("chat.postMessage")  # the request is in the handler
        started = asyncio.get_running_loop().time()
        assert await bot.terminate() == 0
        assert asyncio.get_running_loop().time() - started < 8
    finally:
        registering.cancel()
        await asyncio.gather(registering, return_exceptions=True)
    assert "Traceback" not in bot.text


async def test_sigterm_exits_even_when_nobody_reads_its_output(world: World) -> None:
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))  # SIGTERM is handled now
    await bot.stop_reading()
    assert await bot.terminate() == 0  # a bot that hangs fails here (terminate waits 30 s)


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
    await world.aquilax.wait_for(1)

    async def dead() -> bool:
        return (await world.health(bot))["deliveries"]["dead"] == 1

    await wait_until(dead)
    await bot.terminate()
    output = bot.text
    assert "HTTP 401" in output and "HTTP 503" in output  # the failures were logged…
    assert "Sending a request" in output  # …at DEBUG, with the Slack client's requests
    for secret in SECRETS:
        assert secret not in output, f"a secret leaked into the logs: {secret[:8]}…"
    database = b"".join(p.read_bytes() for p in world.tmp.glob("feedback.db*"))
    for secret in SECRETS:
        assert secret.encode() not in database


async def test_start_up_and_requests_for_others_are_quiet(world: World) -> None:
    # SLACK_BOT_TOKEN is in the environment, as for everyone who follows the README.
    bot = world.bot(FEEDBACK_LOG_LEVEL="INFO")
    assert bot.env["SLACK_BOT_TOKEN"]
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))
    slack = world.slack(bot)
    # A click on another app's button, and a command that is not ours: Slack sends them
    # here only if the app's settings point them at this URL, but nothing here handles them.
    click = block_actions(ALICE, new_ts(), "someone_elses_button", "x")
    assert (await slack.interaction(click)).status_code == 404
    command = slash_command(ALICE, "hi", response_url="https://hooks.example/r1")
    assert (await slack.command({**command, "command": "/someone-else"})).status_code == 404
    assert await bot.terminate() == 0
    assert "`token` will be unused" not in bot.text
    assert "[Suggestion]" not in bot.text and "Unhandled request" not in bot.text
    assert len([line for line in bot.output if "someone_elses_button" in line]) <= 1
    assert len([line for line in bot.output if "/someone-else" in line]) <= 1
    # Every line of the log is a line of its own: nothing spans several.
    assert all(line[:4].isdigit() for line in bot.output), bot.text


async def test_run_uses_uvloop_where_it_is_installed(world: World) -> None:
    bot = world.bot()
    await bot.start()
    await wait_until(lambda: _said(bot, "feedback-bot is up"))
    assert "(HTTP mode, uvloop event loop)" in bot.text
    assert await bot.terminate() == 0


async def _said(bot: BotProcess, text: str) -> bool:
    return text in bot.text


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: the import fails
    assert event_loop_factory() is None
    monkeypatch.delitem(sys.modules, "uvloop")
    factory = event_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


async def test_sigterm_during_start_up_is_a_clean_stop(world: World) -> None:
    """`docker stop` while the bot is still starting: in Socket Mode the HTTP server listens
    before the socket is opened, and a slow apps.connections.open holds start-up there."""
    bot = world.bot(SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    world.slack_api.delays["apps.connections.open"] = 2.0
    await bot.start(timeout=30)  # returns at "listening on", before the socket is open
    assert not await _said(bot, "feedback-bot is up")
    assert await bot.terminate() == 0, bot.text  # not killed by the signal (-15)
    assert "shutting down" in bot.text
