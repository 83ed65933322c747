"""Socket Mode: events arrive over a WebSocket; the answers API and /healthz still serve."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bot.app import FeedbackBot
from bot.config.settings import SettingsError
from tests.conftest import settings_for
from tests.credentials import API_TOKEN
from tests.slack_payloads import (
    CHANNEL,
    event_envelope,
    new_ts,
    new_uuid,
    reaction_event,
    slash_command,
)
from tests.standins import Standins


async def test_reactions_over_the_socket(socket_bot: FeedbackBot, standins: Standins) -> None:
    slack, contextual, _ = standins[:3]
    base = f"http://127.0.0.1:{socket_bot.port}"
    body = {
        "channel": CHANNEL,
        "ts": new_ts(),
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{base}/v1/answers", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert r.status_code == 201
        health = (await http.get(f"{base}/healthz")).json()
        assert health["mode"] == "socket"
        # No HTTP request URL for Slack in Socket Mode.
        assert (await http.post(f"{base}/slack/events", json={})).status_code == 404

    ack = await slack.socket_send(event_envelope(reaction_event("U0ALICE001", "+1", body["ts"])))
    assert set(ack) == {"envelope_id"}
    [received] = await contextual.wait_for(1)
    assert received.body == {"message_id": body["message_id"], "feedback": "thumbs_up"}
    assert slack.violations == [] and contextual.violations == []


async def test_a_command_over_the_socket_is_answered_in_its_ack(
    socket_bot: FeedbackBot, standins: Standins
) -> None:
    slack = standins[0]
    command = slash_command("U0ALICE001", "help", response_url=slack.response_url())
    ack = await slack.socket_send(command, kind="slash_commands")
    # Bolt's plain-text answer travels as the ack's payload, as Slack shows it.
    assert "/feedback" in ack["payload"]["text"]
    # A command that is not ours is not acknowledged (Slack tells the user it failed),
    # as Bolt's own adapter does.
    with pytest.raises(TimeoutError):
        await slack.socket_send({**command, "command": "/other"}, "slash_commands", ack_timeout=1)


async def test_a_refused_app_token_stops_start_up(tmp_path: Path, standins: Standins) -> None:
    slack = standins[0]
    settings = settings_for(
        tmp_path / "feedback.db",
        *standins,
        slack_app_token="xapp-1-A0APP0001-000-notthetoken",
        slack_signing_secret=None,
    )
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN was refused by Slack"):
        await FeedbackBot(settings).start()
    assert slack.calls_to("apps.connections.open")
