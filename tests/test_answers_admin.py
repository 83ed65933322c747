"""Answers can be looked up, listed and removed: GET/DELETE /v1/answers… and
`feedback-bot answers list|show|remove`, end to end against a running bot."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.credentials import API_TOKEN
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.process import _clean_environ
from tests.slack_payloads import CHANNEL, new_ts, new_uuid

OTHER = "C0OTHER001"
ALICE, BOB = "U0ALICE001", "U0BOB00001"


async def get(h: Harness, path: str, token: str = API_TOKEN) -> httpx.Response:
    return await h.http.get(f"{h.base_url}{path}", headers={"Authorization": f"Bearer {token}"})


async def delete(h: Harness, path: str) -> httpx.Response:
    return await h.http.delete(
        f"{h.base_url}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )


async def test_list_pages_newest_first_and_filters_by_channel(harness: Harness) -> None:
    h = harness
    here = [await h.contextual_answer() for _ in range(3)]
    there = [await h.aquilax_answer(channel=OTHER) for _ in range(2)]
    newest_first = [a["ts"] for a in (here + there)][::-1]

    seen, cursor = [], None
    while True:
        r = await get(h, "/v1/answers?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["answers"]) <= 2
        seen += [a["ts"] for a in page["answers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first

    r = await get(h, f"/v1/answers?channel={OTHER}")
    assert [a["ts"] for a in r.json()["answers"]] == [a["ts"] for a in there][::-1]
    assert r.json()["answers"][0]["request_id"] == there[-1]["request_id"]


async def test_bad_queries_are_400_with_the_reason_and_the_token_is_required(
    harness: Harness,
) -> None:
    h = harness
    for path, reason in [
        ("/v1/answers?limit=0", "limit must be a number from 1 to 1000"),
        ("/v1/answers?limit=ten", "limit must be a number from 1 to 1000"),
        ("/v1/answers?cursor=bm90LWEtY3Vyc29y", "cursor is not one this list gave"),
        ("/v1/answers?channel=general", "is not a Slack channel id"),
        ("/v1/answers?chanel=C0FEEDBK01", "unknown parameter 'chanel'"),
        ("/v1/answers/C0FEEDBK01/yesterday", "is not a Slack message ts"),
    ]:
        r = await get(h, path)
        assert r.status_code == 400, (path, r.text)
        assert reason in r.json()["error"], (path, r.text)
    r = await get(h, "/v1/answers", token="not-the-token-at-all")
    assert r.status_code == 401
    r = await h.http.delete(f"{h.base_url}/v1/answers/{CHANNEL}/{new_ts()}")
    assert r.status_code == 401


async def test_show_gives_the_mapping_its_verdicts_and_deliveries(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer(sources=2)
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.settled()  # sent before the next vote, so that both show as delivered
    await h.slack.react(BOB, "-1", a["ts"])
    await h.settled()
    r = await get(h, f"/v1/answers/{CHANNEL}/{a['ts']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message_id"] == a["message_id"] and body["agent_id"] == a["agent_id"]
    assert [s["content_id"] for s in body["sources"]] == [s["content_id"] for s in a["sources"]]
    assert body["verdicts"] == [{"content_id": None, "verdict": "thumbs_down", "standing_votes": 2}]
    assert [(d["verdict"], d["state"]) for d in body["deliveries"]] == [
        ("thumbs_down", "delivered"),
        ("thumbs_up", "delivered"),
    ]
    r = await get(h, f"/v1/answers/{CHANNEL}/{new_ts()}")
    assert r.status_code == 404 and "no answer is registered" in r.json()["error"]


async def test_remove_keeps_votes_cancels_queued_sends_ignores_later_reactions(
    harness: Harness,
) -> None:
    h = harness
    a = await h.contextual_answer()
    h.contextual.fail(503, retry_after="60")  # the first send fails: queued for a minute
    await h.slack.react(ALICE, "+1", a["ts"])

    async def queued() -> bool:
        counts = await h.store.delivery_counts()
        return counts.pending == 1 and counts.last_error is not None  # the send failed

    await wait_until(queued)
    r = await delete(h, f"/v1/answers/{CHANNEL}/{a['ts']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "removed" and body["answer"]["message_id"] == a["message_id"]
    assert (body["votes_kept"], body["deliveries_cancelled"]) == (1, 1)
    states = await query(h.store, "SELECT state, last_error FROM deliveries")
    assert states == [("skipped", "the answer was removed (DELETE /v1/answers)")]

    # Later reactions on the message are ignored; the votes stay for statistics.
    await h.slack.react(BOB, "-1", a["ts"])
    assert await query(h.store, "SELECT user_id FROM votes") == [(ALICE,)]
    assert (await get(h, f"/v1/answers/{CHANNEL}/{a['ts']}")).status_code == 404
    assert (await delete(h, f"/v1/answers/{CHANNEL}/{a['ts']}")).status_code == 404

    # The message can be registered afresh, to something else.
    h.contextual.script.clear()
    fresh = {**a, "message_id": new_uuid()}
    r = await h.register(fresh)
    assert r.status_code == 201, r.text
    await h.slack.react(BOB, "-1", a["ts"])
    await h.settled()
    received = await h.contextual.wait_for(1)
    assert received[-1].body == {"message_id": fresh["message_id"], "feedback": "thumbs_down"}


def _cli(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "answers", *args],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd(), "FEEDBACK_DB": h.store.path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_lists_shows_and_removes(harness: Harness) -> None:
    h = harness
    first, second = await h.contextual_answer(), await h.aquilax_answer()
    done = _cli(h, "list", "--json", "--limit", "1")
    assert done.returncode == 0, done.stderr
    [row, more] = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["ts"] == second["ts"] and "next_cursor" in more
    done = _cli(h, "list", "--json", "--cursor", more["next_cursor"])
    assert [json.loads(line)["ts"] for line in done.stdout.splitlines()] == [first["ts"]]

    done = _cli(h, "show", CHANNEL, first["ts"])
    assert done.returncode == 0 and f"message_id: {first['message_id']}" in done.stdout
    done = _cli(h, "remove", CHANNEL, first["ts"])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "removed"
    # Removing it again changes nothing, and says so.
    done = _cli(h, "remove", CHANNEL, first["ts"])
    assert done.returncode == 1 and done.stdout == ""
    assert f"nothing removed: no answer is registered on {CHANNEL}/{first['ts']}" in done.stderr
    done = _cli(h, "show", CHANNEL, first["ts"])
    assert done.returncode == 1
    assert f"no answer is registered on {CHANNEL}/{first['ts']}" in done.stderr
    done = _cli(h, "list", "--cursor", "garbage")
    assert done.returncode == 2 and "cursor is not one this list gave" in done.stderr


async def test_a_send_in_flight_at_removal_is_not_sent_again(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    h.contextual.hang(5.0)  # longer than the bot's timeout: the send fails, retryable

    async def in_flight() -> bool:
        return (await h.store.delivery_counts()).sending == 1

    await h.slack.react(ALICE, "+1", a["ts"])
    await wait_until(in_flight)
    r = await delete(h, f"/v1/answers/{CHANNEL}/{a['ts']}")
    assert r.json()["deliveries_cancelled"] == 0  # it was in flight: it ends on its own

    async def ended() -> bool:
        return await query(h.store, "SELECT state FROM deliveries") == [("skipped",)]

    await wait_until(ended)
    [(error,)] = await query(h.store, "SELECT last_error FROM deliveries")
    assert error == "the answer was removed while it was sent"
    assert len(h.contextual.attempts) == 1
