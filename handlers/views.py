"""The "what went wrong?" form: submitting attaches an explanation and a category to the
user's vote; dismissing it keeps the plain vote (Slack tells us nothing, and nothing is lost)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse

from bot.blocks import CATEGORY_IDS, EMOJI, EXPLANATION_LIMIT, FORM_CALLBACK
from handlers.payloads import ViewSubmission, describe
from handlers.replies import tell

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_submit(services, ack, body)

    app.view(FORM_CALLBACK)(on_submit)


def _metadata(raw: str) -> tuple[int, str | None, str | None] | None:
    try:
        meta = json.loads(raw)
        return int(meta["vote"]), meta.get("channel"), meta.get("thread_ts")
    except (ValueError, TypeError, KeyError):
        return None


async def handle_submit(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    try:
        payload = ViewSubmission.model_validate(body)
    except ValidationError as e:
        reason = describe(e)
        log.warning("refused a malformed view_submission: %s", reason)
        return BoltResponse(status=400, body=f"malformed view_submission: {reason}")
    meta = _metadata(payload.view.private_metadata)
    if meta is None:
        return BoltResponse(status=400, body="view_submission without a vote in its metadata")
    vote_id, channel, thread_ts = meta
    state = payload.view.state
    explanation = (state.value("explanation") or "").strip() or None
    category = state.value("category")
    if explanation is not None and len(explanation) > EXPLANATION_LIMIT:
        await ack(
            response_action="errors",
            errors={
                "explanation": f"Please keep it to {EXPLANATION_LIMIT:,} characters"
                f" (this is {len(explanation):,})."
            },
        )
        return None
    if category is not None and category not in CATEGORY_IDS:
        await ack(response_action="errors", errors={"category": "Pick one of the listed kinds."})
        return None
    user = payload.user.id
    vote = await services.store.get_vote(vote_id)
    if vote is None or vote.user != user:
        log.warning("refused a form for vote %s from %s: not their vote", vote_id, user)
        await ack(
            response_action="errors",
            errors={"explanation": "This form is not for a vote of yours."},
        )
        return None
    if not vote.standing:
        await ack(
            response_action="errors",
            errors={
                "explanation": "You took this vote back meanwhile. Vote again to leave feedback."
            },
        )
        return None
    if explanation is None and category is None:
        await ack()  # the same as Skip: the plain vote stands
        return None
    await services.votes.explain(vote_id, explanation, category)
    await ack()
    if channel:
        text = (
            f"Thanks — your {EMOJI[vote.status]} now says what went wrong. Only you can see this."
        )
        tell(services, channel=channel, user=user, thread_ts=thread_ts, text=text)
    return None
