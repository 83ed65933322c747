"""The parts of Slack's payloads we rely on, as typed models. Everything else is ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ValidationError


class ReactionItem(BaseModel):
    type: str
    channel: str | None = None
    ts: str | None = None


class ReactionEvent(BaseModel):
    type: Literal["reaction_added", "reaction_removed"]
    user: str
    reaction: str
    item: ReactionItem


class ReactionEnvelope(BaseModel):
    event_id: str
    event: ReactionEvent


def describe(error: ValidationError) -> str:
    """`event.item: Field required; …`, short enough for a log line or an HTTP error."""
    parts = []
    for e in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)
