"""reaction_added / reaction_removed on registered answers become votes.

One handler, two doors: Bolt's listener (`register`), and the fast lane (`FastLane`), which
the HTTP route and the Socket Mode adapter use for reaction events so that the most common
event skips Bolt's dispatch and middleware. Both end in `handle_reaction`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.domain import EXPLAINABLE, VoteChange, normalise_emoji, reaction_origin
from bot.services import Services
from bot.slack.blocks import form_offer
from handlers.errors import on_error
from handlers.payloads import ReactionCallback, ReactionEnvelope, parse_payload
from handlers.replies import send_ephemeral

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    async def on_reaction(body: dict[str, Any]) -> BoltResponse | None:
        envelope = parse_payload(ReactionEnvelope, body, "reaction event")
        if isinstance(envelope, BoltResponse):
            return envelope
        await handle_reaction(services, envelope)
        return None

    app.event("reaction_added")(on_reaction)
    app.event("reaction_removed")(on_reaction)


class FastLane:
    """Reaction events for this workspace, handled without Bolt.

    What Bolt does for such an event before our listener is, here, nothing we need: the
    signature is checked by the route, the authorization is fixed at start-up, the workspace
    check is `teams` below, and the bot's own reactions are ignored by the handler. Anything
    `take` refuses (another event, another workspace, a shape it does not know) goes through
    Bolt as before, with Bolt's answers.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._team = services.identity.team_id

    def take_json(self, raw: bytes) -> ReactionCallback | None:
        """The body, parsed once, if it is a reaction event for us."""
        if raw[:1] != b"{":
            return None
        return self._ours(ReactionCallback.model_validate_json, raw)

    def take(self, payload: object) -> ReactionCallback | None:
        """The same for a payload that arrived already parsed (Socket Mode)."""
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return None
        return self._ours(ReactionCallback.model_validate, payload)

    def _ours(self, parse: Callable[[Any], ReactionCallback], body: Any) -> ReactionCallback | None:
        try:
            envelope = parse(body)
        except ValidationError:
            return None
        return envelope if self._team in envelope.teams else None

    async def handle(self, envelope: ReactionCallback) -> BoltResponse:
        """What Bolt would answer: 200 once the vote is committed, 503 when it cannot be
        (Slack retries), 500 for a bug of ours."""
        try:
            await handle_reaction(self._services, envelope)
        except Exception as e:
            return await on_error(e) or BoltResponse(status=500, body="")
        return BoltResponse(status=200, body="")


async def handle_reaction(
    services: Services, envelope: ReactionEnvelope | ReactionCallback
) -> None:
    event = envelope.event
    item = event.item
    if item.type != "message" or not item.channel or not item.ts:
        log.debug("ignored a reaction on a %s", item.type)
        return
    if event.user == services.identity.bot_user_id:
        log.debug("ignored the bot's own reaction")
        return
    config = await services.channel_settings.for_channel(item.channel)
    if event.type == "reaction_added" and not config.reactions:
        # Removals still count: a vote cast before reactions were turned off can be taken back.
        log.debug("ignored a reaction in %s: reactions are off there", item.channel)
        return
    emoji = normalise_emoji(event.reaction)
    origin = reaction_origin(emoji)
    if event.type == "reaction_added":
        status = config.emoji.get(emoji)
        if status is None:
            log.debug("ignored :%s: on %s/%s: not a feedback emoji", emoji, item.channel, item.ts)
            return
        change = VoteChange(0, event.user, origin, "add", status)
    else:
        # Withdraw by origin whatever the emoji maps to now: a vote cast under an older
        # emoji map must still be removable.
        change = VoteChange(0, event.user, origin, "withdraw")
    # An answer the bot has just posted and is registering: held, and its registration,
    # committing a moment later, applies it. Else held only for the late lookup.
    registering = (item.channel, item.ts) in services.answers.registering
    hold = registering or services.late_lookup.wants(item.channel, item.ts, config)
    answer, result = await services.votes.record_on_message(
        item.channel, item.ts, change, dedupe_key=envelope.event_id, hold=hold
    )
    if answer is None:
        if result.held and registering:
            log.debug("held a reaction on %s/%s: being registered", item.channel, item.ts)
        elif result.held:
            log.debug("held a reaction on %s/%s: looking the message up", item.channel, item.ts)
            services.late_lookup.request(item.channel, item.ts)
        elif not result.duplicate:
            log.debug("ignored a reaction on %s/%s: not a registered answer", item.channel, item.ts)
        return
    if result.duplicate:
        log.info("ignored event %s: already processed", envelope.event_id)
        return
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
