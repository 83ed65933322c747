"""POST /v1/answers, the CLI and the Python function: one registration, three doors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import API_TOKEN, CHANNEL, Harness, new_ts, new_uuid

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
    assert await harness.store.query("SELECT count(*) FROM answers") == [(0,)]


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
    assert answer is not None and answer.message_id == body["message_id"]
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
