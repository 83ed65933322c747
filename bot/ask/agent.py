"""Contextual AI's query API: POST {base}/agents/{agent_id}/query with the Bearer key the
feedback uses, `stream: false` (the stream's event format is not documented), the question
as the last `user` message, and the conversation to continue, if any.

What comes back is read at the edge (`QueryOut`) and becomes a plain `AgentAnswer`: the
text, the `message_id` feedback is given on, the conversation to continue, and the sources
the answer cites. A refusal is what Contextual's SDK says it is (`contextual.should_retry`:
408, 409, 429, 5xx and `x-should-retry` are retryable); one retryable failure is tried again
once, if the wait (its Retry-After, else a short pause) leaves time before `deadline`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.providers.base import PermanentError, RetryableError
from bot.providers.contextual import LABEL, post
from bot.providers.registration import LABEL_LIMIT, MAX_SOURCES

# The pause before the one retry when the refusal names none.
RETRY_PAUSE = 0.5
# One query's time: an agent thinks longer than a feedback takes.
QUERY_TIMEOUT = aiohttp.ClientTimeout(total=20.0, connect=5.0)
# The least time worth a retry: less, and it would only time out.
MIN_TRY = 1.0


class _Model(BaseModel):
    # Contextual adds fields over time: what is not read here is not checked either.
    model_config = ConfigDict(extra="ignore")


class MessageOut(_Model):
    content: str
    role: str


class RetrievalOut(_Model):
    content_id: UUID
    doc_name: str
    page: int | None = None
    url: str | None = None


class AttributionOut(_Model):
    content_ids: list[str] = Field(default_factory=list)


class QueryOut(_Model):
    """The part of QueryResponse the bot relies on."""

    conversation_id: UUID
    message_id: UUID | None = None
    message: MessageOut | None = None
    retrieval_contents: list[RetrievalOut] = Field(default_factory=list)
    attributions: list[AttributionOut] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AgentSource:
    content_id: str
    label: str  # the document's name, and its page when known
    url: str | None


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    text: str
    message_id: str
    conversation_id: str
    sources: tuple[AgentSource, ...]


class ContextualAgent:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Callable[[], str | None],
        timeout: aiohttp.ClientTimeout = QUERY_TIMEOUT,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout

    async def ask(
        self, agent_id: str, question: str, conversation_id: str | None, *, deadline: float
    ) -> AgentAnswer:
        """The agent's answer to `question`, continuing `conversation_id` if given, by
        `deadline` (time.monotonic()): no request runs past it. Raises RetryableError (asking
        again later may help) or PermanentError."""
        try:
            return await self._query(agent_id, question, conversation_id, deadline)
        except RetryableError as e:
            pause = e.retry_after if e.retry_after is not None else RETRY_PAUSE
            if time.monotonic() + pause + MIN_TRY >= deadline:
                raise
            await asyncio.sleep(pause)
            return await self._query(agent_id, question, conversation_id, deadline)

    async def _query(
        self, agent_id: str, question: str, conversation_id: str | None, deadline: float
    ) -> AgentAnswer:
        body: dict[str, object] = {
            "messages": [{"role": "user", "content": question}],
            "stream": False,
        }
        if conversation_id:
            body["conversation_id"] = conversation_id
        url = f"{self._base}/agents/{agent_id}/query"
        timeout = _within(self._timeout, deadline)
        response = await post(self._session, url, body, self._api_key, timeout=timeout)
        if response.truncated:
            raise PermanentError(f"{LABEL} answered with more than the bot reads of an answer")
        try:
            out = QueryOut.model_validate_json(response.body)
        except ValidationError as e:
            first = e.errors(include_url=False, include_input=False)[0]
            where = ".".join(map(str, first["loc"])) or "body"
            raise PermanentError(
                f"{LABEL} answered a query it does not describe ({where})"
            ) from None
        return answer_from(out)


def _within(timeout: aiohttp.ClientTimeout, deadline: float) -> aiohttp.ClientTimeout:
    """`timeout`, shortened so that the request ends by `deadline`."""
    left = max(0.1, deadline - time.monotonic())
    total = min(timeout.total or left, left)
    return aiohttp.ClientTimeout(total=total, connect=min(timeout.connect or total, total))


def answer_from(out: QueryOut) -> AgentAnswer:
    """The answer as the bot posts and registers it. Without a message id there is nothing
    to give feedback on: that is no answer the bot can post."""
    if out.message_id is None or out.message is None or not out.message.content.strip():
        raise PermanentError(f"{LABEL} answered without a message (or its id)")
    return AgentAnswer(
        text=out.message.content,
        message_id=str(out.message_id),
        conversation_id=str(out.conversation_id),
        sources=cited_sources(out),
    )


def cited_sources(out: QueryOut) -> tuple[AgentSource, ...]:
    """The retrievals the answer cites (all of them when it cites none), each once, in the
    order retrieved, at most MAX_SOURCES: each gets its own feedback controls."""
    cited = {cid for a in out.attributions for cid in a.content_ids}
    seen: set[str] = set()
    sources = []
    for r in out.retrieval_contents:
        content_id = str(r.content_id)
        if content_id in seen or (cited and content_id not in cited):
            continue
        seen.add(content_id)
        label = f"{r.doc_name}, p. {r.page}" if r.page is not None else r.doc_name
        sources.append(AgentSource(content_id, label.strip()[:LABEL_LIMIT] or "Source", r.url))
    return tuple(sources[:MAX_SOURCES])
