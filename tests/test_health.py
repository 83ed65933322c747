"""/healthz tells the truth, and writes that cannot happen are refused rather than faked:
a full disk, the database file deleted under the process, Socket Mode disconnected."""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from bot.app import FeedbackBot
from tests.conftest import TEST_BACKOFF, settings_for
from tests.credentials import API_TOKEN, APP_TOKEN
from tests.dbtools import on_connection, query
from tests.harness import PROVIDER_TIMEOUT, Harness, wait_until
from tests.process import World, contextual
from tests.slack_payloads import event_envelope, new_ts, reaction_event
from tests.standins import Standins

USERS = [f"U0VOTER{i:03d}" for i in range(300)]


async def health(http: httpx.AsyncClient, base: str) -> tuple[int, dict]:
    r = await http.get(f"{base}/healthz")
    return r.status_code, r.json()


async def test_healthy(harness: Harness) -> None:
    status, body = await health(harness.http, harness.base_url)
    assert (status, body["status"], body["db"]) == (200, "ok", "ok")
    assert "problems" not in body


async def votes_stored(h: Harness) -> int:
    [(n,)] = await query(h.store, "SELECT count(*) FROM votes")
    return int(n)


def fill_the_disk(db: sqlite3.Connection) -> None:
    """Grow the database until SQLite may not add a page: every write that needs a new page
    then fails with SQLITE_FULL, "database or disk is full", as on a full disk."""
    db.execute("CREATE TABLE ballast (b BLOB)")
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages + 64}")
    for size in (4000, 100, 1):
        try:
            while True:
                db.execute("INSERT INTO ballast VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError as e:
            assert "full" in str(e)


def free_the_disk(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")
    db.execute("DROP TABLE ballast")


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
async def test_a_full_disk_gets_5xx_and_an_unhealthy_report_never_a_false_200(
    harness: Harness,
) -> None:
    h = harness
    answers = [await h.contextual_answer() for _ in range(3)]
    await h.slack.react(USERS[0], "+1", answers[0]["ts"])
    await h.settled()
    before = await votes_stored(h)
    await on_connection(h.store, fill_the_disk)

    refused: list[str] = []
    accepted = 0
    for user in USERS[1:]:
        envelope = event_envelope(reaction_event(user, "-1", answers[1]["ts"]))
        body = json.dumps(envelope)
        r = await h.slack.post(body)
        if r.status_code == 200:
            accepted += 1
        else:
            assert r.status_code == 503, r.text
            assert "database or disk is full" in r.text
            refused.append(body)
        if len(refused) >= 3:
            break
    assert refused, "the disk never filled up"
    # Every 200 is a stored vote; every 503 stored nothing (Slack sends it again).
    assert await votes_stored(h) == before + accepted
    status, report = await health(h.http, h.base_url)
    assert status == 503 and report["status"] == "error"
    assert any("database or disk is full" in p for p in report["problems"]), report
    registered = await query(h.store, "SELECT count(*) FROM answers")
    r = await h.register(
        {**answers[0], "ts": new_ts(), "message_id": answers[2]["message_id"]}, API_TOKEN
    )
    # It may still fit in a page with room; either way the answer says what was stored.
    assert r.status_code in (201, 503), r.text
    if r.status_code == 503:
        assert "cannot store" in r.json()["error"]
    added = 1 if r.status_code == 201 else 0
    assert await query(h.store, "SELECT count(*) FROM answers") == [(registered[0][0] + added,)]

    await on_connection(h.store, free_the_disk)
    for body in refused:  # Slack's retries, with the same event ids
        r = await h.slack.post(body, headers={"X-Slack-Retry-Num": "1"})
        assert r.status_code == 200, r.text
    assert await votes_stored(h) == before + accepted + len(refused)
    status, report = await health(h.http, h.base_url)
    assert status == 200, report


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
async def test_a_deleted_database_file_is_reported_and_no_write_is_acknowledged(
    world: World,
) -> None:
    bot = world.bot()
    await bot.start()
    body = contextual(new_ts())
    await world.register(bot, body)
    slack = world.slack(bot)
    await slack.react("U0ALICE001", "+1", body["ts"])
    base = f"http://127.0.0.1:{bot.port}"
    assert (await world.http.get(f"{base}/healthz")).status_code == 200

    for path in world.tmp.glob("feedback.db*"):  # an operator's cleanup gone wrong
        path.unlink()
    status, report = await health(world.http, base)
    assert status == 503
    assert any("was deleted while feedback-bot was running" in p for p in report["problems"])
    r = await slack.event(reaction_event("U0BOB00001", "-1", body["ts"]))
    assert r.status_code == 503 and "deleted" in r.text
    r = await world.http.post(
        f"{base}/v1/answers",
        json=contextual(new_ts()),
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert r.status_code == 503 and "deleted" in r.json()["error"]
    await bot.terminate()
    assert "Traceback" not in bot.text


async def test_socket_mode_disconnected_is_unhealthy_until_it_reconnects(
    socket_bot: FeedbackBot, standins: Standins
) -> None:
    slack = standins[0]
    base = f"http://127.0.0.1:{socket_bot.port}"
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/healthz")).status_code == 200
        await slack.drop_sockets()

        async def unhealthy() -> bool:
            return (await http.get(f"{base}/healthz")).status_code == 503

        await wait_until(unhealthy)
        _, report = await health(http, base)
        assert any("Socket Mode connection to Slack is down" in p for p in report["problems"])

        slack.refuse_sockets = False

        async def healthy() -> bool:
            return (await http.get(f"{base}/healthz")).status_code == 200

        await wait_until(healthy, every=0.2)


async def test_socket_mode_is_unhealthy_until_slack_says_hello(
    database: str, standins: Standins
) -> None:
    slack = standins[0]
    slack.withhold_hello = True  # the WebSocket opens, and Slack says nothing on it
    settings = settings_for(
        database, *standins, slack_app_token=APP_TOKEN, slack_signing_secret=None
    )
    bot = FeedbackBot(settings, backoff=TEST_BACKOFF, provider_timeout=PROVIDER_TIMEOUT)
    await bot.start()
    base = f"http://127.0.0.1:{bot.port}"
    try:
        async with httpx.AsyncClient() as http:
            status, report = await health(http, base)
            assert status == 503 and report["status"] == "error"
            [problem] = report["problems"]
            assert "Slack has not said hello" in problem and "events cannot arrive" in problem

            await slack.say_hello()

            async def healthy() -> bool:
                return (await http.get(f"{base}/healthz")).status_code == 200

            await wait_until(healthy)
            # And events do arrive now.
            answer = contextual(new_ts())
            auth = {"Authorization": f"Bearer {API_TOKEN}"}
            assert (
                await http.post(f"{base}/v1/answers", json=answer, headers=auth)
            ).status_code == 201
        ack = await slack.socket_send(
            event_envelope(reaction_event("U0ALICE001", "+1", answer["ts"]))
        )
        assert set(ack) == {"envelope_id"}
    finally:
        await bot.stop(grace=1)
