"""The rules of docs/architecture.md, end to end: signed reaction events in, provider calls out."""

from __future__ import annotations

import pytest

from tests.dbtools import query
from tests.harness import Harness
from tests.slack_payloads import new_ts
from tests.standins.slack import BOT_USER

ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"


async def step(h: Harness, expect_total: int) -> list[str]:
    """Wait until the provider has `expect_total` feedbacks and the outbox is empty."""
    await h.settled()
    await h.contextual.wait_for(expect_total)
    return h.contextual.statuses()


async def votes_rows(h: Harness) -> list[tuple]:
    return await query(
        h.store, "SELECT user_id, origin, status, withdrawn_at IS NOT NULL FROM votes ORDER BY id"
    )


async def test_design_example_several_users_fall_back_to_the_newest_standing_vote(
    harness: Harness,
) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    assert await step(h, 1) == ["thumbs_up"]
    await h.slack.react(BOB, "-1", a["ts"])
    assert await step(h, 2) == ["thumbs_up", "thumbs_down"]
    await h.slack.unreact(BOB, "-1", a["ts"])
    assert await step(h, 3) == ["thumbs_up", "thumbs_down", "thumbs_up"]
    await h.slack.unreact(ALICE, "+1", a["ts"])
    assert await step(h, 4) == ["thumbs_up", "thumbs_down", "thumbs_up", "removed"]
    for r in h.contextual.received:
        assert r.body is not None and r.body["message_id"] == a["message_id"]
        assert r.path == f"/v1/agents/{a['agent_id']}/feedback"
        assert r.headers["Authorization"].startswith("Bearer ")
    # Every vote stays for statistics; withdrawn ones are marked, not deleted.
    assert await votes_rows(h) == [
        (ALICE, "reaction:+1", "thumbs_up", 1),
        (BOB, "reaction:-1", "thumbs_down", 1),
    ]


@pytest.mark.parametrize(
    ("emoji", "expected"),
    [
        ("+1", "thumbs_up"),
        ("thumbsup", "thumbs_up"),
        ("+1::skin-tone-3", "thumbs_up"),
        ("-1", "thumbs_down"),
        ("thumbsdown", "thumbs_down"),
        ("-1::skin-tone-6", "thumbs_down"),
        ("triangular_flag_on_post", "flagged"),
    ],
)
async def test_default_emoji_map(harness: Harness, emoji: str, expected: str) -> None:
    a = await harness.contextual_answer()
    await harness.slack.react(ALICE, emoji, a["ts"])
    assert await step(harness, 1) == [expected]
    await harness.slack.unreact(ALICE, emoji, a["ts"])
    assert await step(harness, 2) == [expected, "removed"]


async def test_skin_tone_removal_withdraws_the_plain_vote(harness: Harness) -> None:
    a = await harness.contextual_answer()
    await harness.slack.react(ALICE, "+1::skin-tone-2", a["ts"])
    await step(harness, 1)
    # The removal event carries its own skin tone; the vote is the same +1.
    await harness.slack.unreact(ALICE, "+1::skin-tone-2", a["ts"])
    assert await step(harness, 2) == ["thumbs_up", "removed"]


async def test_one_user_with_both_thumbs(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await step(h, 1)
    await h.slack.react(ALICE, "-1", a["ts"])
    assert await step(h, 2) == ["thumbs_up", "thumbs_down"]
    await h.slack.unreact(ALICE, "-1", a["ts"])
    assert await step(h, 3) == ["thumbs_up", "thumbs_down", "thumbs_up"]
    await h.slack.unreact(ALICE, "+1", a["ts"])
    assert await step(h, 4) == ["thumbs_up", "thumbs_down", "thumbs_up", "removed"]


async def test_only_a_change_of_verdict_is_delivered(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await step(h, 1)
    await h.slack.react(BOB, "+1", a["ts"])  # still thumbs_up
    await h.slack.react(CAROL, "thumbsup", a["ts"])  # still thumbs_up
    await h.slack.unreact(ALICE, "+1", a["ts"])  # Bob and Carol still stand
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]
    assert await query(h.store, "SELECT count(*) FROM deliveries") == [(1,)]


async def test_aquilax_mapping_and_removal_is_skipped_with_reason(harness: Harness) -> None:
    h = harness
    a = await h.aquilax_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.aquilax.wait_for(1)
    await h.slack.react(BOB, "-1", a["ts"])
    await h.aquilax.wait_for(2)
    await h.slack.react(CAROL, "triangular_flag_on_post", a["ts"])
    await h.aquilax.wait_for(3)
    assert h.aquilax.statuses() == ["true", "false", "false"]
    for r in h.aquilax.received:
        assert r.path.startswith(f"/api/v2/ai/feedback/{a['request_id']}/")
        assert r.query == {"org": a["org"], "group": a["group"]}
        assert r.headers["X-AX-KEY"]
    for user, emoji in ((CAROL, "triangular_flag_on_post"), (BOB, "-1"), (ALICE, "+1")):
        await h.slack.unreact(user, emoji, a["ts"])
        await h.settled()
    # B's 👎 (false) then A's 👍 (true) were delivered; the final removal has no AquilaX call.
    assert h.aquilax.statuses() == ["true", "false", "false", "false", "true"]
    rows = await h.store.list_deliveries()
    assert rows[0].verdict.status == "removed"
    assert rows[0].state == "skipped"
    assert "AquilaX has no way to withdraw feedback" in (rows[0].last_error or "")
    assert h.contextual.received == []


async def test_ignored_quietly(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    # Not a registered answer, an emoji that means nothing, the bot's own reaction,
    # a removal with no vote behind it, and a reaction on a file.
    await h.slack.react(ALICE, "+1", new_ts())
    await h.slack.react(ALICE, "tada", a["ts"])
    await h.slack.react(BOT_USER, "+1", a["ts"])
    await h.slack.unreact(BOB, "-1", a["ts"])
    r = await h.slack.event(
        {
            "type": "reaction_added",
            "user": ALICE,
            "reaction": "+1",
            "item": {"type": "file", "file": "F0FILE0001"},
        }
    )
    assert r.status_code == 200
    await h.settled()
    assert await votes_rows(h) == []
    assert await h.store.list_deliveries() == []
    assert h.contextual.received == []


async def test_source_votes_are_separate_slots_in_the_store(harness: Harness) -> None:
    """A reaction is about the answer; it never lands on one of the answer's sources."""
    a = await harness.contextual_answer(sources=2)
    await harness.slack.react(ALICE, "+1", a["ts"])
    received = await harness.contextual.wait_for(1)
    assert "content_id" not in (received[0].body or {})
