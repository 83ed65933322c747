"""Ask the AI: a mention, a direct message, a follow-up in a thread the bot answered, and
Slack's assistant surface become questions (bot/ask/service.py answers them, after the
ack). Never a bot's message, the bot's own, an edit or a deletion."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncAssistant, AsyncSay, AsyncSetStatus
from slack_bolt.response import BoltResponse

from bot.ask.service import Question
from bot.services import Services
from handlers.payloads import MessageEnvelope, MessageEvent, parse_payload

SUGGESTED_PROMPTS = [
    {"title": "What can you answer?", "message": "What kinds of questions can you answer?"},
    {"title": "Find a document", "message": "Which document explains our refund policy?"},
]


def register(app: AsyncApp, services: Services) -> None:
    if services.asker is None:
        return
    asker = services.asker
    assistant = AsyncAssistant()

    @assistant.thread_started
    async def started(say: AsyncSay, set_suggested_prompts: Any) -> None:
        await say("Ask me anything: I answer with our agent, and you can rate every answer.")
        await set_suggested_prompts(prompts=SUGGESTED_PROMPTS)

    @assistant.user_message
    async def asked(body: dict[str, Any], set_status: AsyncSetStatus) -> None:
        envelope = parse_payload(MessageEnvelope, body, "assistant message")
        if isinstance(envelope, BoltResponse):
            return
        question = _question(services, envelope.event, follow_up=False)
        if question is not None:
            services.background.spawn(asker.answer(question, set_status), "an assistant question")

    app.assistant(assistant)

    async def on_message(body: dict[str, Any]) -> BoltResponse | None:
        envelope = parse_payload(MessageEnvelope, body, "message event")
        if isinstance(envelope, BoltResponse):
            return envelope
        event = envelope.event
        # A mention comes as app_mention too (and is answered from there); in a DM, or in
        # a thread the bot answered in, a plain message is a question.
        direct = event.channel_type == "im"
        in_thread = event.thread_ts is not None and event.thread_ts != event.ts
        if event.type == "message" and not (direct or in_thread):
            return None
        if direct and event.thread_ts is not None:
            return None  # a thread of a DM is the assistant's (`asked` above answers it)
        question = _question(services, event, follow_up=event.type == "message" and not direct)
        if question is not None:
            services.background.spawn(asker.answer(question), f"question {event.ts}")
        return None

    app.event("app_mention")(on_message)
    app.event("message")(on_message)


def _question(services: Services, event: MessageEvent, *, follow_up: bool) -> Question | None:
    if event.subtype is not None or event.bot_id is not None or event.user is None:
        return None
    if event.user == services.identity.bot_user_id:
        return None
    return Question(
        channel=event.channel,
        ts=event.ts,
        thread_ts=event.thread_ts or event.ts,
        user=event.user,
        text=event.text,
        follow_up=follow_up,
    )
