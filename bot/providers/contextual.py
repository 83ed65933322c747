"""Contextual AI: POST {base}/agents/{agent_id}/feedback with a Bearer key. An answer is an
agent's message, with the retrieval sources it cited.

What a refusal means, as Contextual's own SDK (contextual-client) classifies it:

| status | the delivery | why |
|---|---|---|
| 400 | dead | the request is malformed: sending it again cannot change that |
| 401 | dead | the key is wrong or revoked: fix it, then `deliveries retry` |
| 403 | dead | the key may not give feedback on this agent |
| 404 | dead | no such agent (or path: check CONTEXTUAL_BASE_URL) |
| 408 | retried | the request timed out on Contextual's side |
| 409 | retried | a conflict, which the SDK treats as a lock timeout: it clears |
| 422 | dead | validation error: ids Contextual does not know; its `detail` says which |
| 429 | retried | rate limited; its Retry-After (or retry-after-ms) is honoured |
| 5xx | retried | Contextual's trouble |
| other 4xx | dead | a refusal, not a passing state |

An `x-should-retry: true` or `false` header overrides the status, as it does for the SDK
(`should_retry`). Connection errors and timeouts are retried.

A 200 is checked against the API's `FeedbackSubmitResponse`: a JSON object whose
`feedback_id` is a UUID, read from at most `BODY_LIMIT` bytes. Anything else (longer, not
JSON, not an object, no `feedback_id`, not a UUID) is logged at WARNING and the delivery still
counts as delivered, with no provider ref: the status says Contextual took the feedback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal
from uuid import UUID

import aiohttp
import orjson
from pydantic import Field, field_validator

from bot.domain import Answer, Source, Target, Verdict
from bot.providers.base import (
    Outcome,
    Response,
    Sent,
    header,
    missing_key,
    request,
    unexpected_answer,
)
from bot.providers.registration import MAX_SOURCES, AnswerIn, SourceIn, TargetIn
from bot.providers.spec import CliOption, ProviderSpec

LABEL = "Contextual"
KEY_SETTING = "contextual_api_key"


class ContextualProvider:
    name = "contextual"
    requests_per_send = 1

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        body: dict[str, Any] = {"message_id": target.message_id, "feedback": verdict.status.value}
        # The spec forbids extra properties and null strings: send only what is set.
        if verdict.explanation:
            body["explanation"] = verdict.explanation
        if verdict.category:
            body["query_category"] = verdict.category
        if content_id:
            body["content_id"] = content_id
        url = f"{self._base}/agents/{target.agent_id}/feedback"
        response = await post(self._session, url, body, self._api_key)
        return Sent(feedback_id(response))


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    api_key: Callable[[], str | None],
    **kwargs: Any,
) -> Response:
    """One POST to Contextual's API (a feedback, or an agent's query, bot/ask/agent.py): the
    current key as Bearer, the body as JSON, the SDK's retry rule, the key kept out of any
    error text. Raises ProviderError."""
    key = api_key()
    if not key:
        raise missing_key(LABEL, KEY_SETTING.upper())
    return await request(
        session,
        LABEL,
        "POST",
        url,
        # orjson: the worker writes and reads one of these per delivery.
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        retryable=should_retry,
        key=key,
        **kwargs,
    )


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """The SDK's rule: the server's `x-should-retry` if it says, else 408, 409, 429, 5xx."""
    said = header(headers, "x-should-retry")
    if said == "true":
        return True
    if said == "false":
        return False
    return status in (408, 409, 429) or status >= 500


def feedback_id(response: Response) -> str | None:
    """The `feedback_id` of a 200 as the API describes it; None, logged, if it is not one.
    Another 2xx is not described by the API: accepted, with no id."""
    if response.status != 200:
        return None
    ref, problem = _read_feedback_id(response)
    if problem is not None:
        unexpected_answer(LABEL, response, problem)
    return ref


def _read_feedback_id(response: Response) -> tuple[str | None, str | None]:
    """(the id, None), or (None, how the body differs from FeedbackSubmitResponse)."""
    if response.truncated:
        return None, "too long"
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None, "not JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    ref = data.get("feedback_id")
    if ref is None:
        return None, "no feedback_id"
    if not isinstance(ref, str) or not _is_uuid(ref):
        return None, "feedback_id is not a UUID"
    return ref, None


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


class ContextualTargetIn(TargetIn):
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

    def to_target(self, position: int) -> Target:
        return Target(
            provider="contextual",
            agent_id=str(self.agent_id),
            message_id=str(self.message_id),
            position=position,
        )

    def to_sources(self, position: int) -> tuple[Source, ...]:
        return tuple(Source(str(s.content_id), s.label, position) for s in self.sources)


class ContextualAnswerIn(ContextualTargetIn, AnswerIn):
    """The single form: where the answer is, and its one Contextual target."""


def _ids(answer: Answer, target: Target) -> dict[str, object]:
    mine = [s for s in answer.sources if s.target == target.position]
    return {
        "agent_id": target.agent_id,
        "message_id": target.message_id,
        "sources": [{"content_id": s.content_id, "label": s.label} for s in mine],
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
    target_in=ContextualTargetIn,
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
