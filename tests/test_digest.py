"""The digest: `/feedback digest`, posted now and on schedule (a test clock, not a wait), once
per period whichever process looks, its figures checked against the votes made, its chart
a PNG uploaded through Slack's external upload flow (the stand-in checks the bytes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.digest.schedule import last_end
from bot.digest.service import Digests
from bot.slack.blocks import ANSWER_VOTE, SOURCE_BLOCK_PREFIX, SOURCE_VOTE
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, block_actions, new_uuid, view_submission

ADMIN, ALICE, BOB, CAROL = "U0ADMIN001", "U0ALICE001", "U0BOB00001", "U0CAROL001"
DIGEST = "C0DIGEST01"
AGENT = "4b1c9f4e-0a57-4d2e-9c1b-3f8e2d7a5c40"
PNG = b"\x89PNG\r\n\x1a\n"
# The digest hour is the one after now: a daily digest then covers the day the test votes in.
NEXT_HOUR = (datetime.now(UTC).hour + 1) % 24


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_digest_hour": NEXT_HOUR}


@pytest.fixture(autouse=True)
def users(harness: Harness) -> None:
    harness.slack_api.add_user(ADMIN, admin=True)
    for user in (ALICE, BOB, CAROL):
        harness.slack_api.add_user(user)
    harness.slack_api.channel_names[CHANNEL] = "support"


async def until(condition: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return condition()

    await wait_until(holds)


async def posted_answer(h: Harness, sources: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": AGENT,
        "message_id": new_uuid(),
        "post": {"text": "The refund window is 30 days."},
        "sources": [{"content_id": new_uuid(), "label": f"Policy {i + 1}"} for i in range(sources)],
    }
    r = await h.register(body)
    assert r.status_code == 201, r.text
    return {**body, "ts": r.json()["answer"]["ts"]}


async def click(h: Harness, user: str, ts: str, value: str, **kw: Any) -> None:
    action = kw.pop("action_id", ANSWER_VOTE)
    r = await h.slack.interaction(block_actions(user, ts, action, value, **kw))
    assert r.status_code == 200, r.text


def shared(h: Harness) -> list[dict[str, Any]]:
    return [f for f in h.slack_api.shared if f["channel_id"] == DIGEST]


async def set_digest(h: Harness, period: str) -> None:
    reply = await h.feedback(ADMIN, f"digest <#{DIGEST}|digests> {period}")
    assert f"goes to <#{DIGEST}>" in reply, reply


async def vote(h: Harness) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Three answers: the first ends 👎 with an explanation, the second 👍, the third 👍
    with its source voted 👎. Approval: 2 of 3 verdicts."""
    first = await posted_answer(h)
    second = await posted_answer(h)
    third = await posted_answer(h, sources=1)
    await h.slack.react(ALICE, "+1", first["ts"])
    await click(h, BOB, first["ts"], "thumbs_down")  # the newest: the verdict is 👎
    [opened] = await h.slack_api.wait_for("views.open")
    form = view_submission(BOB, opened["view"], category="outdated", explanation="Old policy.")
    assert (await h.slack.interaction(form)).status_code == 200
    await h.slack.react(CAROL, "+1", second["ts"])
    await h.slack.react(ALICE, "+1", third["ts"])
    source = third["sources"][0]["content_id"]
    await click(
        h,
        CAROL,
        third["ts"],
        "thumbs_down",
        action_id=SOURCE_VOTE,
        block_id=f"{SOURCE_BLOCK_PREFIX}{source}",
    )
    # Every vote is stored before its ack; settled, the providers have what they are sent.
    await h.settled()
    return first, second, third


async def test_digest_now_posts_the_figures_of_the_votes_with_a_png_chart(
    harness: Harness,
) -> None:
    h = harness
    await set_digest(h, "weekly")
    await vote(h)
    reply = await h.feedback(ADMIN, "digest now")
    assert f"on its way to <#{DIGEST}>" in reply
    await until(lambda: len(shared(h)) == 1)
    [digest] = shared(h)
    assert digest["title"] == "Approval per day" and digest["bytes"].startswith(PNG)
    assert h.slack_api.png_uploads(DIGEST) == [digest["bytes"]]
    text = digest["initial_comment"]
    assert text.startswith("*Feedback for the workspace") is False and "#support" in text
    # 3 answers voted on; 5 votes (2 on the first, 1 on the second, 2 on the third and its
    # source; the form adds none); verdicts 👎 👍 👍.
    assert f"<#{CHANNEL}> · `{AGENT}`: 3 answers voted on, 5 votes, approval *67%*" in text, text
    assert "(none the period before)" in text
    assert "*Top 👎 categories:* outdated (1)" in text
    assert "“Old policy.”" in text and "https://test.slack.com/archives/" in text
    assert "*Lowest-rated sources:* Policy 1 (0 👍 / 1 👎)" in text
    assert "*Escalations:* 0 open" in text
    assert "Dead deliveries" not in text
    # Asked again while the first is on its way or posted: a new one ending now.
    reply = await h.feedback(ADMIN, "digest now")
    await until(lambda: len(shared(h)) == 2)


async def test_the_schedule_posts_once_per_period_whoever_looks(harness: Harness) -> None:
    h = harness
    await set_digest(h, "daily")
    await vote(h)
    digests = h.bot.digests
    assert not await digests.tick(now=time.time())  # the day has not ended
    end = last_end("daily", time.time() + 3600, NEXT_HOUR)
    assert end > time.time()
    clock = end + 60  # a minute after the hour: the day's digest is due
    assert await digests.tick(now=clock)
    [digest] = shared(h)
    assert "3 answers voted on, 5 votes, approval *67%*" in digest["initial_comment"]
    assert "the day to" in digest["initial_comment"]
    assert not await digests.tick(now=clock + 600)
    # Another process on the same database (a replica, or the bot after a restart) finds the
    # period's digest done.
    assert h.bot.services is not None
    other = Digests(h.store, h.bot.services.slack, NEXT_HOUR, "another-process")
    assert not await other.tick(now=clock + 1200)
    # The next day's is due the next day, and covers nothing new: no chart to draw, the
    # text alone.
    assert await other.tick(now=clock + 86400)
    assert len(shared(h)) == 1
    [empty] = [m for m in h.slack_api.messages[DIGEST] if "No votes" in m["text"]]
    assert "the day to" in empty["text"]


async def test_a_digest_set_after_the_hour_starts_with_the_next_period(harness: Harness) -> None:
    h = harness
    await set_digest(h, "weekly")
    # A week's end already past when it was set is not posted.
    assert not await h.bot.digests.tick(now=time.time() + 60)
    assert shared(h) == []


async def test_bad_digest_commands_change_nothing(harness: Harness) -> None:
    h = harness
    assert "Only workspace admins" in await h.feedback(ALICE, f"digest <#{DIGEST}|d> daily")
    assert "not a period: use daily or weekly" in await h.feedback(
        ADMIN, f"digest <#{DIGEST}|d> hourly"
    )
    assert "pick the channel from Slack's list" in await h.feedback(ADMIN, "digest #d daily")
    assert "has no digest to post" in await h.feedback(ADMIN, "digest now")
    h.slack_api.channel_errors[DIGEST] = "not_in_channel"
    reply = await h.feedback(ADMIN, f"digest <#{DIGEST}|d> daily")
    assert "Nothing changed" in reply and "/invite @feedback-bot" in reply
    assert "Digest: off" in await h.feedback(ADMIN, "status")
    assert not [e for e in await h.store.audit_log() if e.key == "digest"]


async def test_a_refused_upload_is_retried_then_dead_and_shows_in_deliveries(
    harness: Harness,
) -> None:
    h = harness
    await set_digest(h, "weekly")
    h.slack_api.errors["files.getUploadURLExternal"] = "internal_error"
    await vote(h)
    await h.feedback(ADMIN, "digest now")

    async def retrying() -> bool:
        records = await h.store.list_digests()
        return (
            bool(records) and records[0].state.value == "pending" and records[0].run.attempts == 1
        )

    await wait_until(retrying)
    [record] = await h.store.list_digests()
    assert record.run.period == "now" and "internal_error" in (record.last_error or "")
    del h.slack_api.errors["files.getUploadURLExternal"]
    h.slack_api.channel_errors[DIGEST] = "channel_not_found"

    # The retry comes after its backoff: the test moves the clock on instead of waiting.
    async def dead() -> bool:
        await h.bot.digests.tick(now=time.time() + 7200)
        return (await h.store.list_digests())[0].state.value == "dead"

    await wait_until(dead)
    deliveries = await h.feedback(ADMIN, "deliveries")
    assert "*Digests not posted*" in deliveries and "channel_not_found" in deliveries
    assert "dead after 2 tries" in deliveries, deliveries
