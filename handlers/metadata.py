"""message_metadata_posted / _updated / _deleted: answers that other apps post register
themselves (bot/answers/self_registration.py decides whether the app is trusted and the metadata
good). The registration is stored before the ack, so a crash cannot lose it; a "Was this
helpful?" prompt, where the channel wants one, follows in the background."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.answers.metadata import PostedMetadata, is_answer_metadata
from bot.answers.self_registration import Outcome
from bot.services import Services
from handlers.payloads import MetadataEnvelope, parse_payload

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    async def on_metadata(body: dict[str, Any]) -> BoltResponse | None:
        envelope = parse_payload(MetadataEnvelope, body, "message metadata event")
        if isinstance(envelope, BoltResponse):
            return envelope
        await handle_metadata(services, envelope)
        return None

    for kind in ("posted", "updated", "deleted"):
        app.event(f"message_metadata_{kind}")(on_metadata)


async def handle_metadata(services: Services, envelope: MetadataEnvelope) -> None:
    event = envelope.event
    where = f"{event.channel_id}/{event.message_ts}"
    if event.type == "message_metadata_deleted":
        if is_answer_metadata(event.previous_metadata):
            log.info("answer metadata deleted from %s: the answer and its votes stay", where)
        return
    if not is_answer_metadata(event.metadata):
        log.debug("ignored %s metadata on %s: not an answer", event.type, where)
        return
    if event.app_id is not None and event.app_id == envelope.api_app_id:
        # The bot registered its own post when it posted it.
        log.debug("ignored the metadata of the bot's own post %s", where)
        return
    posted = PostedMetadata(
        channel=event.channel_id,
        ts=event.message_ts,
        thread_ts=None,
        app_id=event.app_id,
        bot_id=event.bot_id,
        metadata=event.metadata,
        thread_known=False,  # the event does not say; the payload may (thread_ts)
        metadata_ts=_seconds(event.event_ts),
    )
    updated = event.type == "message_metadata_updated"
    result = await services.metadata.register(
        posted, "metadata", replace_unvoted=updated, prompt="later"
    )
    if result.outcome is Outcome.CONFLICT and updated:
        log.warning(
            "the answer metadata on %s changed, but the registered mapping stays: votes were"
            " cast on it (votes are history), or it is not the one the metadata held before"
            " (an update that came late); `feedback-bot answers remove %s %s` and register"
            " it again to change it",
            where,
            event.channel_id,
            event.message_ts,
        )
    if result.prompt_due and result.answer is not None:
        services.background.spawn(
            services.answers.post_prompt(result.answer), f"prompt under {where}"
        )


def _seconds(ts: str | None) -> float | None:
    # The model bounds event_ts to digits.digits of at most 16 each: always a finite float
    # (never inf or nan, which would outrank or void every later update's comparison).
    return float(ts) if ts else None
