"""What every request to register an answer holds, whatever the provider: where the answer
is in Slack (or the text for the bot to post), validated, and the target models each
provider extends.

Each provider module declares `TargetIn` with its ids (`provider` its tag), and the single
form, `AnswerIn` and that target in one body (`{"channel", "ts", "provider", ids}`).
`bot.answers.register` joins them into the two forms a registration takes: one of the single
forms, or `AnswerIn` with a list of targets."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from bot.domain import Answer, Source, Target

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
# [0-9], not \d: Python's \d also matches other scripts' digits.
_TS = re.compile(r"[0-9]{9,10}\.[0-9]{6}")


def _channel(v: str) -> str:
    if not CHANNEL_ID.fullmatch(v):
        raise ValueError("must be a Slack channel id such as C0123ABCD")
    return v


def _ts(v: str) -> str:
    if not _TS.fullmatch(v):
        raise ValueError("must be a Slack message ts such as 1700000000.000100")
    return v


ChannelId = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_channel)]
SlackTs = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_ts)]
LABEL_LIMIT = 200  # a source's label
Label = Annotated[
    str, StringConstraints(min_length=1, max_length=LABEL_LIMIT, strip_whitespace=True)
]

MAX_SOURCES = 10
MAX_POST_TEXT = 100_000


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_id: UUID
    label: Label


class PostIn(BaseModel):
    """Have the bot post the answer itself, with its feedback controls."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_POST_TEXT)]
    thread_ts: SlackTs | None = None
    # "markdown": the text is Markdown (an agent's answer), shown as Slack's mrkdwn: bold,
    # links, lists, code. "text": shown as it is written.
    format: Literal["text", "markdown"] = "text"


class AnswerIn(BaseModel):
    """The part of a registration every provider shares. A provider's model adds
    `provider: Literal["its name"]` (the union's tag) and its ids, and builds the Answer."""

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

    def target_models(self) -> list[TargetIn]:
        """Its targets, in order: the single form is its own one."""
        if isinstance(self, TargetIn):
            return [self]
        raise NotImplementedError

    def to_answer(self) -> Answer:
        """The Answer to store."""
        models = self.target_models()
        return Answer(
            channel=self.channel,
            ts=self.ts or "",
            thread_ts=self.thread_ts,
            targets=tuple(m.to_target(i) for i, m in enumerate(models)),
            sources=tuple(s for i, m in enumerate(models) for s in m.to_sources(i)),
        )


class TargetIn(BaseModel):
    """One target of a registration: a provider's model adds `provider: Literal["its name"]`
    (the union's tag) and its ids, and builds the Target."""

    model_config = ConfigDict(extra="forbid")

    def to_target(self, position: int) -> Target:
        raise NotImplementedError

    def to_sources(self, position: int) -> tuple[Source, ...]:
        """The answer's sources this target knows (Contextual's); none by default."""
        return ()
