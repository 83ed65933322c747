"""The Slack message metadata an assistant attaches to the message holding an AI answer, so
that the answer registers itself (docs/answer-metadata.schema.json describes it for the
apps that post it): what it holds, how it is built for the bot's own posts, and how it
becomes what POST /v1/answers takes. bot/answers/self_registration.py decides whether it counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain import Answer, Target
from bot.providers import PROVIDERS

# Slack's guidelines name a metadata event in snake case, in the past tense.
EVENT_TYPE = "ai_answer_posted"
# Version 2 added `targets`: an answer for several providers. The bot writes 1 for an answer
# of one target, as readers of version 1 expect, and 2 for one of several.
SCHEMA_VERSION = 2
# Where the answer is comes from the message itself, never from what it says about itself.
_FROM_MESSAGE = ("channel", "ts", "post")


class MetadataError(ValueError):
    """The metadata cannot register an answer; the message names the field."""


def answer_metadata(answer: Answer) -> dict[str, Any]:
    """The metadata for a message holding `answer` (chat.postMessage's `metadata`)."""
    payload: dict[str, Any]
    if len(answer.targets) == 1:
        payload = {"schema_version": 1} | _target(answer, answer.first)
    else:
        payload = {
            "schema_version": SCHEMA_VERSION,
            "targets": [_target(answer, t) for t in answer.targets],
        }
    if answer.thread_ts:
        payload["thread_ts"] = answer.thread_ts
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def _target(answer: Answer, target: Target) -> dict[str, Any]:
    ids = PROVIDERS[target.provider].answer_ids(answer, target)
    return {"provider": target.provider} | {k: v for k, v in ids.items() if v}


def is_answer_metadata(metadata: object) -> bool:
    return isinstance(metadata, dict) and metadata.get("event_type") == EVENT_TYPE


def registration_payload(
    metadata: object, channel: str, ts: str, thread_ts: str | None, *, thread_known: bool
) -> dict[str, Any]:
    """What POST /v1/answers would take for the message (channel, ts) carrying `metadata`.
    Raises MetadataError when the metadata is not ours or not of a version we know.

    Where the message is comes from the message: with `thread_known` (a message read from
    the history), its own thread_ts, whatever the payload says; an event does not say, so
    the payload's thread_ts, if any, stands."""
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        raise MetadataError(f"event_type: must be {EVENT_TYPE!r}")
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        raise MetadataError("event_payload: must be an object")
    payload = dict(payload)
    version = payload.pop("schema_version", 1)
    if type(version) is not int or version not in (1, SCHEMA_VERSION):  # True == 1 in Python
        raise MetadataError(
            f"event_payload.schema_version: {version!r} is not a version this feedback-bot"
            f" knows (it reads 1 and {SCHEMA_VERSION}); upgrade feedback-bot"
        )
    if version == 1 and "targets" in payload:
        raise MetadataError("event_payload.targets: a list of targets needs schema_version 2")
    for key in _FROM_MESSAGE:
        if key in payload:
            raise MetadataError(
                f"event_payload.{key}: not allowed; the message itself says where the answer is"
            )
    if thread_known:
        payload.pop("thread_ts", None)
        if thread_ts and thread_ts != ts:
            payload["thread_ts"] = thread_ts
    return {"channel": channel, "ts": ts, **payload}


@dataclass(frozen=True, slots=True)
class PostedMetadata:
    """A message carrying metadata, as an event or a history page shows it."""

    channel: str
    ts: str
    thread_ts: str | None
    app_id: str | None  # the app that posted it
    bot_id: str | None
    metadata: object
    thread_known: bool = True  # False for an event, which does not say the thread
    metadata_ts: float | None = None  # an event's event_ts: when Slack says it was written


def as_posted(message: dict[str, Any], channel: str) -> PostedMetadata:
    """A conversations.history / conversations.replies message."""
    profile = message.get("bot_profile") or {}
    return PostedMetadata(
        channel=channel,
        ts=str(message.get("ts", "")),
        thread_ts=message.get("thread_ts"),
        app_id=message.get("app_id") or profile.get("app_id"),
        bot_id=message.get("bot_id") or profile.get("id"),
        metadata=message.get("metadata"),
    )
