"""Answers register themselves: another app posts an answer with message metadata, Slack
sends message_metadata_* events, and only trusted apps' metadata counts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from slack_sdk import WebClient

from bot.answers.register import Answers
from bot.config.channels import ChannelSettings
from tests.credentials import BOT_TOKEN
from tests.harness import Harness, wait_until
from tests.slack_payloads import (
    ASSISTANT_APP,
    CHANNEL,
    answer_metadata,
    metadata_event,
    new_ts,
    new_uuid,
)

ADMIN, ALICE = "U0ADMIN001", "U0ALICE001"
OTHER_CHANNEL = "C0OTHER001"
DOCS = Path(__file__).resolve().parent.parent / "docs"
SCHEMA = json.loads((DOCS / "answer-metadata.schema.json").read_text())
SNIPPETS = (DOCS / "answer-metadata.md").read_text()


@pytest.fixture(autouse=True)
def users(harness: Harness) -> None:
    harness.slack_api.add_user(ADMIN, admin=True)
    harness.slack_api.add_user(ALICE)


async def posted(h: Harness, ts: str, metadata: dict[str, Any], **kw: Any) -> None:
    r = await h.slack.event(metadata_event("posted", ts, metadata, **kw))
    assert r.status_code == 200, r.text


async def trust(h: Harness, app: str = ASSISTANT_APP, *flags: str) -> str:
    return await h.feedback(ADMIN, " ".join(("trust", "add", app, *flags)))


async def test_a_trusted_apps_answer_registers_and_its_reactions_reach_the_provider(
    harness: Harness,
) -> None:
    h = harness
    assert "now registers answers in <#" in await trust(h)
    ts = new_ts()
    source = {"content_id": new_uuid(), "label": "Refund policy"}
    metadata = answer_metadata(sources=[source])
    await posted(h, ts, metadata)
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None
    assert answer.first.message_id == metadata["event_payload"]["message_id"]
    assert answer.first.agent_id == metadata["event_payload"]["agent_id"]
    assert [s.content_id for s in answer.sources] == [source["content_id"]]
    assert not answer.posted_by_bot
    # The same event again (Slack retries) changes nothing.
    await posted(h, ts, metadata)
    assert len((await h.store.list_answers(CHANNEL, 10, None))[0]) == 1

    await h.slack.react(ALICE, "-1", ts)
    [sent] = await h.contextual.wait_for(1)
    assert sent.body == {
        "message_id": metadata["event_payload"]["message_id"],
        "feedback": "thumbs_down",
    }
    assert sent.path == f"/v1/agents/{metadata['event_payload']['agent_id']}/feedback"

    status = await h.feedback(ALICE, "status")
    assert f"Trusted apps: `{ASSISTANT_APP}`" in status
    assert f"Last registration from metadata: 0 s ago, app `{ASSISTANT_APP}` (metadata event)" in (
        status.replace("1 s ago", "0 s ago")
    )


async def test_an_untrusted_apps_metadata_registers_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    ts = new_ts()
    with caplog.at_level(logging.DEBUG, logger="bot.answers.self_registration"):
        await posted(h, ts, answer_metadata())
    assert await h.store.find_answer(CHANNEL, ts) is None
    assert f"from app {ASSISTANT_APP}: not a trusted app" in caplog.text
    await h.slack.react(ALICE, "+1", ts)
    await h.settled()
    assert h.contextual.received == []
    assert "Trusted apps: none" in await h.feedback(ALICE, "status")
    assert "Last registration from metadata: never" in await h.feedback(ALICE, "status")


async def test_trust_is_per_channel_or_workspace_and_audited(harness: Harness) -> None:
    h = harness
    await trust(h)  # this channel only
    ts = new_ts()
    await posted(h, ts, answer_metadata(), channel=OTHER_CHANNEL)
    assert await h.store.find_answer(OTHER_CHANNEL, ts) is None
    assert "whole workspace" not in await trust(h, "A0OTHER001", "--workspace")
    reply = await h.feedback(ADMIN, "trust list", channel=OTHER_CHANNEL)
    assert "`A0OTHER001`" in reply and ASSISTANT_APP not in reply
    await posted(h, ts, answer_metadata(), channel=OTHER_CHANNEL, app_id="A0OTHER001")
    assert await h.store.find_answer(OTHER_CHANNEL, ts) is not None
    # Removing a workspace trust from one channel says where it is set.
    reply = await h.feedback(ADMIN, "trust remove A0OTHER001")
    assert "trusted for the whole workspace: add `--workspace`" in reply
    assert "no longer registers" in await h.feedback(ADMIN, "trust remove A0OTHER001 --workspace")
    assert "not a Slack app id" in await h.feedback(ADMIN, "trust add slackbot")
    assert "Only workspace admins" in await h.feedback(ALICE, f"trust add {ASSISTANT_APP}")
    keys = [(e.scope, e.key, e.new) for e in await h.store.audit_log()]
    assert (CHANNEL, "trusted_apps", json.dumps([ASSISTANT_APP])) in keys
    assert ("*", "trusted_apps", None) in keys  # the workspace's last one removed


async def test_malformed_metadata_is_refused_with_the_reason(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await trust(h)
    cases = [
        (answer_metadata(message_id="not-a-uuid"), "message_id"),
        (answer_metadata(provider="openai"), "provider"),
        (answer_metadata(channel=CHANNEL), "event_payload.channel: not allowed"),
        (answer_metadata(schema_version=3), "event_payload.schema_version"),
        (answer_metadata(colour="blue"), "colour"),
        ({"event_type": "ai_answer_posted", "event_payload": "ids"}, "event_payload"),
    ]
    for metadata, reason in cases:
        ts = new_ts()
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            await posted(h, ts, metadata)
        assert await h.store.find_answer(CHANNEL, ts) is None
        assert (
            f"refused the answer metadata on {CHANNEL}/{ts} from app {ASSISTANT_APP}" in caplog.text
        )
        assert reason in caplog.text, (reason, caplog.text)
    # An event Slack would never send (no channel) is a 400 that says what is missing.
    broken = metadata_event("posted", new_ts(), answer_metadata())
    del broken["channel_id"]
    r = await h.slack.event(broken)
    assert r.status_code == 400 and "channel_id" in r.text


async def test_updated_metadata_replaces_an_unvoted_mapping_and_never_a_voted_one(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await trust(h)
    ts = new_ts()
    first, second, third = answer_metadata(), answer_metadata(), answer_metadata()
    await posted(h, ts, first)
    r = await h.slack.event(metadata_event("updated", ts, second, previous=first))
    assert r.status_code == 200
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.message_id == second["event_payload"]["message_id"]

    await h.slack.react(ALICE, "+1", ts)
    await h.contextual.wait_for(1)
    with caplog.at_level(logging.WARNING):
        await h.slack.event(metadata_event("updated", ts, third, previous=second))
    assert "the registered mapping stays: votes were cast on it" in caplog.text
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.message_id == second["event_payload"]["message_id"]

    # Deleted metadata changes nothing: votes are history.
    await h.slack.event(metadata_event("deleted", ts, None, previous=second))
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.message_id == second["event_payload"]["message_id"]
    await h.slack.unreact(ALICE, "+1", ts)
    await h.contextual.wait_for(2)
    assert [r.body["feedback"] for r in h.contextual.received if r.body] == ["thumbs_up", "removed"]

    # An update that comes late (Slack does not promise the order) does not undo a newer one.
    ts = new_ts()
    now = time.time()
    await posted(h, ts, first)
    for metadata, previous, at in ((third, second, now + 2), (second, first, now + 1)):
        event = metadata_event("updated", ts, metadata, previous=previous)
        event["event_ts"] = f"{at:.6f}"
        await h.slack.event(event)
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.message_id == third["event_payload"]["message_id"]

    # An update that makes a message an answer registers it.
    ts = new_ts()
    await h.slack.event(
        metadata_event("updated", ts, first, previous={"event_type": "x", "event_payload": {}})
    )
    assert await h.store.find_answer(CHANNEL, ts) is not None


async def test_the_channel_defaults_fill_in_what_the_metadata_leaves_out(
    harness: Harness,
) -> None:
    h = harness
    await trust(h)
    await h.feedback(ADMIN, "provider aquilax")
    await h.feedback(ADMIN, "aquilax org 65dd3e835a669e3347654200 group 67e86d036e9921509f730483")
    ts = new_ts()
    request_id = new_uuid()
    await posted(
        h,
        ts,
        {"event_type": "ai_answer_posted", "event_payload": {"request_id": request_id}},
    )
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.first.provider == "aquilax"
    assert (answer.first.request_id, answer.first.org) == (request_id, "65dd3e835a669e3347654200")


async def test_the_bots_own_posts_carry_the_same_metadata(harness: Harness) -> None:
    h = harness
    agent, message = new_uuid(), new_uuid()
    thread = new_ts()
    body = {
        "channel": CHANNEL,
        "provider": "contextual",
        "agent_id": agent,
        "message_id": message,
        "sources": [{"content_id": new_uuid(), "label": "Doc"}],
        "post": {"text": "The refund window is 30 days.", "thread_ts": thread},
    }
    r = await h.register(body)
    assert r.status_code == 201, r.text
    [call] = h.slack_api.calls_to("chat.postMessage")
    metadata = call["metadata"]
    assert list(Draft202012Validator(SCHEMA).iter_errors(metadata)) == []
    assert metadata["event_payload"] == {
        "schema_version": 1,
        "provider": "contextual",
        "agent_id": agent,
        "message_id": message,
        "sources": body["sources"],
        "thread_ts": thread,
    }
    # Slack sends the bot its own post's metadata event too: already registered, ignored.
    ts = r.json()["answer"]["ts"]
    await posted(h, ts, metadata, app_id="A0APP0001")
    [answer] = (await h.store.list_answers(CHANNEL, 10, None))[0]
    assert answer.posted_by_bot and answer.ts == ts


async def test_a_new_metadata_answer_gets_the_prompt_after_the_ack(harness: Harness) -> None:
    h = harness
    await trust(h)
    await h.feedback(ADMIN, "prompt on")
    ts = new_ts()
    await posted(h, ts, answer_metadata())
    [prompt] = await h.slack_api.wait_for("chat.postMessage")
    assert prompt["thread_ts"] == ts

    async def recorded() -> bool:
        answer = await h.store.find_answer(CHANNEL, ts)
        return answer is not None and answer.prompt_ts is not None

    await wait_until(recorded)


async def test_the_published_schema_and_the_bots_validation_agree(harness: Harness) -> None:
    """Every example in the schema registers; payloads the schema refuses are refused."""
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    answers = Answers(harness.store, ChannelSettings(harness.store))
    for example in SCHEMA["examples"]:
        assert list(validator.iter_errors(example)) == []
        payload = {k: v for k, v in example["event_payload"].items() if k != "schema_version"}
        await answers.validate({"channel": CHANNEL, "ts": new_ts(), **payload})
    bad = [
        answer_metadata(message_id="nope"),
        answer_metadata(request_id=new_uuid()),
        answer_metadata("aquilax", org="has space"),
        answer_metadata(sources=[{"content_id": new_uuid(), "label": ""}]),
        answer_metadata(extra=1),
    ]
    for metadata in bad:
        assert list(validator.iter_errors(metadata)), metadata
        payload = {k: v for k, v in metadata["event_payload"].items() if k != "schema_version"}
        with pytest.raises(ValueError):
            await answers.validate({"channel": CHANNEL, "ts": new_ts(), **payload})


async def test_the_documented_python_snippet_posts_valid_metadata(harness: Harness) -> None:
    """docs/answer-metadata.md's snippet, run as written against the stand-in Slack."""
    code = SNIPPETS.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/answer-metadata.md", "exec"), namespace)
    client = WebClient(token=BOT_TOKEN, base_url=harness.slack_api.api_url)
    source = {"content_id": new_uuid(), "label": "Refund policy"}
    agent, message = new_uuid(), new_uuid()
    ts = await asyncio.to_thread(
        namespace["post_answer"], client, CHANNEL, "30 days.", agent, message, [source]
    )
    [call] = harness.slack_api.calls_to("chat.postMessage")
    assert call["metadata"]["event_payload"]["message_id"] == message
    assert harness.slack_api.violations == []  # checked against the schema by the stand-in
    # …and it registers, once the app is trusted.
    await trust(harness)
    await posted(harness, ts, call["metadata"])
    answer = await harness.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.sources[0].label == "Refund policy"


async def test_late_lookup_on_says_what_it_still_needs(harness: Harness) -> None:
    reply = await harness.feedback(ADMIN, "late-lookup on")
    assert "needs the channels:history and groups:history scope(s)" in reply
    assert "No app is trusted here yet" in reply
    assert "Late lookup of unknown reacted messages: on _(channel)_" in (
        await harness.feedback(ALICE, "status")
    )
    assert "back to the workspace default" in await harness.feedback(ADMIN, "reset late-lookup")


ENV_APP, WORKSPACE_APP, CHANNEL_APP = "A0ENVAPP01", "A0WSAPP001", "A0CHANAPP1"


@pytest.mark.parametrize("bot_overrides", [{"feedback_trusted_apps": (ENV_APP,)}])
async def test_trust_adds_up_a_channels_list_hides_neither_the_workspaces_nor_the_environments(
    harness: Harness,
) -> None:
    """FEEDBACK_TRUSTED_APPS, the workspace's list and the channel's own list together: a
    channel that trusts one app still takes metadata from the apps trusted above it."""
    h = harness
    assert "in every channel" in await trust(h, WORKSPACE_APP, "--workspace")
    await trust(h, CHANNEL_APP)  # this channel now has a list of its own
    reply = await h.feedback(ADMIN, "trust list")
    assert all(f"`{app}`" in reply for app in (ENV_APP, WORKSPACE_APP, CHANNEL_APP)), reply
    registered = {}
    for app in (ENV_APP, WORKSPACE_APP, CHANNEL_APP, "A0NOBODY01"):
        ts = new_ts()
        await posted(h, ts, answer_metadata(), app_id=app)
        registered[app] = await h.store.find_answer(CHANNEL, ts) is not None
    assert registered == {
        ENV_APP: True,
        WORKSPACE_APP: True,
        CHANNEL_APP: True,
        "A0NOBODY01": False,
    }
    # And in a channel with no list of its own, only what is trusted above it.
    for app, expected in ((ENV_APP, True), (WORKSPACE_APP, True), (CHANNEL_APP, False)):
        ts = new_ts()
        await posted(h, ts, answer_metadata(), app_id=app, channel=OTHER_CHANNEL)
        assert (await h.store.find_answer(OTHER_CHANNEL, ts) is not None) is expected, app


async def test_schema_version_true_and_a_post_field_are_refused_with_the_reason(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """`true` is not version 1, though Python and JSON Schema validators without strictness
    take it for 1. `post` would have the bot post the answer again itself: where the answer
    is comes from the message carrying the metadata, never from what it says."""
    h = harness
    await trust(h)
    cases = [
        (answer_metadata(schema_version=True), "event_payload.schema_version: True is not a"),
        (answer_metadata(schema_version=1.0), "event_payload.schema_version: 1.0 is not a"),
        (answer_metadata(schema_version="1"), "event_payload.schema_version: '1' is not a"),
        (
            answer_metadata(post={"text": "The refund window is 30 days."}),
            "event_payload.post: not allowed; the message itself says where the answer is",
        ),
    ]
    for metadata, reason in cases:
        ts = new_ts()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bot.answers.self_registration"):
            await posted(h, ts, metadata)
        assert await h.store.find_answer(CHANNEL, ts) is None
        assert reason in caplog.text, (reason, caplog.text)
    assert h.slack_api.calls_to("chat.postMessage") == []  # the post was not made either
    assert len((await h.store.list_answers(CHANNEL, 10, None))[0]) == 0


async def test_metadata_events_with_ids_out_of_bounds_are_400_and_register_nothing(
    harness: Harness,
) -> None:
    """An event_ts of 1e400 was read as infinity: that mapping's metadata was "newer" than
    any update could ever be. Slack's ids and timestamps have shapes; others are refused."""
    h = harness
    await trust(h)
    cases = {
        "event_ts": ("1e400", "event.event_ts: should be a Slack timestamp"),
        "message_ts": ("1" * 10_000, "event.message_ts: should be a Slack timestamp"),
        "channel_id": ("C" + "0" * 9_999, "event.channel_id: should be a Slack id"),
        "app_id": ("A" + "0" * 9_999, "event.app_id: should be a Slack id"),
    }
    for field, (value, reason) in cases.items():
        ts = new_ts()
        event = metadata_event("posted", ts, answer_metadata())
        event[field] = value
        r = await h.slack.event(event)
        assert r.status_code == 400 and reason in r.text, (field, r.status_code, r.text)
        assert await h.store.find_answer(CHANNEL, ts) is None
    assert len((await h.store.list_answers(CHANNEL, 10, None))[0]) == 0


async def test_metadata_version_2_registers_an_answer_for_several_targets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    await trust(h)
    targets = [
        {"provider": "contextual", "agent_id": new_uuid(), "message_id": new_uuid()},
        {"provider": "langfuse", "trace_id": "trace-0042"},
    ]
    metadata = {
        "event_type": "ai_answer_posted",
        "event_payload": {"schema_version": 2, "targets": targets},
    }
    assert list(Draft202012Validator(SCHEMA).iter_errors(metadata)) == []
    ts = new_ts()
    await posted(h, ts, metadata)

    async def registered() -> bool:
        return await h.store.find_answer(CHANNEL, ts) is not None

    await wait_until(registered)
    answer = await h.store.find_answer(CHANNEL, ts)
    assert answer is not None and answer.providers == "contextual+langfuse"
    await h.slack.react(ALICE, "+1", ts)
    await h.contextual.wait_for(1)
    await h.langfuse.wait_for(1)
    # Version 1 carries one target: a list there is refused, naming the field.
    v1 = {**metadata, "event_payload": {"schema_version": 1, "targets": targets}}
    other = new_ts()
    await posted(h, other, v1)
    await wait_until(lambda: _logged(caplog, "a list of targets needs schema_version 2"))
    assert await h.store.find_answer(CHANNEL, other) is None


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return text in caplog.text
