"""Modal submissions. The "what went wrong?" form attaches an explanation and a category to
the user's vote (dismissing it keeps the plain vote: Slack tells us nothing, nothing is lost).
The setup form stores provider keys, encrypted."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse

from bot.admin.render import NOT_ALLOWED
from bot.providers import PROVIDERS
from bot.services import Services
from bot.slack.blocks import EMOJI
from bot.slack.views import (
    CATEGORY_IDS,
    EXPLANATION_LIMIT,
    FORM_CALLBACK,
    KEY_INPUTS,
    KEY_LABELS,
    KEY_LIMIT,
    SETUP_CALLBACK,
    MalformedContext,
    ViewContext,
)
from handlers.payloads import ViewSubmission, parse_payload
from handlers.replies import send_ephemeral

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    async def on_submit(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_submit(services, ack, body)

    async def on_setup(ack: AsyncAck, body: dict[str, Any]) -> BoltResponse | None:
        return await handle_setup(services, ack, body)

    app.view(FORM_CALLBACK)(on_submit)
    app.view(SETUP_CALLBACK)(on_setup)


async def handle_submit(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    payload = parse_payload(ViewSubmission, body, "view_submission")
    if isinstance(payload, BoltResponse):
        return payload
    context = _context(payload.view.private_metadata)
    if isinstance(context, BoltResponse):
        return context
    if context.vote is None:
        return BoltResponse(status=400, body="view_submission without a vote in its metadata")
    vote_id, channel, thread_ts = context.vote, context.channel, context.thread_ts
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
    vote = await services.votes.get(vote_id)
    if vote is None or vote.user != user:
        log.warning("refused a form for vote %s from %s: not their vote", vote_id, user)
        await ack(
            response_action="errors",
            errors={"explanation": "This form is not for a vote of yours."},
        )
        return None
    if not vote.is_standing:
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
        send_ephemeral(services, channel=channel, user=user, thread_ts=thread_ts, text=text)
    return None


async def handle_setup(
    services: Services, ack: AsyncAck, body: dict[str, Any]
) -> BoltResponse | None:
    payload = parse_payload(ViewSubmission, body, "view_submission")
    if isinstance(payload, BoltResponse):
        return payload
    context = _context(payload.view.private_metadata)
    if isinstance(context, BoltResponse):
        return context
    channel = context.channel
    entered: dict[str, str] = {}
    errors: dict[str, str] = {}
    for provider, block_id in KEY_INPUTS.items():
        value = (payload.view.state.value(block_id) or "").strip()
        if not value:
            continue
        if len(value) < 8 or any(c.isspace() for c in value):
            errors[block_id] = "That does not look like a key: no spaces, at least 8 characters."
        elif len(value) > KEY_LIMIT:  # the field's own max_length; only a forged form passes it
            errors[block_id] = f"That does not look like a key: at most {KEY_LIMIT} characters."
        elif problem := PROVIDERS[provider].check_key(value):
            errors[block_id] = problem
        entered[provider] = value
    if errors:
        await ack(response_action="errors", errors=errors)
        return None
    await ack()
    if entered:
        services.background.spawn(
            save_keys(services, payload.user.id, channel, entered), "/feedback setup"
        )
    return None


def _context(raw: str) -> ViewContext | BoltResponse:
    """The modal's context, or the 400 that says what is wrong with it (nothing is done)."""
    try:
        return ViewContext.decode(raw)
    except MalformedContext as e:
        log.warning("refused a view_submission: %s", e)
        return BoltResponse(status=400, body=f"malformed view_submission: {e}")


async def save_keys(
    services: Services, user: str, channel: str | None, entered: dict[str, str]
) -> None:
    """After the ack: check the user may, store the keys encrypted, and say so (by the last
    four characters only)."""
    if not await services.permissions.is_admin(user):
        log.warning("refused provider keys from %s: not an admin", user)
        text = NOT_ALLOWED
    else:
        for provider, key in entered.items():
            await services.keys.set(provider, key, user)
        saved = ", ".join(f"{KEY_LABELS[p]} (…{k[-4:]})" for p, k in entered.items())
        log.info("%s stored new provider keys: %s", user, ", ".join(entered))
        text = f"Saved: {saved}. Dead deliveries that waited for a key: `/feedback retry`."
    if channel:
        send_ephemeral(services, channel=channel, user=user, text=text)
