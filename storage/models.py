"""Plain typed rows the store hands out. No Slack, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.domain import Status, Verdict

Provider = Literal["contextual", "aquilax"]


@dataclass(frozen=True, slots=True)
class Source:
    content_id: str
    label: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A Slack message holding an AI answer, and the provider target it maps to."""

    channel: str
    ts: str
    provider: Provider
    agent_id: str | None = None
    message_id: str | None = None
    request_id: str | None = None
    org: str | None = None
    group: str | None = None
    sources: tuple[Source, ...] = ()
    posted_by_bot: bool = False  # the bot posted the message, with its controls
    thread_ts: str | None = None  # the thread the answer is in, if any
    prompt_ts: str | None = None  # the bot's "Was this helpful?" reply under it, if any
    id: int = 0  # assigned by the store

    @property
    def target(self) -> str:
        """The provider's id for the answer, for logs and messages."""
        return self.message_id if self.provider == "contextual" else self.request_id or ""

    def source(self, content_id: str) -> Source | None:
        return next((s for s in self.sources if s.content_id == content_id), None)

    def same_mapping(self, other: Answer) -> bool:
        return (
            self.provider,
            self.agent_id,
            self.message_id,
            self.request_id,
            self.org,
            self.group,
            self.sources,
        ) == (
            other.provider,
            other.agent_id,
            other.message_id,
            other.request_id,
            other.org,
            other.group,
            other.sources,
        )


class Registration(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


class PostState(StrEnum):
    RESERVED = "reserved"  # the caller may post; it must then register the message or release
    POSTED = "posted"  # the bot already posted this answer here: `answer` is the message
    BUSY = "busy"  # someone else is posting it, until `expires_at` at the latest


@dataclass(frozen=True, slots=True)
class PostReservation:
    state: PostState
    answer: Answer | None = None
    expires_at: float = 0.0


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    DEAD = "dead"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class VoteChange:
    """One user's action on one slot.

    `add` casts a vote (a reaction added), `withdraw` takes the user's vote from this origin
    back (a reaction removed), `toggle` sets it or, when it already says `status`, withdraws it
    (a button click).
    """

    answer_id: int
    user: str
    origin: str
    action: Literal["add", "withdraw", "toggle"]
    status: Status | None = None
    content_id: str = ""


@dataclass(frozen=True, slots=True)
class StoredVote:
    id: int
    answer_id: int
    content_id: str
    user: str
    origin: str
    status: Status
    explanation: str | None
    category: str | None
    standing: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    user: str
    scope: str
    key: str
    old: str | None
    new: str | None


@dataclass(frozen=True, slots=True)
class VoteResult:
    duplicate: bool = False  # the Slack event was processed before; nothing changed
    vote_id: int | None = None  # the user's vote from this origin that now stands, if any
    standing: Status | None = None
    verdict: Verdict | None = None
    delivery_id: int | None = None  # set when the verdict changed and a delivery was queued


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row with everything needed to send it."""

    id: int
    answer: Answer
    content_id: str
    verdict: Verdict
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    created_at: float
    last_error: str | None = None
    provider_ref: str | None = None


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


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int
    sending: int
    dead: int
    oldest_pending_at: float | None
    last_error: str | None
