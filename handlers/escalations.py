"""The "Resolved" button on an escalation in a triage channel."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse

from bot.escalation.message import RESOLVE
from bot.services import Services
from bot.support.validation import SLACK_ID, SLACK_TS
from handlers.payloads import BlockActions, parse_payload
from handlers.replies import send_ephemeral
from storage.models import Resolution

log = logging.getLogger(__name__)

REPLIES = {
    Resolution.RESOLVED: "✅ Marked resolved; the message will say so in a moment.",
    Resolution.ALREADY: "Someone resolved this one already.",
    Resolution.NOT_ESCALATED: (
        "feedback-bot has no such escalation (the answer may have been removed), so nothing"
        " was recorded."
    ),
}


def register(app: AsyncApp, services: Services) -> None:
    async def on_resolve(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_resolve(services, ack, body)

    app.action(RESOLVE)(on_resolve)


async def handle_resolve(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    payload = parse_payload(BlockActions, body, "block_actions payload")
    if isinstance(payload, BoltResponse):
        return payload
    # The value names the answer; the store resolves it only if the click came from that
    # answer's escalation message.
    channel, _, ts = (payload.actions[0].value or "").partition(" ")
    if not SLACK_ID.fullmatch(channel) or not SLACK_TS.fullmatch(ts):
        log.warning("refused a %s click whose value is not an answer's channel and ts", RESOLVE)
        return BoltResponse(status=400, body=f"unexpected value for {RESOLVE}")
    where, message_ts = payload.channel_id, payload.message_ts
    if not where or not message_ts:
        return BoltResponse(status=400, body="block_actions payload without a message")
    user = payload.user.id
    result = await services.store.resolve_escalation(channel, ts, user, f"{where}:{message_ts}")
    await ack()
    if result is Resolution.RESOLVED:
        services.worker.notify()
    send_ephemeral(services, channel=where, user=user, text=REPLIES[result])
    return None
