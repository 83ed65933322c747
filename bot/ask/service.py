"""Answering a question asked in Slack: which agent, the claim that makes it answered once,
the query, the answer posted in the question's thread with its feedback controls (and
registered, as any answer the bot posts), and a short word to the asker when no answer came.

The listeners (handlers/ask.py) decide what is a question; this module answers it, after
the ack (a query takes seconds, Slack's patience three).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers.register import Answers, PostError
from bot.answers.request import validate_answer
from bot.ask.agent import AgentAnswer, ContextualAgent
from bot.config.channels import ChannelSettings, ask_agent
from bot.config.settings import Settings
from bot.providers import ProviderError, contextual
from storage import Asking, QuestionClaim, QuestionEnd, Store

log = logging.getLogger(__name__)

# How long a question may take before a reply to it stops being worth waiting for: the
# query and its one retry, then the post. A claim lasts a little longer, so that a live
# holder always finishes first; a crashed one holds the question that long at most.
ANSWER_DEADLINE = 30.0
CLAIM_TTL = ANSWER_DEADLINE + 15.0
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")

TRY_AGAIN = "No answer came this time ({why}). Asking again in a moment may help."
WONT_HELP = "No answer came ({why}). Asking again will not help until an admin has a look."

# Shows what the bot is doing, in the assistant panel (Bolt's set_status).
Status = Callable[[str], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Question:
    """A message the listeners decided is a question for the bot."""

    channel: str
    ts: str
    thread_ts: str  # the thread it is in, or its own ts: the answer goes there
    user: str
    text: str
    follow_up: bool = False  # in a thread the bot answered, without a mention


class Asker:
    def __init__(
        self,
        store: Store,
        config: ChannelSettings,
        settings: Settings,
        agent: ContextualAgent,
        answers: Answers,
        slack: AsyncWebClient,
        owner: str,
    ) -> None:
        self._store = store
        self._config = config
        self._settings = settings
        self._agent = agent
        self._answers = answers
        self._slack = slack
        self._owner = owner

    async def agent_for(self, question: Question) -> str | None:
        """The agent for a question: a follow-up's is its thread's (None in a thread the bot
        never answered in: no question for it); a new one's, the channel's. A thread the bot
        answered in keeps its agent either way: the claim says which (claim_question)."""
        if question.follow_up:
            known = await self._store.thread_conversation(question.channel, question.thread_ts)
            return known[0] if known is not None else None
        return ask_agent(await self._config.for_channel(question.channel), self._settings)

    async def answer(self, question: Question, status: Status | None = None) -> None:
        """Answer the question once, whoever else received it; never raises."""
        text = _MENTION.sub("", question.text).strip()
        if not text:
            return
        agent_id = await self.agent_for(question)
        if agent_id is None:
            return
        asking = Asking(question.channel, question.ts, question.thread_ts, question.user)
        # Each answering is its own holder: the same event twice in one process, or two
        # questions at once, must not share a claim.
        holder = f"{self._owner}/{uuid.uuid4().hex[:8]}"
        claim = await self._store.claim_question(asking, holder, CLAIM_TTL)
        if claim.claim is not QuestionClaim.CLAIMED:
            log.debug("question %s/%s: %s", question.channel, question.ts, claim.claim.value)
            return
        agent_id = claim.agent_id or agent_id
        if status is not None:
            await status("is thinking…")
        started = time.monotonic()
        try:
            reply = await self._agent.ask(
                agent_id, text, claim.conversation_id, deadline=started + ANSWER_DEADLINE
            )
            answer_ts = await self._post(question, agent_id, reply)
        except (ProviderError, PostError) as e:
            await self._failed(question, holder, e)
            return
        await self._store.finish_question(
            question.channel,
            question.ts,
            holder,
            QuestionEnd(True, answer_ts, (agent_id, reply.conversation_id)),
        )
        log.info(
            "question %s/%s answered by agent %s in %.1f s (%d sources)",
            question.channel,
            question.ts,
            agent_id,
            time.monotonic() - started,
            len(reply.sources),
        )

    async def _post(self, question: Question, agent_id: str, reply: AgentAnswer) -> str:
        # The sources' controls name them; their links, where the agent gave one, go here.
        links = [f"[{s.label}]({s.url})" for s in reply.sources if s.url]
        text = reply.text + (f"\n\nSources: {', '.join(links)}" if links else "")
        request = validate_answer(
            {
                "channel": question.channel,
                "provider": contextual.SPEC.name,
                "agent_id": agent_id,
                "message_id": reply.message_id,
                "sources": [{"content_id": s.content_id, "label": s.label} for s in reply.sources],
                "post": {"text": text, "thread_ts": question.thread_ts, "format": "markdown"},
            }
        )
        registered = await self._answers.register(request, posted_by_bot=True, prompt="no")
        return registered.answer.ts

    async def _failed(self, question: Question, holder: str, error: Exception) -> None:
        retryable = getattr(error, "retryable", isinstance(error, PostError))
        why = str(error).split(":", 1)[0]
        log.warning(
            "question %s/%s: no answer (%s)", question.channel, question.ts, str(error)[:300]
        )
        await self._store.finish_question(question.channel, question.ts, holder, QuestionEnd(False))
        try:
            await self._slack.chat_postMessage(
                channel=question.channel,
                thread_ts=question.thread_ts,
                text=(TRY_AGAIN if retryable else WONT_HELP).format(why=why),
            )
        except (SlackApiError, SlackClientError) as e:
            log.warning("could not tell %s that no answer came: %s", question.user, e)
