"""Clicks on feedback controls: 👍/👎 and 🚩 under answers, 👍/👎 per source, and the
"Tell us what went wrong" button."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse

from bot.domain import BUTTON_ORIGIN, EXPLAINABLE, WHOLE_ANSWER, Status, VoteChange
from bot.services import Services
from bot.slack.blocks import (
    ANSWER_FLAG,
    ANSWER_VOTE,
    EMOJI,
    OPEN_FORM,
    SOURCE_BLOCK_PREFIX,
    SOURCE_VOTE,
    confirmation,
    label_text,
)
from bot.slack.views import feedback_form, vote_id
from handlers.payloads import BlockActions, parse_payload
from handlers.replies import open_modal, send_ephemeral

log = logging.getLogger(__name__)

UNKNOWN_ANSWER = (
    "Sorry, feedback-bot does not know this answer (it may have been posted before the bot"
    " was set up), so your feedback was not recorded."
)
UNKNOWN_SOURCE = "Sorry, that source is not part of this answer any more; nothing was recorded."
VOTE_GONE = (
    "That vote was taken back, so there is nothing to explain. Vote again to leave feedback."
)
# What each control may say; anything else in a payload is refused.
ALLOWED = {
    ANSWER_VOTE: {Status.THUMBS_UP, Status.THUMBS_DOWN},
    SOURCE_VOTE: {Status.THUMBS_UP, Status.THUMBS_DOWN},
    ANSWER_FLAG: {Status.FLAGGED},
}


def register(app: AsyncApp, services: Services) -> None:
    async def on_vote(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_vote(services, ack, body)

    async def on_open_form(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_open_form(services, ack, body)

    for action_id in ALLOWED:
        app.action(action_id)(on_vote)
    app.action(OPEN_FORM)(on_open_form)


async def handle_vote(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    payload = parse_payload(BlockActions, body, "block_actions payload")
    if isinstance(payload, BoltResponse):
        return payload
    action = payload.actions[0]
    allowed = ALLOWED[action.action_id]
    if action.value not in allowed:
        log.warning("refused a %s click with value %r", action.action_id, action.value)
        return BoltResponse(status=400, body=f"unexpected value for {action.action_id}")
    clicked = Status(action.value)
    user, channel, ts = payload.user.id, payload.channel_id, payload.message_ts
    if not channel or not ts:
        return BoltResponse(status=400, body="block_actions payload without a message")
    reply = partial(
        send_ephemeral, services, channel=channel, user=user, thread_ts=payload.thread_ts
    )
    # The answer comes from SQLite, found by the message the click came from: nothing in
    # the payload is trusted to name it.
    answer = await services.answers.find_for_controls(channel, ts)
    if answer is None:
        await ack()
        reply(text=UNKNOWN_ANSWER)
        return None
    content_id, subject = WHOLE_ANSWER, "this answer"
    if action.action_id == SOURCE_VOTE:
        content_id = (action.block_id or "").removeprefix(SOURCE_BLOCK_PREFIX)
        source = answer.source(content_id)
        if source is None:
            await ack()
            reply(text=UNKNOWN_SOURCE)
            return None
        subject = f"the source “{label_text(source.label)}”"
    change = VoteChange(answer.id, user, BUTTON_ORIGIN, "toggle", clicked, content_id)
    # Slack may deliver one click twice; action_ts identifies the click.
    key = f"click:{channel}:{ts}:{user}:{action.action_id}:{action.action_ts}"
    result = await services.votes.record(change, dedupe_key=key)
    await ack()
    if result.duplicate:
        return None
    if result.standing in EXPLAINABLE and content_id == WHOLE_ANSWER and result.vote_id is not None:
        open_modal(
            services,
            trigger_id=payload.trigger_id,
            view=feedback_form(
                result.vote_id,
                result.standing,
                subject,
                channel=channel,
                thread_ts=payload.thread_ts,
            ),
            fallback=(
                channel,
                user,
                payload.thread_ts,
                confirmation(result.standing, clicked, subject),
            ),
        )
    else:
        reply(text=confirmation(result.standing, clicked, subject))
    return None


async def handle_open_form(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    payload = parse_payload(BlockActions, body, "block_actions payload")
    if isinstance(payload, BoltResponse):
        return payload
    # The button's value is the vote id form_offer wrote; anything else is a forged click.
    voted = vote_id(payload.actions[0].value)
    if voted is None:
        log.warning("refused a %s click whose value is not a vote id", OPEN_FORM)
        return BoltResponse(status=400, body=f"unexpected value for {OPEN_FORM}: not a vote id")
    vote = await services.votes.get(voted)
    await ack()
    user, channel = payload.user.id, payload.channel_id or ""
    if vote is None or vote.user != user or not vote.is_standing:
        send_ephemeral(
            services, channel=channel, user=user, thread_ts=payload.thread_ts, text=VOTE_GONE
        )
        return None
    open_modal(
        services,
        trigger_id=payload.trigger_id,
        view=feedback_form(
            vote.id, vote.status, "this answer", channel=channel, thread_ts=payload.thread_ts
        ),
        fallback=(channel, user, payload.thread_ts, f"Your {EMOJI[vote.status]} is recorded."),
    )
    return None
