"""LangSmith and Langfuse end to end: signed Slack events in, requests to stand-ins that
check every one against the vendored specs (tests/contracts/), and what each provider holds
in the end: one feedback (one score) per slot, changed with the verdict, deleted when the
last vote is withdrawn."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.domain import Answer, Target
from bot.providers.base import feedback_uuid
from bot.slack.blocks import ANSWER_FLAG
from tests.credentials import LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGSMITH_KEY
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, block_actions, new_ts, new_uuid, view_submission
from tests.standins.providers import ProviderStandIn

ALICE, BOB = "U0ALICE001", "U0BOB00001"
ADMIN = "U0ADMIN001"


async def delivered(h: Harness, provider: ProviderStandIn, count: int) -> list[str]:
    """Wait until `provider` applied `count` requests and the outbox is empty; what each asked."""
    await provider.wait_for(count)
    await h.settled()
    return provider.statuses()


# ------------------------------------------------------------------ LangSmith


async def test_langsmith_one_feedback_per_slot_updated_then_deleted(harness: Harness) -> None:
    h = harness
    a = await h.langsmith_answer()
    answer = Answer(
        channel=a["channel"],
        ts=a["ts"],
        targets=(Target(provider="langsmith", run_id=a["run_id"]),),
    )
    feedback_id = feedback_uuid(answer, answer.first, "")

    await h.slack.react(ALICE, "+1", a["ts"])
    assert await delivered(h, h.langsmith, 1) == ["thumbs_up"]
    # The first vote: an update LangSmith answers 404 to (no such feedback yet), then a create
    # with the id the bot derived, so that a create sent twice is one feedback.
    assert h.langsmith.rejected == [(404, f"/api/v1/feedback/{feedback_id}")]
    [create] = h.langsmith.received
    assert create.method == "POST" and create.path == "/api/v1/feedback"
    assert create.headers["X-API-Key"] == LANGSMITH_KEY
    body = create.body or {}
    assert body["id"] == feedback_id
    assert (body["run_id"], body["trace_id"]) == (a["run_id"], a["trace_id"])
    assert (body["key"], body["score"], body["value"]) == ("user_feedback", 1, "thumbs_up")
    assert body["feedback_source"] == {
        "type": "api",
        "metadata": {"app": "feedback-bot", "slack_channel": a["channel"], "slack_ts": a["ts"]},
    }

    await h.slack.react(BOB, "-1", a["ts"])
    assert await delivered(h, h.langsmith, 2) == ["thumbs_up", "thumbs_down"]
    change = h.langsmith.received[1]
    assert (change.method, change.path) == ("PATCH", f"/api/v1/feedback/{feedback_id}")
    assert change.body == {"score": 0, "value": "thumbs_down", "comment": None}

    await h.slack.unreact(BOB, "-1", a["ts"])
    assert await delivered(h, h.langsmith, 3) == ["thumbs_up", "thumbs_down", "thumbs_up"]
    assert h.langsmith.held_values() == {feedback_id: "thumbs_up"}
    await h.slack.unreact(ALICE, "+1", a["ts"])
    assert (await delivered(h, h.langsmith, 4))[-1] == "removed"
    assert h.langsmith.received[-1].method == "DELETE"
    assert h.langsmith.held == {}
    deliveries = await h.store.list_deliveries()
    assert [d.state for d in deliveries] == ["delivered"] * 4
    assert {d.provider_ref for d in deliveries} == {feedback_id}
    assert h.contextual.received == h.aquilax.received == h.langfuse.received == []


async def test_langsmith_comment_is_the_explanation_and_a_second_answer_its_own_feedback(
    harness: Harness,
) -> None:
    h = harness
    r = await h.register(
        {
            "channel": CHANNEL,
            "provider": "langsmith",
            "run_id": new_uuid(),
            "post": {"text": "hi"},
        }
    )
    assert r.status_code == 201, r.text
    a = r.json()["answer"]
    assert "trace_id" not in a  # optional, and not shown when absent
    other = await h.langsmith_answer(trace=False)
    await h.slack.react(ALICE, "-1", other["ts"])
    flag = block_actions(BOB, a["ts"], ANSWER_FLAG, "flagged", kind="button")
    assert (await h.slack.interaction(flag)).status_code == 200
    await delivered(h, h.langsmith, 2)
    [opened] = await h.slack_api.wait_for("views.open")
    submission = view_submission(BOB, opened["view"], category="outdated", explanation="Not true.")
    assert (await h.slack.interaction(submission)).status_code == 200
    await delivered(h, h.langsmith, 3)
    explained = h.langsmith.received[-1]
    assert explained.method == "PATCH"
    assert explained.body == {"score": 0, "value": "flagged", "comment": "Not true."}
    # Two answers, two feedbacks; the one without a trace sends none.
    assert len(h.langsmith.held) == 2
    assert all(
        "trace_id" not in f for f in h.langsmith.held.values() if f["run_id"] == other["run_id"]
    )


# ------------------------------------------------------------------ Langfuse


def basic(public: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


async def test_langfuse_one_score_per_slot_upserted_then_deleted(harness: Harness) -> None:
    h = harness
    a = await h.langfuse_answer()
    answer = Answer(
        channel=a["channel"],
        ts=a["ts"],
        targets=(
            Target(provider="langfuse", trace_id=a["trace_id"], observation_id=a["observation_id"]),
        ),
    )
    score_id = feedback_uuid(answer, answer.first, "")

    await h.slack.react(ALICE, "+1", a["ts"])
    assert await delivered(h, h.langfuse, 1) == ["thumbs_up"]
    [first] = h.langfuse.received
    assert (first.method, first.path) == ("POST", "/api/public/scores")
    assert first.headers["Authorization"] == basic(LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY)
    assert first.body == {
        "id": score_id,
        "traceId": a["trace_id"],
        "observationId": a["observation_id"],
        "name": "user-feedback",
        "dataType": "CATEGORICAL",
        "value": "thumbs_up",
        "comment": None,
        "metadata": {"app": "feedback-bot", "slack_channel": a["channel"], "slack_ts": a["ts"]},
    }
    await h.slack.react(BOB, "triangular_flag_on_post", a["ts"])
    await h.slack.unreact(BOB, "triangular_flag_on_post", a["ts"])
    await h.settled()
    await h.slack.react(BOB, "-1", a["ts"])
    await h.settled()
    statuses = h.langfuse.statuses()
    # The flag may have been superseded by its own withdrawal before it was sent.
    assert statuses[0] == "thumbs_up" and statuses[-1] == "thumbs_down"
    assert {r.body["id"] for r in h.langfuse.received if r.body} == {score_id}  # one score
    assert h.langfuse.held_values() == {score_id: "thumbs_down"}
    await h.slack.unreact(BOB, "-1", a["ts"])
    await h.slack.unreact(ALICE, "+1", a["ts"])
    await h.settled()
    assert h.langfuse.statuses()[-1] == "removed"
    assert h.langfuse.received[-1].path == f"/api/public/scores/{score_id}"
    assert h.langfuse.held == {}


async def test_langfuse_rate_limit_is_honoured_and_a_delete_of_nothing_is_delivered(
    harness: Harness,
) -> None:
    h = harness
    a = await h.langfuse_answer(observation=False)
    h.langfuse.fail(429, retry_after="0.2")
    h.langfuse.fail(503)
    await h.slack.react(ALICE, "+1", a["ts"])
    assert await delivered(h, h.langfuse, 1) == ["thumbs_up"]
    assert [status for status, _ in h.langfuse.rejected] == [429, 503]
    assert "observationId" not in (h.langfuse.received[0].body or {})
    [row] = await h.store.list_deliveries()
    assert (row.state, row.attempts) == ("delivered", 3)
    # Someone deleted the score in Langfuse meanwhile: the removal finds nothing, and is done.
    h.langfuse.held.clear()
    await h.slack.unreact(ALICE, "+1", a["ts"])
    await h.settled()
    assert h.langfuse.rejected[-1][0] == 404
    rows = await h.store.list_deliveries()
    assert rows[0].state == "delivered"


# ------------------------------------------------------------------ registration


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"provider": "langsmith"}, ["run_id"]),
        ({"provider": "langsmith", "run_id": "run-1"}, ["run_id"]),
        ({"provider": "langsmith", "run_id": str(uuid.uuid4()), "trace_id": "t"}, ["trace_id"]),
        ({"provider": "langfuse"}, ["trace_id"]),
        ({"provider": "langfuse", "trace_id": "has space"}, ["trace_id"]),
        ({"provider": "langfuse", "trace_id": "t1", "run_id": str(uuid.uuid4())}, ["run_id"]),
        (
            {"provider": "langsmith", "run_id": str(uuid.uuid4()), "message_id": str(uuid.uuid4())},
            ["message_id"],
        ),
        ({"provider": "phoenix", "trace_id": "t1"}, ["provider"]),
    ],
)
async def test_bad_registrations_are_422_naming_the_field_and_store_nothing(
    harness: Harness, body: dict[str, Any], loc: list[str]
) -> None:
    h = harness
    r = await h.register({"channel": CHANNEL, "ts": new_ts(), **body})
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert loc in [e["loc"] for e in errors], errors
    if loc == ["provider"]:
        message = next(e["msg"] for e in errors if e["loc"] == ["provider"])
        for name in ("contextual", "aquilax", "langsmith", "langfuse"):
            assert repr(name) in message
    assert await query(h.store, "SELECT count(*) FROM answers") == [(0,)]


async def test_the_same_registration_twice_is_unchanged_and_another_run_a_conflict(
    harness: Harness,
) -> None:
    h = harness
    a = await h.langsmith_answer()
    again = await h.register(a)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    other = await h.register({**a, "run_id": new_uuid()})
    assert other.status_code == 409, other.text


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    "bot_overrides",
    [{"langsmith_api_key": None, "langfuse_secret_key": None}],
)
async def test_without_keys_their_deliveries_are_dead_naming_the_settings_and_others_go_on(
    harness: Harness,
) -> None:
    h = harness
    smith, fuse, ctx = (
        await h.langsmith_answer(),
        await h.langfuse_answer(),
        await h.contextual_answer(),
    )
    for a in (smith, fuse, ctx):
        await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    dead = {
        d.target.provider: d.last_error
        for d in await h.store.list_deliveries()
        if d.state == "dead"
    }
    assert set(dead) == {"langsmith", "langfuse"}
    assert "LANGSMITH_API_KEY" in (dead["langsmith"] or "")
    assert "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY" in (dead["langfuse"] or "")
    assert h.langsmith.attempts == h.langfuse.attempts == []


@pytest.mark.parametrize(
    "bot_overrides",
    [{"feedback_secret_key": Fernet.generate_key().decode(), "feedback_admins": (ADMIN,)}],
)
async def test_langfuse_keys_entered_in_setup_are_a_pair_and_never_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    await h.feedback(ADMIN, "setup")
    [opened] = await h.slack_api.wait_for("views.open")
    view = opened["view"]
    field = "langfuse_key"

    def entered(value: str) -> dict[str, Any]:
        submit = view_submission(ADMIN, view, category=None, explanation=None)
        submit["view"]["state"]["values"] = {
            field: {field: {"type": "plain_text_input", "value": value}}
        }
        return submit

    half = await h.slack.interaction(entered("sk-lf-only-the-secret-half"))
    assert half.json() == {
        "response_action": "errors",
        "errors": {field: "Enter both keys as public:secret, e.g. pk-lf-…:sk-lf-…"},
    }
    pair = "pk-lf-from-setup-0001:sk-lf-from-setup-Zr2Lp5Wx"
    ok = await h.slack.interaction(entered(pair))
    assert ok.status_code == 200 and ok.text == ""
    await h.slack_api.wait_for("chat.postEphemeral")
    h.langfuse.api_key = pair
    a = await h.langfuse_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    [r] = await h.langfuse.wait_for(1)
    assert r.headers["Authorization"] == basic(*pair.split(":"))
    secret = pair.split(":")[1]
    assert secret not in caplog.text and pair not in caplog.text
    assert secret not in json.dumps([c.args for c in h.slack_api.calls])


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize("provider", ["langsmith", "langfuse"])
async def test_a_timeout_a_refused_connection_and_a_wrong_key_each_as_the_provider_s_rule(
    harness: Harness, provider: str
) -> None:
    h = harness
    stand_in: ProviderStandIn = getattr(h, provider)
    a = await getattr(h, f"{provider}_answer")()
    # Longer than the bot's 0.5 s provider timeout: retried.
    stand_in.hang(1.0)
    await h.slack.react(ALICE, "+1", a["ts"])
    await stand_in.wait_for(1)
    await h.settled()
    assert list(stand_in.held_values().values()) == ["thumbs_up"]
    [row] = await h.store.list_deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)

    # Nobody listening: retried until it comes back.
    port = stand_in.port
    await stand_in.stop()
    await h.slack.react(BOB, "-1", a["ts"])

    async def failed_twice() -> bool:
        rows = await h.store.list_deliveries()
        return rows[0].attempts >= 2 and "unreachable" in (rows[0].last_error or "")

    await wait_until(failed_twice)
    await stand_in.start(port)
    await h.settled()
    assert list(stand_in.held_values().values()) == ["thumbs_down"]

    # A wrong key: dead at once, with the provider's words, and retried by command.
    real_key = stand_in.api_key
    stand_in.api_key = "pk-lf-someone-else:sk-lf-someone-else-1"
    await h.slack.unreact(BOB, "-1", a["ts"])
    await h.settled()
    [dead] = [d for d in await h.store.list_deliveries() if d.state == "dead"]
    assert dead.attempts == 1 and "HTTP 401" in (dead.last_error or "")
    stand_in.api_key = real_key
    assert await h.store.retry_dead() == (1, 0)
    await h.settled()
    assert list(stand_in.held_values().values()) == ["thumbs_up"]  # Alice's vote stands
