"""The types of the store's own bookkeeping: post reservations, the delivery worker's claims
and outcomes, outbox counts, audit rows, held reactions. No Slack, no HTTP.

The vocabulary the store hands out and takes in (Answer, Delivery, VoteChange, ...) lives in
bot/domain.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain import Answer, Delivery, DeliveryState, Status, Triage


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


# ------------------------------------------------------------------ escalations and digests


@dataclass(frozen=True, slots=True)
class Ballot:
    """One standing vote on an answer, as an escalation shows it."""

    user: str
    status: Status
    explanation: str | None
    category: str | None
    cast_at: float


@dataclass(frozen=True, slots=True)
class EscalationView:
    """What an answer's escalation message shows, read when it is sent (bot/escalation/)."""

    triage: Triage | None  # where escalations of the answer's channel go now; None: off
    message: str | None  # "channel:ts" of the triage message, once one was posted
    maybe_posted: bool  # a send was cut off without its outcome: it may have posted
    opened_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    counts: Mapping[Status, int]  # the standing votes on the answer itself
    ballots: tuple[Ballot, ...]  # its newest standing 👎 and 🚩 (at most ten), newest first


class Resolution(StrEnum):
    RESOLVED = "resolved"  # recorded now; the message is updated through the outbox
    ALREADY = "already"  # someone resolved it before
    NOT_ESCALATED = "not_escalated"  # no such escalation (a removed answer, a bad button)


@dataclass(frozen=True, slots=True)
class EscalationState:
    """An answer's escalation, for `answers show`."""

    opened_at: float
    resolved_by: str | None
    resolved_at: float | None
    message: str | None  # "channel:ts" of the triage message, once posted


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One period of one scope's digest (a channel, or "*" for the workspace): due, or
    claimed by one process to post (bot/digest/)."""

    scope: str
    period: str  # daily, weekly, or now (/feedback digest now)
    period_start: float
    period_end: float
    channel: str  # where it is posted
    id: int = 0
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One channel and agent over a period: answers voted on, votes cast, and of the
    answers' verdicts (each answer's newest standing vote, cast in the period) how many
    there are and how many are thumbs_up."""

    channel: str
    agent: str
    answers: int
    votes: int
    verdicts: int
    approving: int


@dataclass(frozen=True, slots=True)
class DayFigures:
    channel: str
    day: int  # days since the period's start (negative: the previous period)
    verdicts: int
    approving: int


@dataclass(frozen=True, slots=True)
class Downvote:
    """A standing 👎 or 🚩 on an answer, with what the voter said."""

    channel: str
    ts: str
    user: str
    status: Status
    category: str | None
    explanation: str | None
    cast_at: float


@dataclass(frozen=True, slots=True)
class SourceFigures:
    label: str
    up: int
    down: int  # 👎 and 🚩


@dataclass(frozen=True, slots=True)
class ResolvedEscalation:
    channel: str
    ts: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """What a digest and the App Home show for a period and scope (storage's
    `period_figures`); the previous period's verdicts per (channel, agent) for the change."""

    groups: tuple[GroupFigures, ...]
    previous: Mapping[tuple[str, str], tuple[int, int]]  # (verdicts, approving)
    days: tuple[DayFigures, ...]
    categories: tuple[tuple[str, int], ...]  # the top 👎/🚩 categories, most first
    explained: tuple[Downvote, ...]  # the newest explained 👎/🚩
    recent: tuple[Downvote, ...]  # the newest 👎/🚩, explained or not
    sources: tuple[SourceFigures, ...]  # the lowest-rated sources
    open_escalations: int
    resolved: tuple[ResolvedEscalation, ...]
    dead: int


@dataclass(frozen=True, slots=True)
class DigestRecord:
    """A digest run as `deliveries` lists it."""

    run: DigestRun
    state: DeliveryState
    last_error: str | None
    updated_at: float
