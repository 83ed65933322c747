"""reaction_added / reaction_removed on registered answers become votes."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.blocks import form_offer
from bot.domain import EXPLAINABLE, VoteChange, normalise_emoji, reaction_origin
from bot.services import Services
from handlers.payloads import ReactionEnvelope, parse_payload
from handlers.replies import send_ephemeral

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    async def on_reaction(body: dict[str, Any]) -> BoltResponse | None:
        return await handle_reaction(services, body)

    app.event("reaction_added")(on_reaction)
    app.event("reaction_removed")(on_reaction)


async def handle_reaction(services: Services, body: dict[str, Any]) -> BoltResponse | None:
    envelope = parse_payload(ReactionEnvelope, body, "reaction event")
    if isinstance(envelope, BoltResponse):
        return envelope
    event = envelope.event
    item = event.item
    if item.type != "message" or not item.channel or not item.ts:
        log.debug("ignored a reaction on a %s", item.type)
        return None
    if event.user == services.identity.bot_user_id:
        log.debug("ignored the bot's own reaction")
        return None
    config = await services.channel_settings.for_channel(item.channel)
    if event.type == "reaction_added" and not config.reactions:
        # Removals still count: a vote cast before reactions were turned off can be taken back.
        log.debug("ignored a reaction in %s: reactions are off there", item.channel)
        return None
    emoji = normalise_emoji(event.reaction)
    origin = reaction_origin(emoji)
    if event.type == "reaction_added":
        status = config.emoji.get(emoji)
        if status is None:
            log.debug("ignored :%s: on %s/%s: not a feedback emoji", emoji, item.channel, item.ts)
            return None
        change = VoteChange(0, event.user, origin, "add", status)
    else:
        # Withdraw by origin whatever the emoji maps to now: a vote cast under an older
        # emoji map must still be removable.
        change = VoteChange(0, event.user, origin, "withdraw")
    answer, result = await services.votes.record_on_message(
        item.channel, item.ts, change, dedupe_key=envelope.event_id
    )
    if answer is None:
        log.debug("ignored a reaction on %s/%s: not a registered answer", item.channel, item.ts)
        return None
    if result.duplicate:
        log.info("ignored event %s: already processed", envelope.event_id)
        return None
    if result.delivery_id is not None and result.verdict is not None:
        log.debug(
            "%s/%s is now %s (queued as delivery %d)",
            item.channel,
            item.ts,
            result.verdict.status.value,
            result.delivery_id,
        )
    if config.reaction_form and result.vote_id and result.standing in EXPLAINABLE:
        text, blocks = form_offer(result.vote_id, result.standing)
        send_ephemeral(
            services,
            channel=item.channel,
            user=event.user,
            thread_ts=answer.thread_ts,
            text=text,
            blocks=blocks,
        )
    return None
