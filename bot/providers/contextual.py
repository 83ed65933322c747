"""Contextual AI: POST {base}/agents/{agent_id}/feedback with a Bearer key. An answer is an
agent's message, with the retrieval sources it cited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from uuid import UUID

import aiohttp
import orjson
from pydantic import Field, field_validator

from bot.domain import Answer, Source, Verdict
from bot.providers.base import Outcome, Sent, missing_key, request
from bot.providers.spec import CliOption, ProviderSpec
from bot.registration import MAX_SOURCES, AnswerIn, SourceIn

LABEL = "Contextual"
KEY_SETTING = "contextual_api_key"


class ContextualProvider:
    name = "contextual"

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    async def send(self, answer: Answer, content_id: str, verdict: Verdict) -> Outcome:
        key = self._api_key()
        if not key:
            raise missing_key(LABEL, KEY_SETTING.upper())
        body: dict[str, Any] = {"message_id": answer.message_id, "feedback": verdict.status.value}
        # The spec forbids extra properties and null strings: send only what is set.
        if verdict.explanation:
            body["explanation"] = verdict.explanation
        if verdict.category:
            body["query_category"] = verdict.category
        if content_id:
            body["content_id"] = content_id
        response = await request(
            self._session,
            LABEL,
            "POST",
            f"{self._base}/agents/{answer.agent_id}/feedback",
            # orjson: the worker writes and reads one of these per delivery.
            data=orjson.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        try:
            ref = orjson.loads(response.body).get("feedback_id")
        except (orjson.JSONDecodeError, AttributeError):
            ref = None  # accepted all the same: a 2xx is what counts
        return Sent(ref if isinstance(ref, str) else None)


class ContextualAnswerIn(AnswerIn):
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


def _ids(answer: Answer) -> dict[str, object]:
    return {
        "agent_id": answer.agent_id,
        "message_id": answer.message_id,
        "sources": [{"content_id": s.content_id, "label": s.label} for s in answer.sources],
    }


def _source_option(raw: str) -> dict[str, str]:
    content_id, _, label = raw.partition("=")
    return {"content_id": content_id, "label": label}


SPEC = ProviderSpec(
    name=ContextualProvider.name,
    label=LABEL,
    key_setting=KEY_SETTING,
    key_label="Contextual AI API key",
    base_url_setting="contextual_base_url",
    answer_in=ContextualAnswerIn,
    answer_ids=_ids,
    client=ContextualProvider,
    removed=None,  # sent as {"feedback": "removed"}: Contextual withdraws the feedback
    channel_defaults={"agent_id": "agent_id"},
    cli_options=(
        CliOption("agent_id"),
        CliOption("message_id"),
        CliOption(
            "sources",
            flag="--source",
            metavar="CONTENT_ID=LABEL",
            help="a retrieval source (Contextual); repeat for several",
            item=_source_option,
        ),
    ),
)
