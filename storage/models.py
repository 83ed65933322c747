"""The types of the store's own bookkeeping: post reservations, the delivery worker's claims
and outcomes, outbox counts, audit rows, held reactions. No Slack, no HTTP.

The vocabulary the store hands out and takes in (Answer, Delivery, VoteChange, ...) lives in
bot/domain.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain import Answer, Delivery, DeliveryState


class PostState(StrEnum):
    RESERVED = "reserved"  # the caller may post; it must then register the message or release
    POSTED = "posted"  # the bot already posted this answer here: `answer` is the message
    BUSY = "busy"  # someone else is posting it, until `expires_at` at the latest


@dataclass(frozen=True, slots=True)
class PostReservation:
    state: PostState
    answer: Answer | None = None
    expires_at: float = 0.0


@dataclass(frozen=True, slots=True)
class MetadataRegistration:
    """The newest answer registered through message metadata, for /feedback status."""

    channel: str
    ts: str
    at: float
    via: str  # 'metadata' (the event), 'scan' or 'lookup'
    app_id: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    user: str
    scope: str
    key: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class Finished:
    """What became of one send: DELIVERED, SKIPPED, DEAD, or PENDING (try again at
    `retry_at`)."""

    delivery_id: int
    state: DeliveryState
    error: str | None = None
    ref: str | None = None
    retry_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Claim:
    deliveries: list[Delivery]  # now marked sending, for the worker to send
    next_due: float | None  # when the next row not yet due will be
    superseded: frozenset[int]  # finished retries dropped: a newer verdict replaces them
    recovered: int = 0  # sends taken over from an owner whose lease expired
    lost: frozenset[int] = frozenset()  # our sends another process took over meanwhile
    # Rows claimed for us that we never got (a turn committed though we were told it
    # failed), put back in the queue.
    orphaned: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int
    sending: int
    dead: int
    oldest_pending_at: float | None
    last_error: str | None
    # provider -> state (pending, sending, dead) -> how many of its targets' rows
    by_provider: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message whose reactions are held while the late lookup finds it."""

    channel: str
    ts: str
    reactions: int
    first_at: float


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing an answer did: the mapping, the votes kept, the sends cancelled."""

    answer: Answer
    votes_kept: int
    deliveries_cancelled: int


@dataclass(frozen=True, slots=True)
class Asking:
    """A question asked in Slack: the message, its thread (its own ts when it starts one),
    and who asked."""

    channel: str
    ts: str
    thread_ts: str
    user: str


@dataclass(frozen=True, slots=True)
class QuestionEnd:
    """How a question ended: answered (the answer's ts, and the agent and conversation its
    thread continues) or not (the asker was told why)."""

    answered: bool
    answer_ts: str | None = None
    conversation: tuple[str, str] | None = None  # (agent id, conversation id)


class QuestionClaim(StrEnum):
    CLAIMED = "claimed"  # the caller answers it now, then calls finish_question
    DONE = "done"  # answered (or its failure said) already: Slack sent the event again
    BUSY = "busy"  # another holder is answering it, or the asker's earlier question there


@dataclass(frozen=True, slots=True)
class Question:
    """What claiming a question says, and the conversation its thread continues, if any."""

    claim: QuestionClaim
    agent_id: str | None = None  # the thread's agent, when the bot answered there before
    conversation_id: str | None = None
