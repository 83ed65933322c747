"""POST /v1/answers, the CLI and the Python function: one registration, three doors."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config.channels import ChannelSettings
from storage import Store
from tests.credentials import API_TOKEN, BOT_TOKEN
from tests.dbtools import query
from tests.harness import Harness
from tests.process import _clean_environ
from tests.slack_payloads import CHANNEL, new_ts, new_uuid
from tests.standins import Standins

ROOT = Path(__file__).resolve().parent.parent


def contextual_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "channel": CHANNEL,
        "ts": new_ts(),
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
        "sources": [{"content_id": new_uuid(), "label": "Handbook, p. 4"}],
    }
    body.update(changes)
    return body


async def test_created_then_same_then_conflict(harness: Harness) -> None:
    body = contextual_body()
    r = await harness.register(body)
    assert r.status_code == 201
    assert r.json()["status"] == "created"
    assert r.json()["answer"] == body

    r = await harness.register(body)
    assert r.status_code == 200
    assert r.json()["status"] == "unchanged"

    other = {**body, "message_id": new_uuid()}
    r = await harness.register(other)
    assert r.status_code == 409
    assert "already mapped" in r.json()["error"]
    assert r.json()["answer"]["message_id"] == body["message_id"]  # the mapping kept

    aquilax = {
        "channel": CHANNEL,
        "ts": body["ts"],
        "provider": "aquilax",
        "request_id": new_uuid(),
        "org": "o1",
        "group": "g1",
    }
    assert (await harness.register(aquilax)).status_code == 409


async def test_aquilax_answer(harness: Harness) -> None:
    body = {
        "channel": "G0PRIVATE1",
        "ts": new_ts(),
        "provider": "aquilax",
        "request_id": new_uuid(),
        "org": "65dd3e835a669e3347654200",
        "group": "67e86d036e9921509f730483",
    }
    r = await harness.register(body)
    assert r.status_code == 201
    assert r.json()["answer"] == body


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"agent_id": "not-a-uuid"}, "agent_id", "valid UUID"),
        ({"message_id": None}, "message_id", "UUID"),
        ({"channel": "general"}, "channel", "Slack channel id"),
        ({"ts": "yesterday"}, "ts", "Slack message ts"),
        ({"sources": [{"content_id": "x", "label": "a"}]}, "content_id", "UUID"),
        ({"sources": [{"content_id": new_uuid(), "label": ""}]}, "label", "at least 1"),
        ({"provider": "openai"}, "provider", "must be 'contextual' or 'aquilax'"),
        ({"provider": ["contextual"]}, "provider", "must be 'contextual' or 'aquilax'"),
        ({"unexpected": 1}, "unexpected", "Extra inputs are not permitted"),
        ({"request_id": new_uuid()}, "request_id", "Extra inputs"),
    ],
)
async def test_invalid_bodies_get_422_with_field_and_reason(
    harness: Harness, change: dict, field: str, reason: str
) -> None:
    r = await harness.register(contextual_body(**change))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(field in map(str, d["loc"]) and reason in d["msg"] for d in detail), detail
    assert await harness.store.list_deliveries() == []
    assert await query(harness.store, "SELECT count(*) FROM answers") == [(0,)]


async def test_duplicate_sources_and_non_json(harness: Harness) -> None:
    cid = new_uuid()
    sources = [{"content_id": cid, "label": "a"}, {"content_id": cid, "label": "b"}]
    r = await harness.register(contextual_body(sources=sources))
    assert r.status_code == 422
    assert "only once" in r.text

    r = await harness.http.post(
        f"{harness.base_url}/v1/answers",
        content=b"{nope",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


async def test_bad_or_missing_token_is_401(harness: Harness) -> None:
    body = contextual_body()
    r = await harness.register(body, token="wrong-token-wrong-token")
    assert r.status_code == 401
    r = await harness.http.post(f"{harness.base_url}/v1/answers", json=body)
    assert r.status_code == 401
    assert API_TOKEN not in r.text
    assert await harness.store.find_answer(CHANNEL, body["ts"]) is None


async def test_python_function_in_the_same_process(harness: Harness) -> None:
    body = contextual_body()
    registered = await harness.bot.register_answer(body)
    assert registered.outcome == "created"
    answer = await harness.store.find_answer(CHANNEL, body["ts"])
    assert answer is not None and answer.first.message_id == body["message_id"]
    assert answer.sources[0].label == "Handbook, p. 4"
    assert (await harness.bot.register_answer(body)).outcome == "unchanged"


class TestApiOff:
    @pytest.fixture
    def bot_overrides(self) -> dict[str, object]:
        return {"feedback_api_token": None}

    async def test_no_token_configured_is_503_with_how_to_enable(self, harness: Harness) -> None:
        r = await harness.register(contextual_body())
        assert r.status_code == 503
        assert "FEEDBACK_API_TOKEN" in r.json()["error"]


def cli(*args: str, db: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEEDBACK_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=db.parent,
        check=check,
        timeout=60,
    )


def test_cli_answers_add(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    agent, message, source = new_uuid(), new_uuid(), new_uuid()
    ts = new_ts()
    args = ["answers", "add", "--channel", CHANNEL, "--ts", ts, "--provider", "contextual"]
    args += ["--agent-id", agent, "--message-id", message, "--source", f"{source}=Runbook"]
    out = cli(*args, db=db, check=True)
    assert json.loads(out.stdout)["status"] == "created"
    again = cli(*args, db=db, check=True)
    assert json.loads(again.stdout)["status"] == "unchanged"

    bad = cli("answers", "add", "--channel", CHANNEL, "--ts", ts, "--provider", "aquilax", db=db)
    assert bad.returncode == 2
    assert "request_id: Field required" in bad.stderr
    assert "Traceback" not in bad.stderr

    as_json = json.dumps(
        {
            "channel": CHANNEL,
            "ts": ts,
            "provider": "aquilax",
            "request_id": new_uuid(),
            "org": "o",
            "group": "g",
        }
    )
    conflict = cli("answers", "add", "--json", as_json, db=db)
    assert conflict.returncode == 1
    assert "already mapped" in conflict.stderr

    deep = cli("answers", "add", "--json", "[" * 100_000, db=db)
    assert deep.returncode == 2 and "invalid answer" in deep.stderr
    assert "Traceback" not in deep.stderr


async def cli_async(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI without blocking the event loop, for tests whose stand-ins it must reach."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**_clean_environ(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("slack", ["available", "no token", "unreachable"])
async def test_cli_registration_in_a_channel_with_prompts_on(
    tmp_path: Path, standins: Standins, slack: str
) -> None:
    slack_api = standins[0]
    db = tmp_path / "feedback.db"
    store = await Store.open(db)
    await ChannelSettings(store).set(CHANNEL, "prompt", True, "U0ADMIN001")
    await store.close()
    env = {"FEEDBACK_DB": str(db)}
    if slack != "no token":
        env["SLACK_BOT_TOKEN"] = BOT_TOKEN
        port = slack_api.port if slack == "available" else closed_port()
        env["SLACK_API_URL"] = f"http://127.0.0.1:{port}/api/"
    ts = new_ts()
    args = ["answers", "add", "--channel", CHANNEL, "--ts", ts, "--provider", "aquilax"]
    args += ["--request-id", new_uuid(), "--org", "o1", "--group", "g1"]

    code, out, err = await cli_async(*args, env=env)

    assert code == 0, err
    assert "Traceback" not in err
    answer = json.loads(out)["answer"]
    assert json.loads(out)["status"] == "created" and answer["ts"] == ts
    prompts = slack_api.calls_to("chat.postMessage")
    if slack == "available":
        assert [p["thread_ts"] for p in prompts] == [ts]
        assert answer["prompt_ts"]
        assert err == ""
    else:
        assert prompts == [] and "prompt_ts" not in answer
        assert "WARNING" in err and "Was this helpful?" in err, err
        assert ("SLACK_BOT_TOKEN" if slack == "no token" else "ClientConnectorError") in err
    assert BOT_TOKEN not in err
    store = await Store.open(db)
    try:
        assert await store.find_answer(CHANNEL, ts) is not None
    finally:
        await store.close()
