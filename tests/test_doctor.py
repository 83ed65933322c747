"""`feedback-bot doctor` against the stand-ins: ✓ where all is well, ✗ with the fix where
something is not, exit 0 or 1, and never a secret."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography.fernet import Fernet

from bot.cli.doctor import ASK_SCOPES, SCOPES
from bot.domain import Answer, DeliveryState, Status, Target, VoteChange
from bot.slack.api import HISTORY_SCOPES
from storage import Finished, Store
from tests.conftest import env_for, settings_for
from tests.credentials import APP_TOKEN, SECRETS
from tests.process import _clean_environ
from tests.standins import Standins
from tests.standins.providers import ProviderStandIn

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
    asked = sorted(SCOPES + ASK_SCOPES + HISTORY_SCOPES)
    assert asked == sorted(manifest["oauth_config"]["scopes"]["bot"])


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
        "LangSmith key": "✓",
        "LangSmith host": "✓",
        "Langfuse key": "✓",
        "Langfuse host": "✓",
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
            targets=(
                Target(
                    provider="contextual",
                    agent_id="3c90c3cc-0d44-4b50-8888-8dd25736052a",
                    message_id="0a1b2c3d-0000-4000-8000-000000000001",
                ),
            ),
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


def feedback_violations(provider: ProviderStandIn) -> list[str]:
    """Requests for feedback that break the spec (the host check's GET of the base URL
    breaks it on purpose: it only looks for an HTTP answer)."""
    return [v for v in provider.violations if "/feedback" in v]


async def test_a_wrong_provider_key_is_a_cross_with_its_fix(
    tmp_path: Path, standins: Standins
) -> None:
    _, contextual, aquilax = standins[:3]
    code, text = await doctor(
        tmp_path,
        standins,
        CONTEXTUAL_API_KEY="ctx-not-the-right-key-0000",
        AQUILAX_API_KEY="ax-not-the-right-key-1111",
    )
    assert code == 1, text
    m = marks(text)
    assert (m["Contextual key"], m["AquilaX key"]) == ("✗", "✗"), text
    assert (
        "✗ Contextual key: from CONTEXTUAL_API_KEY (…0000): Contextual refuses it (HTTP 401)"
        in (text)
    )
    assert "→ set CONTEXTUAL_API_KEY to the right one" in text
    assert "✗ AquilaX key: from AQUILAX_API_KEY (…1111): AquilaX refuses it (HTTP 401)" in text
    # One request each, as the spec describes it, and it changed nothing.
    assert [status for status, _ in contextual.rejected] == [401]
    assert [status for status, _ in aquilax.rejected] == [401]
    assert contextual.received == aquilax.received == []
    assert feedback_violations(contextual) == feedback_violations(aquilax) == []


async def test_the_right_provider_key_is_checked_with_a_request_for_nothing(
    tmp_path: Path, standins: Standins
) -> None:
    _, contextual, aquilax = standins[:3]
    code, text = await doctor(tmp_path, standins)
    assert code == 0, text
    assert "✓ Contextual key: from CONTEXTUAL_API_KEY (…" in text
    assert "accepted by Contextual" in text and "accepted by AquilaX" in text
    nil = "00000000-0000-0000-0000-000000000000"
    [c] = contextual.received
    assert c.path == f"/v1/agents/{nil}/feedback"
    assert c.body is not None and c.body["message_id"] == nil
    [a] = aquilax.received
    assert a.path.startswith(f"/api/v2/ai/feedback/{nil}/")
    assert feedback_violations(contextual) == feedback_violations(aquilax) == []


async def test_a_key_stored_in_slack_is_the_one_checked(tmp_path: Path, standins: Standins) -> None:
    secret = Fernet.generate_key()
    store = await Store.open(tmp_path / "feedback.db")
    await store.set_provider_key(
        "aquilax", Fernet(secret).encrypt(b"ax-entered-but-wrong-2222"), "2222", "U1"
    )
    await store.close()
    code, text = await doctor(tmp_path, standins, FEEDBACK_SECRET_KEY=secret.decode())
    assert code == 1, text
    assert "✗ AquilaX key: entered in Slack (…2222): AquilaX refuses it (HTTP 401)" in text
    assert "→ enter the right one with /feedback setup" in text
    assert "ax-entered-but-wrong-2222" not in text


async def test_a_refusal_that_does_not_tell_is_settled_with_a_made_up_key(
    tmp_path: Path, standins: Standins
) -> None:
    _, contextual, aquilax = standins[:3]
    # The target does not exist (the key was accepted): a made-up key gets a 401 there.
    contextual.fail(404, body={"detail": "agent not found"})
    # A provider that is down cannot tell: neither ✓ nor ✗.
    aquilax.fail(503)
    code, text = await doctor(tmp_path, standins)
    assert code == 0, text
    assert "✓ Contextual key: from CONTEXTUAL_API_KEY (…" in text
    assert [status for status, _ in contextual.rejected] == [404, 401]
    assert "– AquilaX key: from AQUILAX_API_KEY (…" in text
    assert "could not check it: AquilaX answered HTTP 503" in text

    # A base URL that misses the API answers alike with any key: that is no check either.
    code, text = await doctor(
        tmp_path, standins, CONTEXTUAL_BASE_URL=f"http://127.0.0.1:{contextual.port}/wrong"
    )
    assert marks(text)["Contextual key"] == "–", text
    assert "could not check it: Contextual answered HTTP 400 with it" in text
    assert "check CONTEXTUAL_BASE_URL" in text


async def _late_lookup_on(tmp_path: Path, scope: str) -> None:
    store = await Store.open(tmp_path / "feedback.db")
    await store.set_config(scope, "late_lookup", True, "U1")
    await store.set_config("C0ELSEWH1", "late_lookup", False, "U1")
    await store.close()


async def test_late_lookup_without_the_history_scopes_is_a_cross(
    tmp_path: Path, standins: Standins
) -> None:
    slack = standins[0]
    code, text = await doctor(tmp_path, standins)
    assert marks(text)["Slack history scopes"] == "–"  # optional while late lookup is off
    await _late_lookup_on(tmp_path, "C0LATELK1")
    code, text = await doctor(tmp_path, standins)
    assert code == 1, text
    assert marks(text)["Slack history scopes"] == "✗", text
    assert "late lookup is on (C0LATELK1), but channels:history, groups:history" in text
    assert "add channels:history and groups:history under OAuth & Permissions" in text
    assert "/feedback late-lookup off" in text
    slack.scopes.append("channels:history")
    code, text = await doctor(tmp_path, standins, "--json")
    [history] = [
        c for c in map(json.loads, text.splitlines()) if c["check"].endswith("history scopes")
    ]
    assert history["ok"] is False and "groups:history" in history["detail"]
    slack.scopes.append("groups:history")
    code, text = await doctor(tmp_path, standins)
    assert code == 0 and marks(text)["Slack history scopes"] == "✓", text


async def test_late_lookup_on_for_the_workspace_counts_too(
    tmp_path: Path, standins: Standins
) -> None:
    await _late_lookup_on(tmp_path, "*")
    code, text = await doctor(tmp_path, standins)
    assert code == 1 and "late lookup is on (the workspace)" in text, text


async def test_doctor_piped_into_head_exits_at_once_without_a_traceback(
    tmp_path: Path, standins: Standins
) -> None:
    """`feedback-bot doctor --json | head -1`: the reader goes away after one line. Slack
    answers only once it has, so that doctor has more to print to a closed pipe."""
    reader_gone = asyncio.Event()

    async def slack_after_the_reader(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader_gone.wait()
        writer.close()

    gate = await asyncio.start_server(slack_after_the_reader, "127.0.0.1", 0)
    port = gate.sockets[0].getsockname()[1]
    settings = settings_for(tmp_path / "feedback.db", *standins)
    env = {**_clean_environ(), **env_for(settings), "PYTHONPATH": os.getcwd()}
    # A plain Popen (started off the loop): its stdout can be closed as `head` closes it.
    process = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "bot", "doctor", "--json"],
        env={**env, "SLACK_API_URL": f"http://127.0.0.1:{port}/api/"},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = json.loads(await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60))
        assert first["check"] == "settings"
        process.stdout.close()  # what `head -1` does once it has its line
        reader_gone.set()
        code = await asyncio.to_thread(process.wait, 60)  # before the fix: never
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
        gate.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 141
