"""Registering answers: the request model (one for the HTTP API, the CLI and Python callers)
and the service that maps an existing message, or posts the answer with feedback controls."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, Self
from uuid import UUID

import aiohttp
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import answer_message, prompt_message
from bot.config import Config
from bot.domain import Answer, Registration, Source
from storage import PostReservation, PostState, Store

log = logging.getLogger(__name__)

_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,30}")
_TS = re.compile(r"\d{9,10}\.\d{6}")


def _channel(v: str) -> str:
    if not _CHANNEL.fullmatch(v):
        raise ValueError("must be a Slack channel id such as C0123ABCD")
    return v


def _ts(v: str) -> str:
    if not _TS.fullmatch(v):
        raise ValueError("must be a Slack message ts such as 1700000000.000100")
    return v


ChannelId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_channel)]
SlackTs = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_ts)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
AquilaXId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
]

MAX_SOURCES = 10
MAX_POST_TEXT = 100_000

# A post is cut off after 10 s, the Slack client's configured timeout, which the client
# does not apply when it shares an aiohttp session (as the bot's does). Its reservation
# lasts twice that: a live poster always finishes or releases first, and a crashed one
# holds the same answer up for 20 s at most.
POST_TIMEOUT = 10.0
RESERVATION_TTL = 20.0
# Requests that find the answer being posted look again after 20 ms, 40 ms … up to 250 ms.
POLL_FIRST = 0.02
POLL_MAX = 0.25


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_id: UUID
    label: Label


class PostIn(BaseModel):
    """Have the bot post the answer itself, with its feedback controls."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_POST_TEXT)]
    thread_ts: SlackTs | None = None


class _AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelId = Field(description="Slack channel id (C…, G… or D…)")
    ts: SlackTs | None = Field(
        default=None, description="the existing message, e.g. 1700000000.000100"
    )
    thread_ts: SlackTs | None = Field(
        default=None, description="the thread the existing message is in, if it is a reply"
    )
    post: PostIn | None = None

    @model_validator(mode="after")
    def _ts_or_post(self) -> Self:
        if self.post is None and self.ts is None:
            raise ValueError(
                "give ts (the message holding the answer) or post (the answer"
                " text for the bot to post)"
            )
        if self.post is not None and (self.ts is not None or self.thread_ts is not None):
            raise ValueError(
                "with post, leave out ts and thread_ts: the bot posts the message"
                " (use post.thread_ts to post in a thread)"
            )
        return self

    def _placement(self) -> dict[str, Any]:
        return {"channel": self.channel, "ts": self.ts or "", "thread_ts": self.thread_ts}


class ContextualAnswerIn(_AnswerIn):
    provider: Literal["contextual"]
    agent_id: UUID
    message_id: UUID
    sources: list[SourceIn] = Field(default_factory=list, max_length=MAX_SOURCES)

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, v: list[SourceIn]) -> list[SourceIn]:
        ids = [s.content_id for s in v]
        if len(set(ids)) != len(ids):
            raise ValueError("each content_id may appear only once")
        return v

    def to_answer(self) -> Answer:
        return Answer(
            **self._placement(),
            provider="contextual",
            agent_id=str(self.agent_id),
            message_id=str(self.message_id),
            sources=tuple(Source(str(s.content_id), s.label) for s in self.sources),
        )


class AquilaXAnswerIn(_AnswerIn):
    provider: Literal["aquilax"]
    request_id: UUID
    org: AquilaXId
    group: AquilaXId

    def to_answer(self) -> Answer:
        return Answer(
            **self._placement(),
            provider="aquilax",
            request_id=str(self.request_id),
            org=self.org,
            group=self.group,
        )


AnswerIn = Annotated[ContextualAnswerIn | AquilaXAnswerIn, Field(discriminator="provider")]


_ANSWER = TypeAdapter[ContextualAnswerIn | AquilaXAnswerIn](AnswerIn)


def parse_answer(payload: object) -> ContextualAnswerIn | AquilaXAnswerIn:
    """Validate a payload (a dict, or JSON text); raises pydantic.ValidationError."""
    if isinstance(payload, str | bytes):
        return _ANSWER.validate_json(payload)
    return _ANSWER.validate_python(payload)


def answer_errors(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic's error list, with the provider tag taken out of each location so that
    `loc` names the field as the caller wrote it."""
    out = []
    for e in error.errors(include_url=False, include_input=False, include_context=False):
        loc = list(e["loc"])
        if loc and loc[0] in ("contextual", "aquilax"):
            loc = loc[1:]
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc, msg = ["provider"], "must be 'contextual' or 'aquilax'"
        out.append({"type": e["type"], "loc": loc, "msg": msg})
    return out


def describe_errors(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)


@dataclass(frozen=True, slots=True)
class Registered:
    outcome: Registration
    answer: Answer  # the stored mapping (for a conflict: the one already there)


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

    def __init__(self, store: Store, config: Config, slack: AsyncWebClient | None = None) -> None:
        self._store = store
        self._config = config
        self._slack = slack

    async def parse(self, payload: object) -> ContextualAnswerIn | AquilaXAnswerIn:
        """Validate a payload (a dict, or JSON text), filling in the channel's defaults for
        the provider, the Contextual agent and the AquilaX org and group. Raises
        pydantic.ValidationError."""
        data = payload
        if isinstance(payload, str | bytes):
            try:
                data = json.loads(payload)
            except ValueError:
                return parse_answer(payload)  # pydantic's own json_invalid error
        if isinstance(data, dict) and isinstance(data.get("channel"), str):
            config = await self._config.for_channel(data["channel"].strip())
            data = dict(data)
            if config.provider:
                data.setdefault("provider", config.provider)
            defaults = {
                "contextual": {"agent_id": config.agent_id},
                "aquilax": {"org": config.aquilax_org, "group": config.aquilax_group},
            }.get(data.get("provider"), {})
            for key, value in defaults.items():
                if value:
                    data.setdefault(key, value)
        return parse_answer(data)

    async def find_for_controls(self, channel: str, ts: str) -> Answer | None:
        """The answer whose feedback controls sit on message `ts`: the answer itself, or the
        bot's "Was this helpful?" reply under it."""
        return await self._store.find_answer_for_controls(channel, ts)

    async def register(self, request: ContextualAnswerIn | AquilaXAnswerIn) -> Registered:
        answer = request.to_answer()
        if request.post is not None:
            return await self._post(answer, request.post)
        outcome, stored = await self._store.register_answer(answer)
        if (
            outcome is Registration.CREATED
            and (await self._config.for_channel(answer.channel)).prompt
        ):
            stored = await self._post_prompt(stored)
        return Registered(outcome, stored)

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
        try:
            ts = await self._post_message(answer, post)
            posted = replace(answer, ts=ts, thread_ts=post.thread_ts, posted_by_bot=True)
            outcome, stored = await self._store.register_posted_answer(posted, holder)
        except BaseException:
            # Whatever went wrong, the next request for this answer may try again.
            await self._store.release_post(answer, holder)
            raise
        return Registered(outcome, stored)

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
        fallback, blocks = answer_message(post.text, answer)
        slack = self._slack_client()
        try:
            async with asyncio.timeout(POST_TIMEOUT):  # the reservation must outlive it
                response = await slack.chat_postMessage(
                    channel=answer.channel,
                    text=fallback,
                    blocks=blocks,
                    thread_ts=post.thread_ts,
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

    async def _post_prompt(self, answer: Answer) -> Answer:
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


def answer_json(answer: Answer) -> dict[str, object]:
    body: dict[str, object] = {
        "channel": answer.channel,
        "ts": answer.ts,
        "provider": answer.provider,
    }
    if answer.provider == "contextual":
        body |= {
            "agent_id": answer.agent_id,
            "message_id": answer.message_id,
            "sources": [{"content_id": s.content_id, "label": s.label} for s in answer.sources],
        }
    else:
        body |= {"request_id": answer.request_id, "org": answer.org, "group": answer.group}
    if answer.thread_ts:
        body["thread_ts"] = answer.thread_ts
    if answer.posted_by_bot:
        body["posted_by_bot"] = True
    if answer.prompt_ts:
        body["prompt_ts"] = answer.prompt_ts
    return body
