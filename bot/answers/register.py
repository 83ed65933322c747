"""Registering answers: the request (one for the HTTP API, the CLI and Python callers: the
providers' models in one discriminated union) and the service that maps an existing message,
or posts the answer with feedback controls."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers.metadata import answer_metadata
from bot.answers.request import validate_answer
from bot.config.channels import ChannelOptions, ChannelSettings
from bot.domain import Answer, Provenance, Registration
from bot.providers import PROVIDERS
from bot.providers.registration import AnswerIn, PostIn
from bot.slack.api import SLACK_TIMEOUT
from bot.slack.blocks import answer_message, prompt_message
from storage import PostReservation, PostState, Store

log = logging.getLogger(__name__)

# A post is cut off after one Slack timeout, slack_sdk's retries included (each request is
# bounded by the session, bot/slack/api.py; the retries are not). Its reservation lasts
# twice that: a live poster always finishes or releases first, and a crashed one holds the
# same answer up for 20 s at most.
POST_TIMEOUT = SLACK_TIMEOUT
RESERVATION_TTL = 2 * POST_TIMEOUT
# Requests that find the answer being posted look again after 20 ms, 40 ms … up to 250 ms.
POLL_FIRST = 0.02
POLL_MAX = 0.25


def _with_defaults(target: dict[str, Any], config: ChannelOptions) -> dict[str, Any]:
    """The target with the ids the channel's settings give its provider filled in, where it
    leaves them out (`ProviderSpec.channel_defaults`)."""
    provider = target.get("provider")
    spec = PROVIDERS.get(provider) if isinstance(provider, str) else None
    filled = dict(target)
    for key, setting in spec.channel_defaults.items() if spec else ():
        value = getattr(config, setting)
        if value:
            filled.setdefault(key, value)
    return filled


@dataclass(frozen=True, slots=True)
class Registered:
    outcome: Registration
    answer: Answer  # the stored mapping (for a conflict: the one already there)
    prompt_due: bool = False  # prompt="later": the caller is to post_prompt(answer)


class PostError(Exception):
    """Slack refused to post the answer; the message says why and what to do."""


_POST_HINTS = {
    "not_in_channel": "invite the bot to the channel",
    "channel_not_found": "check the channel id, and invite the bot to private channels",
    "is_archived": "the channel is archived",
    "msg_too_long": "the answer is too long",
}


class Answers:
    """Registers answers: maps existing messages, or posts new ones with feedback controls."""

    def __init__(
        self,
        store: Store,
        config: ChannelSettings,
        slack: AsyncWebClient | None = None,
        on_votes: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._slack = slack
        # Registering a message applies the reactions held for it (storage/sqlite/held.py): the
        # delivery worker is told, as for any vote.
        self._on_votes = on_votes
        # Messages this process has posted and is registering now: (channel, ts).
        self.registering: set[tuple[str, str]] = set()

    async def validate(self, payload: object) -> AnswerIn:
        """Validate a payload (a dict, or JSON text), filling in the channel's defaults for
        the provider and the provider's fields (`ProviderSpec.channel_defaults`: the
        Contextual agent, the AquilaX org and group). Raises pydantic.ValidationError."""
        data = payload
        if isinstance(payload, str | bytes):
            try:
                data = json.loads(payload)
            except (ValueError, RecursionError):
                return validate_answer(payload)  # pydantic's own json_invalid error
        if isinstance(data, dict) and isinstance(data.get("channel"), str):
            config = await self._config.for_channel(data["channel"].strip())
            data = dict(data)
            targets = data.get("targets")
            if isinstance(targets, list):
                # Each target of the list takes its provider's defaults; a list names its
                # providers itself.
                data["targets"] = [
                    _with_defaults(t, config) if isinstance(t, dict) else t for t in targets
                ]
            else:
                if config.provider:
                    data.setdefault("provider", config.provider)
                data = _with_defaults(data, config)
        return validate_answer(data)

    async def find_for_controls(self, channel: str, ts: str) -> Answer | None:
        """The answer whose feedback controls sit on message `ts`: the answer itself, or the
        bot's "Was this helpful?" reply under it."""
        return await self._store.find_answer_for_controls(channel, ts)

    async def register(
        self,
        request: AnswerIn,
        *,
        provenance: Provenance | None = None,
        posted_by_bot: bool = False,
        replace_unvoted: bool = False,
        prompt: Literal["now", "later", "no"] = "now",
    ) -> Registered:
        """Register the answer (posting it first if the request says `post`).

        `provenance`: it registered itself through message metadata
        (bot/answers/self_registration.py); an update of that metadata may `replace_unvoted`
        (storage/sqlite/composite.py: register). `prompt`: when the channel has prompts on, post
        "Was this helpful?" under a new answer now, leave it to the caller ("later": off
        the ack path) or not at all."""
        registered = await self._register(
            request, provenance, posted_by_bot, replace_unvoted, prompt
        )
        answer = registered.answer
        log.log(
            logging.WARNING if registered.outcome is Registration.CONFLICT else logging.INFO,
            "registration %s/%s: %s (%s%s%s)",
            answer.channel,
            answer.ts,
            registered.outcome.value,
            ", ".join(t.describe() for t in answer.targets),
            ", posted by the bot" if answer.posted_by_bot else "",
            f", from the message metadata of app {provenance.app_id} ({provenance.via})"
            if provenance
            else "",
            extra={
                "fields": {
                    "event": "registration",
                    "channel": answer.channel,
                    "ts": answer.ts,
                    "provider": answer.providers,
                    "target": ",".join(t.key for t in answer.targets),
                    "result": registered.outcome.value,
                    "posted_by_bot": answer.posted_by_bot,
                    "via": provenance.via if provenance else "api",
                    "app_id": provenance.app_id if provenance else None,
                }
            },
        )
        return registered

    async def _register(
        self,
        request: AnswerIn,
        provenance: Provenance | None,
        posted_by_bot: bool,
        replace_unvoted: bool,
        prompt: Literal["now", "later", "no"],
    ) -> Registered:
        answer = request.to_answer()
        if request.post is not None:
            return await self._post(answer, request.post)
        if posted_by_bot:
            answer = replace(answer, posted_by_bot=True)
        outcome, stored, queued = await self._store.register_answer(
            answer, provenance, replace_unvoted=replace_unvoted
        )
        self._queued(queued)
        due = (
            prompt != "no"
            and outcome is Registration.CREATED
            and not stored.posted_by_bot
            and (await self._config.for_channel(answer.channel)).prompt
        )
        if due and prompt == "now":
            return Registered(outcome, await self.post_prompt(stored))
        return Registered(outcome, stored, prompt_due=due)

    async def _post(self, answer: Answer, post: PostIn) -> Registered:
        # Posting the same provider answer twice would make two messages: answer with the
        # first one instead, so that a client's retry is safe, even one sent while the
        # first request is still posting.
        holder = uuid.uuid4().hex
        reservation = await self._reserve(answer, holder)
        if reservation.answer is not None:
            existing = reservation.answer
            outcome = (
                Registration.UNCHANGED if existing.same_mapping(answer) else Registration.CONFLICT
            )
            return Registered(outcome, existing)
        ts = ""
        try:
            ts = await self._post_message(answer, post)
            # Until the registration commits, a reaction on the new message is held, and
            # the registration applies it (handlers/reactions.py asks `registering`).
            self.registering.add((answer.channel, ts))
            posted = replace(answer, ts=ts, thread_ts=post.thread_ts, posted_by_bot=True)
            outcome, stored, queued = await self._store.register_posted_answer(posted, holder)
            self._queued(queued)
        except BaseException:
            # Whatever went wrong, the next request for this answer may try again.
            await self._store.release_post(answer, holder)
            raise
        finally:
            self.registering.discard((answer.channel, ts))
        return Registered(outcome, stored)

    def _queued(self, queued: bool) -> None:
        if queued and self._on_votes is not None:
            self._on_votes()

    async def _reserve(self, answer: Answer, holder: str) -> PostReservation:
        """Reserve the post, or wait while another request (in this process or another)
        holds the reservation: it ends posted, released or expired, within its deadline."""
        pause = POLL_FIRST
        while True:
            reservation = await self._store.reserve_post(answer, holder, RESERVATION_TTL)
            if reservation.state is not PostState.BUSY:
                return reservation
            left = reservation.expires_at - time.time()
            await asyncio.sleep(max(0.0, min(pause, left)))
            pause = min(pause * 2, POLL_MAX)

    async def _post_message(self, answer: Answer, post: PostIn) -> str:
        """Post the answer with its controls; returns the message's ts."""
        fallback, blocks = answer_message(post.text, answer, markdown=post.format == "markdown")
        slack = self._slack_client()
        try:
            async with asyncio.timeout(POST_TIMEOUT):  # the reservation must outlive it
                response = await slack.chat_postMessage(
                    channel=answer.channel,
                    text=fallback,
                    blocks=blocks,
                    thread_ts=post.thread_ts,
                    # The mapping, written in Slack too: `answers scan` finds it again.
                    metadata=answer_metadata(replace(answer, thread_ts=post.thread_ts)),
                    unfurl_links=False,
                    unfurl_media=False,
                )
        except SlackApiError as e:
            code = str(e.response.get("error", "unknown_error"))
            hint = _POST_HINTS.get(code)
            raise PostError(
                f"Slack refused to post the answer ({code})" + (f": {hint}" if hint else "")
            ) from None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
            raise PostError(
                f"could not reach Slack to post the answer ({type(e).__name__}): try again"
            ) from None
        return str(response["ts"])

    async def post_prompt(self, answer: Answer) -> Answer:
        """ "Was this helpful?" under an answer another app posted. A failure here is logged
        as a warning, not raised: the answer is registered and reactions on it still count."""
        where = f"{answer.channel}/{answer.ts}"
        if self._slack is None:
            log.warning(
                "not posting the “Was this helpful?” prompt under %s (prompts are on in that"
                " channel): posting needs SLACK_BOT_TOKEN; the answer is registered",
                where,
            )
            return answer
        text, blocks = prompt_message(answer)
        try:
            async with asyncio.timeout(POST_TIMEOUT):
                response = await self._slack.chat_postMessage(
                    channel=answer.channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=answer.thread_ts or answer.ts,
                )
        except SlackApiError as e:
            reason = str(e.response.get("error", "unknown_error"))
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
            reason = f"could not reach Slack ({type(e).__name__})"
        else:
            await self._store.set_prompt_ts(answer.id, str(response["ts"]))
            return replace(answer, prompt_ts=str(response["ts"]))
        log.warning(
            "could not post the “Was this helpful?” prompt under %s: %s; the answer is registered",
            where,
            reason,
        )
        return answer

    def _slack_client(self) -> AsyncWebClient:
        if self._slack is None:
            raise PostError("posting needs SLACK_BOT_TOKEN")
        return self._slack
