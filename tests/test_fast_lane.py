"""The ack path: reaction events take the fast lane (handlers/reactions.py: FastLane) past
Bolt, on both doors; everything else takes Bolt as before; votes that arrive together are
committed together, and every ack still means stored."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import FeedbackBot
from handlers.reactions import FastLane
from tests.dbtools import query, replace_under
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, event_envelope, new_ts, new_uuid, reaction_event
from tests.standins import Standins

USERS = [f"U0USER{i:04d}" for i in range(24)]


def _lane(h: Harness) -> FastLane:
    assert h.bot.services is not None
    return FastLane(h.bot.services)


def _body(envelope: dict[str, object]) -> bytes:
    return json.dumps(envelope).encode()


async def test_the_fast_lane_takes_reaction_events_for_this_workspace_only(
    harness: Harness,
) -> None:
    lane = _lane(harness)
    reaction = event_envelope(reaction_event(USERS[0], "+1", new_ts()))
    taken = lane.take_json(_body(reaction))
    assert taken is not None and taken.event.reaction == "+1"
    assert lane.take(reaction) is not None  # the same, already parsed (Socket Mode)

    foreign = {**reaction, "team_id": "T0OTHER01", "authorizations": [{"team_id": "T0OTHER01"}]}
    home = event_envelope({"type": "app_home_opened", "user": USERS[0], "tab": "home"})
    refused = {
        "another workspace": _body(foreign),
        "another event": _body(home),
        "url_verification": _body({"type": "url_verification", "challenge": "x"}),
        "a form": b"payload=%7B%7D",
        "not JSON": b"{not json",
        "a field Bolt reads, wrongly typed": _body({**reaction, "team": 1}),
        "no event_id": _body({k: v for k, v in reaction.items() if k != "event_id"}),
    }
    for why, raw in refused.items():
        assert lane.take_json(raw) is None, why


async def test_refused_bodies_still_get_bolts_answers(harness: Harness) -> None:
    h = harness
    r = await h.slack.post(json.dumps({"type": "url_verification", "challenge": "c-123"}))
    assert r.status_code == 200 and "c-123" in r.text
    a = await h.contextual_answer()
    broken = event_envelope(reaction_event(USERS[0], "+1", a["ts"]))
    del broken["event_id"]
    r = await h.slack.post(json.dumps(broken))
    assert r.status_code == 400 and "event_id" in r.text
    assert await query(h.store, "SELECT count(*) FROM votes") == [(0,)]


async def test_bolts_door_and_the_fast_lane_record_the_same_vote(harness: Harness) -> None:
    """One handler, two doors: the same reaction through Bolt's dispatch and through the
    route's fast lane is stored the same way and reaches the provider."""
    h = harness
    assert h.bot.bolt is not None
    a = await h.contextual_answer()
    through_bolt = event_envelope(reaction_event(USERS[0], "-1", a["ts"]))
    response = await h.bot.bolt.async_dispatch(
        AsyncBoltRequest(body=through_bolt, mode="socket_mode")
    )
    assert response.status == 200
    await h.slack.react(USERS[1], "-1", a["ts"])
    rows = await query(h.store, "SELECT user_id, origin, status FROM votes ORDER BY id")
    assert rows == [
        (USERS[0], "reaction:-1", "thumbs_down"),
        (USERS[1], "reaction:-1", "thumbs_down"),
    ]
    await h.settled()
    [received] = await h.contextual.wait_for(1)
    assert received.body == {"message_id": a["message_id"], "feedback": "thumbs_down"}


async def test_concurrent_reactions_are_stored_before_their_acks(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    responses = await asyncio.gather(*(h.slack.react(user, "+1", a["ts"]) for user in USERS))
    assert [r.status_code for r in responses] == [200] * len(USERS)
    # Every ack came after the COMMIT that holds its vote.
    stored = await query(h.store, "SELECT count(*) FROM votes WHERE withdrawn_at IS NULL")
    assert stored == [(len(USERS),)]
    events = await query(h.store, "SELECT count(*) FROM processed_events")
    assert events == [(len(USERS),)]
    await h.settled()
    # Twenty-four votes, one verdict: the provider hears thumbs_up once.
    assert h.contextual.statuses() == ["thumbs_up"]


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
async def test_a_batch_refused_at_commit_is_503_for_each_event_and_its_retries_count(
    harness: Harness, tmp_path: Path
) -> None:
    """The database file is replaced under the bot: the COMMIT is refused (the writes
    would go to a file no one reads). Every event of the batch is a 503, none is kept as
    processed, and Slack's retries, once the file is back, are all stored."""
    h = harness
    a = await h.contextual_answer()
    path = Path(h.store.path)
    aside = tmp_path / "aside.db"
    replace_under(path, aside)
    bodies = [
        json.dumps(event_envelope(reaction_event(user, "-1", a["ts"]), f"EvBATCH{n:04d}"))
        for n, user in enumerate(USERS[:8])
    ]
    refused = await asyncio.gather(*(h.slack.post(b) for b in bodies))
    assert [r.status_code for r in refused] == [503] * 8
    assert all("replaced while feedback-bot was running" in r.text for r in refused)
    os.replace(aside, path)
    retried = await asyncio.gather(
        *(h.slack.post(b, headers={"X-Slack-Retry-Num": "1"}) for b in bodies)
    )
    assert [r.status_code for r in retried] == [200] * 8
    assert await query(h.store, "SELECT count(*) FROM votes") == [(8,)]


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
async def test_socket_mode_reactions_take_the_fast_lane_and_a_refused_write_is_not_acked(
    socket_bot: FeedbackBot,
    standins: Standins,
    tmp_path: Path,
) -> None:
    slack, contextual, _ = standins[:3]
    assert socket_bot.services is not None
    ts = new_ts()
    registered = await socket_bot.register_answer(
        {
            "channel": CHANNEL,
            "ts": ts,
            "provider": "contextual",
            "agent_id": new_uuid(),
            "message_id": new_uuid(),
        }
    )
    path = Path(socket_bot.services.store.path)
    aside = tmp_path / "aside.db"
    replace_under(path, aside)
    # No ack: Slack sends an unacknowledged envelope again.
    with pytest.raises(TimeoutError):
        await slack.socket_send(event_envelope(reaction_event(USERS[0], "+1", ts)), ack_timeout=1)
    os.replace(aside, path)
    ack = await slack.socket_send(event_envelope(reaction_event(USERS[0], "+1", ts)))
    assert set(ack) == {"envelope_id"}
    [received] = await contextual.wait_for(1)
    assert received.body == {
        "message_id": registered.answer.first.message_id,
        "feedback": "thumbs_up",
    }


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
async def test_a_database_failure_while_pruning_event_ids_does_not_stop_the_worker(
    harness: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The hourly prune of old event ids failed once (the file was replaced at that
    moment): the worker's task ended with the error, and nothing was sent until a restart."""
    h = harness
    assert h.bot.services is not None
    worker = h.bot.services.worker
    a = await h.contextual_answer()
    path, aside = Path(h.store.path), tmp_path / "aside.db"
    replace_under(path, aside)
    caplog.set_level(logging.WARNING, logger="bot.delivery.worker")
    worker._pruned_at = 0.0  # the hour is up
    worker.notify()
    # Its turn fails (and waits its poll interval, 1 s), then it prunes: that fails too.

    async def prune_failed() -> bool:
        ended = worker._task is None or worker._task.done()
        return ended or "could not prune old Slack event ids" in caplog.text

    await wait_until(prune_failed)
    assert worker._task is not None and not worker._task.done(), "the worker's task ended"
    os.replace(aside, path)
    await h.slack.react(USERS[0], "+1", a["ts"])
    [received] = await h.contextual.wait_for(1)
    assert received.body == {"message_id": a["message_id"], "feedback": "thumbs_up"}
