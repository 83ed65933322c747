"""`feedback-bot doctor` against the stand-ins: ✓ where all is well, ✗ with the fix where
something is not, exit 0 or 1, and never a secret."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml
from cryptography.fernet import Fernet

from bot.doctor import SCOPES
from bot.domain import Answer, DeliveryState, Status, VoteChange
from storage import Finished, Store
from tests.conftest import env_for, settings_for
from tests.credentials import APP_TOKEN, SECRETS
from tests.process import _clean_environ
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn

Standins = tuple[SlackStandIn, ProviderStandIn, ProviderStandIn]
ROOT = Path(__file__).resolve().parent.parent


async def doctor(tmp_path: Path, standins: Standins, *args: str, **env: str) -> tuple[int, str]:
    settings = settings_for(tmp_path / "feedback.db", *standins)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        *args,
        env={**_clean_environ(), **env_for(settings), "PYTHONPATH": os.getcwd(), **env},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    text = out.decode()
    for secret in SECRETS:
        assert secret not in text, f"doctor printed a secret: {secret[:8]}…"
    assert "Traceback" not in text, text
    assert process.returncode is not None
    return process.returncode, text


def marks(text: str) -> dict[str, str]:
    """check name -> ✓, ✗ or –"""
    out = {}
    for line in text.splitlines():
        if line[:1] in "✓✗–":
            out[line[2:].split(":", 1)[0]] = line[0]
    return out


def test_the_scopes_doctor_checks_are_the_manifests() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert sorted(SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])


async def test_all_is_well(tmp_path: Path, standins: Standins) -> None:
    code, text = await doctor(tmp_path, standins)
    assert code == 0, text
    assert marks(text) == {
        "settings": "✓",
        "database": "✓",
        "Slack bot token": "✓",
        "Slack history scopes": "–",
        "Slack scopes": "✓",
        "Slack app token": "–",
        "Contextual key": "✓",
        "Contextual host": "✓",
        "AquilaX key": "✓",
        "AquilaX host": "✓",
        "stored keys": "–",
        "outbox": "✓",
    }
    assert "✓ Contextual key: from CONTEXTUAL_API_KEY (…" in text
    code, text = await doctor(tmp_path, standins, "--json")
    checks = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and [c["check"] for c in checks][:2] == ["settings", "database"]
    assert {c["ok"] for c in checks} == {True, None}


async def test_each_fault_is_a_cross_with_its_fix(tmp_path: Path, standins: Standins) -> None:
    slack = standins[0]
    slack.scopes.remove("users:read")
    # A key entered in Slack, stored under one secret key, read under another.
    store = await Store.open(tmp_path / "feedback.db")
    stored_under = Fernet.generate_key()
    await store.set_provider_key(
        "aquilax", Fernet(stored_under).encrypt(b"ax-key-entered-in-slack"), "lack", "U1"
    )
    # And a dead delivery.
    _, answer, _ = await store.register_answer(
        Answer(
            channel="C0DOCTOR1",
            ts="1700000000.000100",
            provider="contextual",
            agent_id="3c90c3cc-0d44-4b50-8888-8dd25736052a",
            message_id="0a1b2c3d-0000-4000-8000-000000000001",
        )
    )
    result = await store.apply_vote(
        VoteChange(answer.id, "U1", "button", "toggle", Status.THUMBS_UP)
    )
    assert result.delivery_id is not None
    claim = await store.finish_and_claim([], 0.0 + 10**10, 1, owner="o", lease=1)
    await store.finish_and_claim(
        [Finished(claim.deliveries[0].id, DeliveryState.DEAD, "Contextual answered HTTP 401")],
        10**10,
        0,
        owner="o",
        lease=1,
    )
    await store.close()

    code, text = await doctor(
        tmp_path,
        standins,
        AQUILAX_BASE_URL="http://127.0.0.1:9",  # nothing listens there
        CONTEXTUAL_API_KEY="",
        FEEDBACK_SECRET_KEY=Fernet.generate_key().decode(),
    )
    assert code == 1, text
    m = marks(text)
    for name in ("Slack scopes", "Contextual key", "AquilaX host", "stored keys", "outbox"):
        assert m[name] == "✗", (name, text)
    assert m["Slack bot token"] == "✓" and m["database"] == "✓"
    assert "missing users:read" in text and "reinstall the app" in text
    assert "set CONTEXTUAL_API_KEY, or enter it with /feedback setup" in text
    assert "✗ AquilaX host: http://127.0.0.1:9/ unreachable" in text
    assert "AquilaX do not decrypt with FEEDBACK_SECRET_KEY" in text
    assert "1 dead" in text and "feedback-bot deliveries retry" in text


async def test_a_refused_token_and_socket_mode(tmp_path: Path, standins: Standins) -> None:
    code, text = await doctor(
        tmp_path, standins, SLACK_BOT_TOKEN="xoxb-0000000000-0000000000-notthebottoken"
    )
    assert code == 1 and "✗ Slack bot token: refused by Slack (invalid_auth)" in text
    code, text = await doctor(tmp_path, standins, SLACK_APP_TOKEN=APP_TOKEN)
    assert code == 0, text
    assert "✓ Slack app token: opens a Socket Mode connection" in text
    code, text = await doctor(tmp_path, standins, SLACK_APP_TOKEN="xapp-1-A0-000-nottheapptoken")
    assert code == 1 and "✗ Slack app token: refused by Slack" in text


async def test_bad_settings_are_a_cross_not_a_crash(tmp_path: Path, standins: Standins) -> None:
    code, text = await doctor(tmp_path, standins, FEEDBACK_PORT="eighty")
    assert code == 1
    assert text.startswith("✗ settings: FEEDBACK_PORT is invalid")
