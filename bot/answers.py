"""Registering answers: the request model (one for the HTTP API, the CLI and Python callers)
and the function that stores it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from storage import Answer, Registration, Source, Store

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


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_id: UUID
    label: Label


class _AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelId = Field(description="Slack channel id (C…, G… or D…)")
    ts: SlackTs = Field(description="Slack message timestamp, e.g. 1700000000.000100")


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
            channel=self.channel,
            ts=self.ts,
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
            channel=self.channel,
            ts=self.ts,
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


async def register_answer(
    store: Store, request: ContextualAnswerIn | AquilaXAnswerIn
) -> Registered:
    outcome, answer = await store.register_answer(request.to_answer())
    return Registered(outcome, answer)


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
    return body
