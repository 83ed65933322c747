"""What Slack sends, in Slack's shapes: Events API envelopes, reactions, clicks, modal
submissions and slash commands, and the signature over a body."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from slack_sdk.signature import SignatureVerifier

from tests.credentials import SIGNING_SECRET
from tests.standins.slack import BOT_USER, TEAM

CHANNEL = "C0FEEDBK01"
_event_ids = itertools.count(1)
_ts = itertools.count(1)


def new_ts() -> str:
    # Ten digits before the dot whatever the count, as Slack's ts have.
    return f"{1_700_000_000 + next(_ts)}.000100"


def new_uuid() -> str:
    return str(uuid.uuid4())


def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def event_envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API body in Slack's shape."""
    now = time.time()
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "context_team_id": TEAM,
        "api_app_id": "A0APP0001",
        "event": {**event, "event_ts": event.get("event_ts", f"{now:.6f}")},
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):010d}",
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6InJlYWN0aW9uX2FkZGVkIn0",
    }


def reaction_event(
    user: str, emoji: str, ts: str, *, added: bool = True, channel: str = CHANNEL
) -> dict[str, Any]:
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": emoji,
        "item_user": "U0AIBOT001",
        "item": {"type": "message", "channel": channel, "ts": ts},
    }


_action_ts = itertools.count(1)


def block_actions(
    user: str,
    message_ts: str,
    action_id: str,
    value: str,
    *,
    channel: str = CHANNEL,
    block_id: str = "ctrl",
    thread_ts: str | None = None,
    kind: str = "feedback_buttons",
    action_ts: str | None = None,
    response_url: str = "https://hooks.slack.com/actions/T0TEST001/1/abc",
) -> dict[str, Any]:
    """A block_actions payload in Slack's shape, for a click on a message."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER,
        "bot_id": "BBOTFB001",
        "ts": message_ts,
        "text": "…",
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
        message["thread_ts"] = thread_ts
    action: dict[str, Any] = {
        "type": kind,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "action_ts": action_ts or f"{time.time():.0f}.{next(_action_ts):06d}",
    }
    if kind == "button":
        action["text"] = {"type": "plain_text", "text": "🚩 Flag", "emoji": True}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "token": "verification-token-unused",
        "container": container,
        "trigger_id": f"{next(_action_ts)}.1234567890.abcdef0123456789",
        "team": {"id": TEAM, "domain": "test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "ai-answers"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def view_submission(
    user: str, view: dict[str, Any], *, category: str | None, explanation: str | None
) -> dict[str, Any]:
    """The view_submission Slack sends when `user` submits the modal `view` (as opened)."""
    values: dict[str, Any] = {
        "category": {
            "category": {
                "type": "static_select",
                "selected_option": (
                    {"text": {"type": "plain_text", "text": category}, "value": category}
                    if category
                    else None
                ),
            }
        },
        "explanation": {"explanation": {"type": "plain_text_input", "value": explanation}},
    }
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "token": "verification-token-unused",
        "trigger_id": "1.2.3",
        "view": {
            "id": "V0VIEW001",
            "team_id": TEAM,
            "type": "modal",
            "hash": "1700000000.abcdef",
            "root_view_id": "V0VIEW001",
            "app_id": "A0APP0001",
            "bot_id": "BBOTFB001",
            "state": {"values": values},
            **view,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def slash_command(
    user: str, text: str, *, channel: str = CHANNEL, response_url: str
) -> dict[str, str]:
    """The form fields Slack posts for `/feedback <text>`."""
    return {
        "token": "verification-token-unused",
        "team_id": TEAM,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "ai-answers",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/feedback",
        "text": text,
        "api_app_id": "A0APP0001",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{next(_action_ts)}.1234567890.fedcba9876543210",
    }


ASSISTANT_APP = "A0ASSIST01"  # another app in the workspace: the team's AI assistant
ASSISTANT_BOT = "B0ASSIST01"


def answer_metadata(provider: str = "contextual", **payload: Any) -> dict[str, Any]:
    """Answer metadata as an assistant attaches it (docs/answer-metadata.schema.json)."""
    ids: dict[str, Any] = (
        {"agent_id": new_uuid(), "message_id": new_uuid()}
        if provider == "contextual"
        else {
            "request_id": new_uuid(),
            "org": "65dd3e835a669e3347654200",
            "group": "67e86d036e9921509f730483",
        }
    )
    return {
        "event_type": "ai_answer_posted",
        "event_payload": {"schema_version": 1, "provider": provider, **ids, **payload},
    }


def metadata_event(
    kind: str,
    ts: str,
    metadata: dict[str, Any] | None,
    *,
    previous: dict[str, Any] | None = None,
    app_id: str = ASSISTANT_APP,
    channel: str = CHANNEL,
) -> dict[str, Any]:
    """message_metadata_posted / _updated / _deleted, in the shapes of Slack's docs."""
    event: dict[str, Any] = {
        "type": f"message_metadata_{kind}",
        "app_id": app_id,
        "bot_id": ASSISTANT_BOT if app_id == ASSISTANT_APP else "B0OTHER001",
        "user_id": "U0AIBOT001",
        "team_id": TEAM,
        "channel_id": channel,
        "message_ts": ts,
    }
    if kind in ("posted", "updated"):
        event["metadata"] = metadata
    if kind in ("updated", "deleted"):
        event["previous_metadata"] = previous
    if kind == "deleted":
        event["deleted_ts"] = f"{time.time():.6f}"
    return event
