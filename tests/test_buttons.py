"""Feedback buttons, the "what went wrong?" form, source feedback and answers the bot posts."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import pytest

from bot.domain import Answer, Target
from bot.slack.blocks import (
    ANSWER_FLAG,
    ANSWER_VOTE,
    OPEN_FORM,
    SOURCE_BLOCK_PREFIX,
    SOURCE_VOTE,
)
from storage import Store
from tests.credentials import BOT_TOKEN, SIGNING_SECRET
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.process import _clean_environ
from tests.slack_payloads import CHANNEL, block_actions, new_ts, new_uuid, view_submission

ADMIN = "U0ADMIN001"
ALICE, BOB = "U0ALICE001", "U0BOB00001"


async def post_answer(
    h: Harness, text: str = "The refund window is 30 days.", sources: int = 0, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": text},
        **extra,
    }
    if sources:
        body["sources"] = [
            {"content_id": new_uuid(), "label": f"Policy doc {i + 1}"} for i in range(sources)
        ]
    r = await h.register(body)
    assert r.status_code == 201, r.text
    return {**body, "ts": r.json()["answer"]["ts"]}


async def click(
    h: Harness,
    user: str,
    ts: str,
    action_id: str = ANSWER_VOTE,
    value: str = "thumbs_up",
    **kw: Any,
) -> dict[str, Any]:
    kind = "button" if action_id in (ANSWER_FLAG, OPEN_FORM) else "feedback_buttons"
    payload = block_actions(user, ts, action_id, value, kind=kind, **kw)
    r = await h.slack.interaction(payload)
    assert r.status_code == 200, r.text
    return payload


async def ephemerals(h: Harness, count: int) -> list[dict[str, Any]]:
    return await h.slack_api.wait_for("chat.postEphemeral", count)


async def delivered(h: Harness, count: int) -> list[dict[str, Any]]:
    await h.contextual.wait_for(count)
    await h.settled()
    return [r.body or {} for r in h.contextual.received]


def block_types(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["type"] for b in blocks]


# ------------------------------------------------------------------ posting answers


async def test_the_bot_posts_the_answer_with_controls_and_maps_the_returned_ts(
    harness: Harness,
) -> None:
    a = await post_answer(harness, "Refunds: *30 days* <for> you & me")
    [posted] = harness.slack_api.calls_to("chat.postMessage")
    assert posted["channel"] == CHANNEL
    assert posted["text"] == "Refunds: *30 days* &lt;for&gt; you &amp; me"  # notification text
    blocks = posted["blocks"]
    assert block_types(blocks) == ["section", "context_actions", "actions"]
    assert blocks[0]["text"]["text"] == "Refunds: *30 days* &lt;for&gt; you &amp; me"
    buttons = blocks[1]["elements"][0]
    assert buttons["type"] == "feedback_buttons" and buttons["action_id"] == ANSWER_VOTE
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == (
        "thumbs_up",
        "thumbs_down",
    )
    assert blocks[2]["elements"][0]["action_id"] == ANSWER_FLAG
    # Nothing in the controls names the answer or carries a secret.
    assert a["message_id"] not in json.dumps(blocks) and a["agent_id"] not in json.dumps(blocks)
    answer = await harness.store.find_answer(CHANNEL, a["ts"])
    assert (
        answer is not None and answer.posted_by_bot and answer.first.message_id == a["message_id"]
    )


async def test_posting_the_same_answer_again_does_not_post_twice(harness: Harness) -> None:
    a = await post_answer(harness)
    again = {k: v for k, v in a.items() if k != "ts"}
    r = await harness.register(again)
    assert r.status_code == 200
    assert r.json()["answer"]["ts"] == a["ts"]
    assert len(harness.slack_api.calls_to("chat.postMessage")) == 1


async def test_posting_in_a_thread(harness: Harness) -> None:
    parent = new_ts()
    r = await harness.register(
        {
            "channel": CHANNEL,
            "provider": "aquilax",
            "request_id": new_uuid(),
            "org": "o1",
            "group": "g1",
            "post": {"text": "Threaded answer", "thread_ts": parent},
        }
    )
    assert r.status_code == 201
    assert r.json()["answer"]["thread_ts"] == parent
    assert harness.slack_api.calls_to("chat.postMessage")[-1]["thread_ts"] == parent


@pytest.mark.parametrize(
    "text",
    [
        "x" * 100_000,  # no boundary to cut at
        ("A paragraph of an answer. " * 40 + "\n\n") * 100,  # ~104k characters with breaks
        "&<>" * 33_333,  # triples in length when escaped
    ],
    ids=["one-word", "paragraphs", "escapes"],
)
async def test_long_answers_fit_slacks_limits(harness: Harness, text: str) -> None:
    text = text[:100_000]
    a = await post_answer(harness, text, sources=3)
    [posted] = harness.slack_api.calls_to("chat.postMessage")
    blocks = posted["blocks"]
    assert len(blocks) <= 50  # the stand-in also checks every block's limits
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(s) <= 3000 for s in sections)
    assert sum(map(len, sections)) <= 40_000
    assert "the answer continues for" in sections[-1]
    assert len(posted["text"]) <= 3000
    assert block_types(blocks)[-2:] == ["context_actions", "actions"]
    assert a["ts"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "<!channel> read <https://evil.example|the docs> & <@U0ALICE001>",
            "&lt;!channel&gt; read &lt;https://evil.example|the docs&gt; &amp; &lt;@U0ALICE001&gt;",
        ),
        # The fallback is cut at 3,000 characters: here right inside the first "&amp;".
        ("a" * 2997 + "&" * 10, "a" * 2997 + "…"),
        ("b" * 2995 + "<" * 10, "b" * 2995 + "&lt;…"),
    ],
    ids=["mentions-and-links", "cut-before-an-entity", "cut-after-an-entity"],
)
async def test_the_notification_text_cannot_ping_or_link_either(
    harness: Harness, text: str, expected: str
) -> None:
    await post_answer(harness, text)
    [posted] = harness.slack_api.calls_to("chat.postMessage")
    assert posted["text"] == expected
    assert len(posted["text"]) <= 3000


async def test_a_short_enough_answer_is_never_cut(harness: Harness) -> None:
    text = "word " * 7000  # 35,000 characters: 12 sections
    await post_answer(harness, text)
    [posted] = harness.slack_api.calls_to("chat.postMessage")
    sections = [b["text"]["text"] for b in posted["blocks"] if b["type"] == "section"]
    assert " ".join(sections).split() == text.split()


async def test_slack_refusing_the_post_is_a_502_and_nothing_is_stored(harness: Harness) -> None:
    harness.slack_api.errors["chat.postMessage"] = "not_in_channel"
    body = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": "hello"},
    }
    r = await harness.register(body)
    assert r.status_code == 502
    assert "not_in_channel" in r.json()["error"] and "invite the bot" in r.json()["error"]
    assert await query(harness.store, "SELECT count(*) FROM answers") == [(0,)]


async def test_the_same_post_sent_twenty_times_at_once_posts_one_message(
    harness: Harness,
) -> None:
    h = harness
    body = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": "Refunds are possible within 30 days."},
    }
    responses = await asyncio.gather(*(h.register(body) for _ in range(20)))
    assert len(h.slack_api.calls_to("chat.postMessage")) == 1
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["answer"]["ts"] for r in responses}) == 1
    assert await query(h.store, "SELECT count(*) FROM answers") == [(1,)]


async def test_a_refused_post_releases_the_registration_for_a_retry(harness: Harness) -> None:
    h = harness
    body = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": "hello"},
    }
    h.slack_api.errors["chat.postMessage"] = "not_in_channel"
    assert (await h.register(body)).status_code == 502
    del h.slack_api.errors["chat.postMessage"]  # the bot was invited meanwhile
    r = await h.register(body)
    assert r.status_code == 201, r.text
    assert len(h.slack_api.calls_to("chat.postMessage")) == 2  # the refused one and this one
    assert (await h.register(body)).status_code == 200


async def test_a_reservation_left_by_a_crashed_poster_expires(harness: Harness) -> None:
    h = harness
    body = {
        "channel": CHANNEL,
        "provider": "aquilax",
        "request_id": new_uuid(),
        "org": "o1",
        "group": "g1",
        "post": {"text": "hello"},
    }
    # Another process reserved this post, then died before posting or releasing.
    crashed = await Store.open(h.store.path)
    answer = Answer(
        channel=CHANNEL, ts="", targets=(Target(provider="aquilax", request_id=body["request_id"]),)
    )
    reservation = await crashed.reserve_post(answer, "a-process-that-died", ttl=1.0)
    await crashed.close()
    assert reservation.state == "reserved"
    r = await h.register(body)
    assert r.status_code == 201, r.text
    # It waited for the reservation's deadline (wall-clock time, as the store keeps it),
    # and not much longer: a few seconds' room for a loaded machine.
    assert reservation.expires_at <= time.time() < reservation.expires_at + 4
    assert len(h.slack_api.calls_to("chat.postMessage")) == 1


async def test_the_bot_and_the_cli_posting_the_same_answer_post_once(harness: Harness) -> None:
    h = harness
    body = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": "Refunds are possible within 30 days."},
    }
    env = {
        **_clean_environ(),
        "FEEDBACK_DB": h.store.path,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": h.slack_api.api_url,
    }
    # The first post takes a while: everyone else arrives while it is in flight.
    h.slack_api.delays["chat.postMessage"] = 1.0
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "answers",
        "add",
        "--json",
        json.dumps(body),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    posting = asyncio.create_task(h.slack_api.wait_for("chat.postMessage"))
    await asyncio.wait([posting, asyncio.create_task(cli.wait())], return_when="FIRST_COMPLETED")
    assert posting.done(), (await cli.communicate())[1]  # the CLI is posting, not failing
    responses = await asyncio.gather(*(h.register(body) for _ in range(5)))
    out, err = await cli.communicate()
    assert cli.returncode == 0, err
    assert len(h.slack_api.calls_to("chat.postMessage")) == 1
    assert json.loads(out)["status"] == "created"
    assert [r.status_code for r in responses] == [200] * 5
    assert {r.json()["answer"]["ts"] for r in responses} == {json.loads(out)["answer"]["ts"]}
    assert await query(h.store, "SELECT count(*) FROM answers") == [(1,)]


async def test_ts_and_post_are_exclusive(harness: Harness) -> None:
    body = {
        "channel": CHANNEL,
        "ts": new_ts(),
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "post": {"text": "hi"},
    }
    r = await harness.register(body)
    assert r.status_code == 422
    assert "leave out ts" in r.text
    del body["ts"], body["post"]
    r = await harness.register(body)
    assert r.status_code == 422
    assert "give ts" in r.text


# ------------------------------------------------------------------ clicks


async def test_click_then_click_again_withdraws(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], value="thumbs_up")
    assert await delivered(h, 1) == [{"message_id": a["message_id"], "feedback": "thumbs_up"}]
    [confirm] = await ephemerals(h, 1)
    assert confirm["user"] == ALICE and confirm["channel"] == CHANNEL
    assert "👍" in confirm["text"] and "again" in confirm["text"]
    await click(h, ALICE, a["ts"], value="thumbs_up")
    assert [b["feedback"] for b in await delivered(h, 2)] == ["thumbs_up", "removed"]
    confirms = await ephemerals(h, 2)
    assert "withdrawn" in confirms[1]["text"]
    # The public message never changes: nobody learns who voted what.
    assert h.slack_api.calls_to("chat.update") == []
    assert len(h.slack_api.calls_to("chat.postMessage")) == 1


async def test_switching_choice_opens_the_form_for_thumbs_down(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], value="thumbs_up")
    await delivered(h, 1)
    payload = await click(h, ALICE, a["ts"], value="thumbs_down")
    assert [b["feedback"] for b in await delivered(h, 2)] == ["thumbs_up", "thumbs_down"]
    [opened] = await h.slack_api.wait_for("views.open")
    assert opened["trigger_id"] == payload["trigger_id"]
    view = opened["view"]
    assert view["callback_id"] == "fb_form"
    assert view["title"]["text"] == "What went wrong?"
    assert "👎" in json.dumps(view["blocks"], ensure_ascii=False)


async def test_a_reaction_and_a_click_by_the_same_user(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await h.slack.react(ALICE, "+1", a["ts"])
    await delivered(h, 1)
    await click(h, ALICE, a["ts"], value="thumbs_down")  # the newer vote decides
    await delivered(h, 2)
    await h.slack.unreact(ALICE, "+1", a["ts"])  # the button vote still stands
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up", "thumbs_down"]
    await click(h, ALICE, a["ts"], value="thumbs_down")  # withdraw the button vote
    assert [b["feedback"] for b in await delivered(h, 3)] == [
        "thumbs_up",
        "thumbs_down",
        "removed",
    ]


async def test_several_users_click(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], value="thumbs_up")
    await delivered(h, 1)
    await click(h, BOB, a["ts"], action_id=ANSWER_FLAG, value="flagged")
    await delivered(h, 2)
    await click(h, BOB, a["ts"], action_id=ANSWER_FLAG, value="flagged")  # Bob withdraws
    await delivered(h, 3)
    assert h.contextual.statuses() == ["thumbs_up", "flagged", "thumbs_up"]
    confirms = [c["user"] for c in await ephemerals(h, 2)]
    assert sorted(confirms) == [ALICE, BOB]  # Bob's flag opened the form, his undo confirmed


async def test_form_submit_sends_explanation_and_category(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], action_id=ANSWER_FLAG, value="flagged")
    await delivered(h, 1)
    [opened] = await h.slack_api.wait_for("views.open")
    submission = view_submission(
        ALICE, opened["view"], category="outdated", explanation="  The policy changed in May. "
    )
    r = await h.slack.interaction(submission)
    assert r.status_code == 200 and r.text == ""  # closes the modal
    bodies = await delivered(h, 2)
    assert bodies[1] == {
        "message_id": a["message_id"],
        "feedback": "flagged",
        "explanation": "The policy changed in May.",
        "query_category": "outdated",
    }
    [thanks] = await ephemerals(h, 1)
    assert "what went wrong" in thanks["text"]


async def test_form_dismissed_keeps_the_plain_vote(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], value="thumbs_down")
    await h.slack_api.wait_for("views.open")
    # "Skip" sends nothing to an app that did not ask for notify_on_close.
    assert (await delivered(h, 1)) == [{"message_id": a["message_id"], "feedback": "thumbs_down"}]
    # An empty submission is the same as Skip.
    [opened] = h.slack_api.calls_to("views.open")
    r = await h.slack.interaction(
        view_submission(ALICE, opened["view"], category=None, explanation=None)
    )
    assert r.status_code == 200
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_down"]


async def test_form_mistakes_get_field_errors_and_change_nothing(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    await click(h, ALICE, a["ts"], value="thumbs_down")
    [opened] = await h.slack_api.wait_for("views.open")
    await delivered(h, 1)
    too_long = view_submission(ALICE, opened["view"], category=None, explanation="x" * 2001)
    r = await h.slack.interaction(too_long)
    assert r.json() == {
        "response_action": "errors",
        "errors": {"explanation": "Please keep it to 2,000 characters (this is 2,001)."},
    }
    bad_category = view_submission(ALICE, opened["view"], category="lol", explanation="x")
    assert "category" in (await h.slack.interaction(bad_category)).json()["errors"]
    not_yours = view_submission(BOB, opened["view"], category=None, explanation="mine now")
    assert "not for a vote of yours" in (await h.slack.interaction(not_yours)).text
    await click(h, ALICE, a["ts"], value="thumbs_down")  # withdraws
    await delivered(h, 2)
    late = view_submission(ALICE, opened["view"], category=None, explanation="too late")
    assert "took this vote back" in (await h.slack.interaction(late)).text
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_down", "removed"]
    explained = await query(h.store, "SELECT count(*) FROM votes WHERE explanation IS NOT NULL")
    assert explained == [(0,)]


async def test_source_votes_reach_contextual_with_content_id(harness: Harness) -> None:
    h = harness
    a = await post_answer(h, sources=2)
    [posted] = h.slack_api.calls_to("chat.postMessage")
    source_blocks = [
        b for b in posted["blocks"] if b.get("block_id", "").startswith(SOURCE_BLOCK_PREFIX)
    ]
    assert [b["block_id"] for b in source_blocks] == [
        SOURCE_BLOCK_PREFIX + s["content_id"] for s in a["sources"]
    ]
    first, second = (s["content_id"] for s in a["sources"])
    await click(
        h,
        ALICE,
        a["ts"],
        action_id=SOURCE_VOTE,
        value="thumbs_up",
        block_id=SOURCE_BLOCK_PREFIX + first,
    )
    await click(
        h,
        ALICE,
        a["ts"],
        action_id=SOURCE_VOTE,
        value="thumbs_down",
        block_id=SOURCE_BLOCK_PREFIX + second,
    )
    await click(h, ALICE, a["ts"], value="thumbs_up")
    bodies = await delivered(h, 3)
    by_content = {b.get("content_id"): b["feedback"] for b in bodies}
    assert by_content == {first: "thumbs_up", second: "thumbs_down", None: "thumbs_up"}
    assert h.slack_api.calls_to("views.open") == []  # source 👎 does not open the form
    texts = [e["text"] for e in await ephemerals(h, 3)]
    assert any("Policy doc 2" in t for t in texts)


async def test_a_forged_source_is_refused(harness: Harness) -> None:
    h = harness
    a = await post_answer(h, sources=1)
    await click(
        h,
        ALICE,
        a["ts"],
        action_id=SOURCE_VOTE,
        value="thumbs_up",
        block_id=SOURCE_BLOCK_PREFIX + new_uuid(),
    )
    [reply] = await ephemerals(h, 1)
    assert "not part of this answer" in reply["text"]
    await h.settled()
    assert await h.store.list_deliveries() == []


async def test_click_on_an_unknown_answer_gets_a_polite_ephemeral(harness: Harness) -> None:
    r = await harness.slack.interaction(block_actions(ALICE, new_ts(), ANSWER_VOTE, "thumbs_up"))
    assert r.status_code == 200
    [reply] = await ephemerals(harness, 1)
    assert reply["user"] == ALICE and "does not know this answer" in reply["text"]
    assert "Traceback" not in reply["text"]


async def test_the_same_click_delivered_twice_counts_once(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    payload = block_actions(ALICE, a["ts"], ANSWER_VOTE, "thumbs_up")
    for _ in range(2):
        assert (await h.slack.interaction(payload)).status_code == 200
    await delivered(h, 1)
    assert h.contextual.statuses() == ["thumbs_up"]  # not thumbs_up then removed
    assert await query(h.store, "SELECT count(*) FROM votes") == [(1,)]


async def test_bad_click_payloads_are_refused(harness: Harness) -> None:
    h = harness
    a = await post_answer(h)
    wrong_value = block_actions(ALICE, a["ts"], ANSWER_FLAG, "thumbs_up", kind="button")
    r = await h.slack.interaction(wrong_value)
    assert r.status_code == 400 and "unexpected value" in r.text
    no_user = block_actions(ALICE, a["ts"], ANSWER_VOTE, "thumbs_up")
    del no_user["user"]
    r = await h.slack.interaction(no_user)
    assert r.status_code == 400 and "user" in r.text
    await h.settled()
    assert await h.store.list_deliveries() == []


async def test_aquilax_answer_buttons(harness: Harness) -> None:
    h = harness
    r = await h.register(
        {
            "channel": CHANNEL,
            "provider": "aquilax",
            "request_id": new_uuid(),
            "org": "o1",
            "group": "g1",
            "post": {"text": "AquilaX says hi"},
        }
    )
    ts = r.json()["answer"]["ts"]
    [posted] = h.slack_api.calls_to("chat.postMessage")
    assert not any(b.get("block_id", "").startswith(SOURCE_BLOCK_PREFIX) for b in posted["blocks"])
    await click(h, ALICE, ts, value="thumbs_up")
    await h.aquilax.wait_for(1)
    assert h.aquilax.statuses() == ["true"]


# ------------------------------------------------------------------ prompts and reaction forms


async def test_prompt_under_answers_another_app_posted(harness: Harness) -> None:
    h = harness
    h.slack_api.add_user(ADMIN, admin=True)
    assert "now get" in await h.feedback(ADMIN, "prompt on")
    a = await h.contextual_answer(sources=1)
    [prompt] = await h.slack_api.wait_for("chat.postMessage")
    assert prompt["thread_ts"] == a["ts"]
    assert prompt["blocks"][0]["text"]["text"] == "*Was this answer helpful?*"
    answer = await h.store.find_answer(CHANNEL, a["ts"])
    assert answer is not None and answer.prompt_ts is not None and not answer.posted_by_bot
    # A click on the prompt is a vote on the answer it sits under.
    await click(h, ALICE, answer.prompt_ts, value="thumbs_down", thread_ts=a["ts"])
    assert await delivered(h, 1) == [{"message_id": a["message_id"], "feedback": "thumbs_down"}]
    [opened] = await h.slack_api.wait_for("views.open")
    assert json.loads(opened["view"]["private_metadata"])["thread_ts"] == a["ts"]


async def test_no_prompt_by_default(harness: Harness) -> None:
    await harness.contextual_answer()
    assert harness.slack_api.calls_to("chat.postMessage") == []


async def test_thumbs_down_reaction_offers_the_form_when_the_channel_opts_in(
    harness: Harness,
) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    await delivered(h, 1)
    assert h.slack_api.calls_to("chat.postEphemeral") == []  # off by default

    h.slack_api.add_user(ADMIN, admin=True)
    assert "now offer" in await h.feedback(ADMIN, "form on")
    await h.slack.react(BOB, "triangular_flag_on_post", a["ts"])
    # The flag reaches the provider before the form explains it; an explanation that came
    # while the flag was still queued would rightly replace it (one delivery, not two).
    await delivered(h, 2)
    [offer] = await ephemerals(h, 1)
    assert offer["user"] == BOB
    button = offer["blocks"][1]["elements"][0]
    assert button["action_id"] == OPEN_FORM
    # Someone else cannot open Bob's form.
    await click(h, ALICE, a["ts"], action_id=OPEN_FORM, value=button["value"])
    await ephemerals(h, 2)
    assert h.slack_api.calls_to("views.open") == []
    await click(h, BOB, a["ts"], action_id=OPEN_FORM, value=button["value"])
    [opened] = await h.slack_api.wait_for("views.open")
    r = await h.slack.interaction(
        view_submission(BOB, opened["view"], category="unsafe", explanation="Leaks a password")
    )
    assert r.status_code == 200
    bodies = await delivered(h, 3)
    assert bodies[-1]["explanation"] == "Leaks a password"
    assert bodies[-1]["query_category"] == "unsafe"

    async def thanked() -> bool:
        return len(h.slack_api.calls_to("chat.postEphemeral")) == 3

    await wait_until(thanked)
