"""One answer, several targets: a registration naming a list of targets, each with its own
deliveries. Signed Slack events in, each stand-in checking its requests against its spec;
every target ends on the newest verdict, and one target down holds back no other."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from bot.domain import Answer, Target
from bot.providers.base import feedback_uuid
from bot.slack.blocks import SOURCE_BLOCK_PREFIX, SOURCE_VOTE
from tests.conftest import env_for
from tests.credentials import API_TOKEN
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, block_actions, new_ts, new_uuid

ALICE, BOB = "U0ALICE001", "U0BOB00001"


def fanned_out(ts: str | None = None, sources: int = 0) -> dict[str, Any]:
    contextual: dict[str, Any] = {
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "sources": [{"content_id": new_uuid(), "label": f"Doc {i + 1}"} for i in range(sources)],
    }
    langfuse = {"provider": "langfuse", "trace_id": new_uuid().replace("-", "")}
    return {"channel": CHANNEL, "ts": ts or new_ts(), "targets": [contextual, langfuse]}


def score_id(body: dict[str, Any], content_id: str = "") -> str:
    """The Langfuse score the answer's slot holds (the second target)."""
    target = Target(provider="langfuse", trace_id=body["targets"][1]["trace_id"], position=1)
    answer = Answer(channel=body["channel"], ts=body["ts"], targets=(target,))
    return feedback_uuid(answer, target, content_id)


async def test_both_targets_follow_every_vote_and_end_withdrawn(harness: Harness) -> None:
    h = harness
    body = fanned_out()
    r = await h.register(body)
    assert r.status_code == 201, r.text
    assert r.json()["answer"] == body  # shown as registered: its list of targets
    await h.slack.react(ALICE, "+1", body["ts"])
    await h.contextual.wait_for(1)
    await h.langfuse.wait_for(1)
    await h.slack.react(BOB, "-1", body["ts"])
    await h.contextual.wait_for(2)
    await h.langfuse.wait_for(2)
    await h.settled()
    assert h.contextual.statuses() == h.langfuse.statuses() == ["thumbs_up", "thumbs_down"]
    await h.slack.unreact(BOB, "-1", body["ts"])
    await h.slack.unreact(ALICE, "+1", body["ts"])
    await h.settled()
    assert h.contextual.statuses()[-1] == h.langfuse.statuses()[-1] == "removed"
    assert h.langfuse.held == {}
    message_id = body["targets"][0]["message_id"]
    assert {(r.body or {})["message_id"] for r in h.contextual.received} == {message_id}
    # Each delivery names its target; each target's rows are its own.
    rows = await h.store.list_deliveries()
    by_target: dict[str, list[str]] = {}
    for d in sorted(rows, key=lambda d: d.id):
        by_target.setdefault(d.target.describe(), []).append(d.verdict.status.value)
    trace = body["targets"][1]["trace_id"]
    assert set(by_target) == {f"contextual message_id={message_id}", f"langfuse trace_id={trace}"}
    for statuses in by_target.values():
        assert statuses[0] == "thumbs_up" and statuses[-1] == "removed"


async def test_one_target_down_holds_back_no_other_and_catches_up(harness: Harness) -> None:
    h = harness
    body = fanned_out()
    assert (await h.register(body)).status_code == 201
    h.langfuse.fail(503, times=1000)
    await h.slack.react(ALICE, "+1", body["ts"])
    await h.slack.react(BOB, "-1", body["ts"])

    async def contextual_done() -> bool:
        rows = await h.store.list_deliveries()
        mine = [d for d in rows if d.target.provider == "contextual"]
        return bool(mine) and all(d.state in ("delivered", "superseded") for d in mine)

    await wait_until(contextual_done)
    # Contextual is on the newest verdict (the 👍 may have been superseded before it left)…
    assert h.contextual.statuses()[-1] == "thumbs_down"
    # …while every Langfuse send was refused, and retried.
    assert h.langfuse.received == [] and len(h.langfuse.rejected) >= 1
    h.langfuse.script.clear()  # back up
    await h.settled()
    # Only the newest verdict was still queued for Langfuse: the older was superseded.
    assert h.langfuse.held_values() == {score_id(body): "thumbs_down"}


async def test_the_same_targets_again_are_unchanged_and_others_a_conflict(
    harness: Harness,
) -> None:
    h = harness
    body = fanned_out()
    assert (await h.register(body)).status_code == 201
    again = await h.register(body)
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    fewer = await h.register({**body, "targets": body["targets"][:1]})
    assert fewer.status_code == 409, fewer.text
    reordered = await h.register({**body, "targets": body["targets"][::-1]})
    assert reordered.status_code == 409, reordered.text
    # The single form is a list of one.
    single = {"channel": CHANNEL, "ts": new_ts(), **body["targets"][0]}
    assert (await h.register(single)).status_code == 201
    as_list = {"channel": CHANNEL, "ts": single["ts"], "targets": body["targets"][:1]}
    r = await h.register(as_list)
    assert r.status_code == 200 and r.json()["status"] == "unchanged"
    assert r.json()["answer"] == single  # one target is shown in the single form


@pytest.mark.parametrize(
    ("targets", "loc", "says"),
    [
        ([], ["targets"], "at least 1"),
        ([{"provider": "langfuse", "trace_id": "t1"}] * 2, ["targets"], "targets 0 and 1"),
        (
            [{"provider": "langfuse", "trace_id": "t1"}, {"provider": "langfuse"}],
            ["targets", 1, "trace_id"],
            "required",
        ),
        ([{"provider": "langsmith", "run_id": "r1"}], ["targets", 0, "run_id"], "UUID"),
        ([{"provider": "phoenix", "id": "x"}], ["targets", 0, "provider"], "'langfuse'"),
        ([{"trace_id": "t1"}], ["targets", 0, "provider"], "'contextual'"),
        (
            [{"provider": "langfuse", "trace_id": "t1", "channel": CHANNEL}],
            ["targets", 0, "channel"],
            "Extra inputs",
        ),
        ([{"provider": "langfuse", "trace_id": "t"}] + [{}] * 8, ["targets"], "at most 8"),
    ],
)
async def test_bad_target_lists_are_422_naming_the_field_and_store_nothing(
    harness: Harness, targets: list[Any], loc: list[Any], says: str
) -> None:
    h = harness
    r = await h.register({"channel": CHANNEL, "ts": new_ts(), "targets": targets})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"] == loc and says in d["msg"] for d in detail), detail
    assert await query(h.store, "SELECT count(*) FROM answers") == [(0,)]


async def test_a_source_vote_goes_to_the_target_that_knows_the_source_only(
    harness: Harness,
) -> None:
    h = harness
    body = {**fanned_out(sources=2), "post": {"text": "The refund window is 30 days."}}
    del body["ts"]
    r = await h.register(body)
    assert r.status_code == 201, r.text
    ts = r.json()["answer"]["ts"]
    source = body["targets"][0]["sources"][1]["content_id"]
    click = block_actions(
        ALICE, ts, SOURCE_VOTE, "thumbs_down", block_id=SOURCE_BLOCK_PREFIX + source
    )
    assert (await h.slack.interaction(click)).status_code == 200
    [sent] = await h.contextual.wait_for(1)
    assert (sent.body or {})["content_id"] == source
    await h.settled()
    assert h.langfuse.attempts == []  # Langfuse has no notion of the answer's sources
    # The answer itself still goes to both.
    await h.slack.react(BOB, "+1", ts)
    await h.langfuse.wait_for(1)
    await h.contextual.wait_for(2)


@pytest.mark.parametrize("bot_overrides", [{"langfuse_secret_key": None}])
async def test_a_target_without_a_key_is_dead_and_the_other_delivered(harness: Harness) -> None:
    h = harness
    body = fanned_out()
    assert (await h.register(body)).status_code == 201
    await h.slack.react(ALICE, "+1", body["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    states = {d.target.provider: (d.state, d.last_error) for d in await h.store.list_deliveries()}
    assert states["contextual"][0] == "delivered"
    assert states["langfuse"][0] == "dead"
    assert "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY" in (states["langfuse"][1] or "")
    shown = await h.http.get(
        f"{h.base_url}/v1/answers/{CHANNEL}/{body['ts']}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert shown.status_code == 200, shown.text
    deliveries = shown.json()["deliveries"]
    assert {(d["provider"], d["state"]) for d in deliveries} == {
        ("contextual", "delivered"),
        ("langfuse", "dead"),
    }


def test_the_cli_registers_a_fanned_out_answer_from_its_options(tmp_path: Any) -> None:
    from bot.config.settings import Settings

    settings = Settings(_env_file=None, feedback_db=str(tmp_path / "f.db"))  # type: ignore[call-arg]
    agent, message, trace = new_uuid(), new_uuid(), "trace-1"
    command = [
        sys.executable,
        "-m",
        "bot",
        "answers",
        "add",
        "--channel",
        CHANNEL,
        "--ts",
        "1700000000.000100",
        "--provider",
        "contextual",
        "--agent-id",
        agent,
        "--message-id",
        message,
        "--target",
        f"provider=langfuse,trace_id={trace}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env_for(settings))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["answer"]["targets"] == [
        {"provider": "contextual", "agent_id": agent, "message_id": message, "sources": []},
        {"provider": "langfuse", "trace_id": trace},
    ]
    bad = subprocess.run(
        [*command[:-1], "provider=langfuse"], capture_output=True, text=True, env=env_for(settings)
    )
    assert bad.returncode == 2 and "targets.1.trace_id: Field required" in bad.stderr


ADMIN = "U0ADMIN001"


@pytest.mark.parametrize(
    "bot_overrides",
    [{"langfuse_secret_key": None, "feedback_metrics": True, "feedback_admins": (ADMIN,)}],
)
async def test_the_outbox_figures_and_the_export_name_each_target(harness: Harness) -> None:
    h = harness
    body = fanned_out()
    assert (await h.register(body)).status_code == 201
    await h.slack.react(ALICE, "+1", body["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    metrics = (await h.http.get(f"{h.base_url}/metrics")).text
    assert 'feedback_outbox_by_provider{provider="langfuse",state="dead"} 1.0' in metrics
    assert 'feedback_outbox_by_provider{provider="contextual",state="dead"} 0.0' not in metrics
    reply = await h.feedback(ADMIN, "deliveries")
    trace = body["targets"][1]["trace_id"]
    assert f"(langfuse trace_id={trace}): no Langfuse API key" in reply
    export = await h.http.get(
        f"{h.base_url}/v1/votes", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    [vote] = [json.loads(line) for line in export.text.splitlines()]
    message = body["targets"][0]["message_id"]
    assert vote["targets"] == f"contextual:{message} langfuse:{trace}"
    assert (vote["provider"], vote["message_id"]) == ("contextual", message)
