"""The bot's vocabulary: answers, votes, verdicts and deliveries, and the rules that connect
them (docs/architecture.md, "Rules"), with no Slack, SQL or HTTP in them.

Storage hands these types out and takes them in; the types of the store's own bookkeeping
(post reservations, the delivery worker's claims) live in storage/models.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Status(StrEnum):
    """What a vote says, and what a verdict can be."""

    THUMBS_UP = "thumbs_up"
    THUMBS_DOWN = "thumbs_down"
    FLAGGED = "flagged"
    REMOVED = "removed"  # verdict only: no vote stands any more


VOTE_STATUSES: tuple[Status, ...] = (Status.THUMBS_UP, Status.THUMBS_DOWN, Status.FLAGGED)
# Votes that invite a "what went wrong?" explanation.
EXPLAINABLE: frozenset[Status] = frozenset({Status.THUMBS_DOWN, Status.FLAGGED})

DEFAULT_EMOJI: Mapping[str, Status] = {
    "+1": Status.THUMBS_UP,
    "thumbsup": Status.THUMBS_UP,
    "-1": Status.THUMBS_DOWN,
    "thumbsdown": Status.THUMBS_DOWN,
    "triangular_flag_on_post": Status.FLAGGED,
}

# Where a vote came from. A user holds at most one standing vote per origin and slot:
# one per reaction emoji, and one for the buttons.
BUTTON_ORIGIN = "button"


def reaction_origin(emoji: str) -> str:
    return f"reaction:{emoji}"


def normalise_emoji(name: str) -> str:
    """`+1::skin-tone-3` and `:+1:` are both `+1`."""
    return name.strip().strip(":").split("::", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Vote:
    """A standing vote; `seq` orders votes by when they were cast."""

    seq: int
    user: str
    status: Status
    explanation: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the provider should hold for a slot."""

    status: Status
    explanation: str | None = None
    category: str | None = None


# The verdict when no vote stands: the feedback is taken back at the provider.
WITHDRAWN = Verdict(Status.REMOVED)


def verdict(standing: Iterable[Vote]) -> Verdict:
    """The newest vote that still stands decides; with none standing, the feedback is removed."""
    newest = max(standing, key=lambda v: v.seq, default=None)
    if newest is None:
        return WITHDRAWN
    return Verdict(newest.status, newest.explanation, newest.category)


def next_standing(action: str, current: Status | None, status: Status | None) -> Status | None:
    """What a user's vote from one origin says after an action on it.

    `add` casts `status` (a reaction added), `withdraw` takes the vote back (a reaction
    removed), `toggle` casts `status` or, when the vote already says it, withdraws it
    (a button click: clicking the same choice again undoes it).
    """
    if action == "withdraw":
        return None
    if action == "toggle" and current == status:
        return None
    return status


# ---------------------------------------------------------------- answers, votes, deliveries

Provider = Literal["contextual", "aquilax", "langsmith", "langfuse", "slack"]
# "slack" is no answer's target: it is where an escalation goes (ESCALATION_TARGET below).


# The id each provider's registration requires, which names the answer there.
_TARGET_COLUMN: dict[str, str] = {
    "contextual": "message_id",
    "aquilax": "request_id",
    "langsmith": "run_id",
    "langfuse": "trace_id",
}


@dataclass(frozen=True, slots=True)
class Source:
    content_id: str
    label: str
    target: int = 0  # the position of the target that knows it (a Contextual one)


@dataclass(frozen=True, slots=True)
class SlotVerdict:
    """What a slot of an answer stands at: its verdict and the votes standing there."""

    content_id: str  # '' for the answer itself
    status: Status
    standing_votes: int


@dataclass(frozen=True, slots=True)
class AnswerRef:
    """An answer as the reaction path needs it: which one, and the thread to reply in."""

    id: int
    thread_ts: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where an answer's feedback goes: one provider and its ids for the answer. An answer
    has one or more, each with its own deliveries; `position` is its place in the answer's
    list (0 for the first)."""

    provider: Provider
    agent_id: str | None = None  # Contextual: the agent that answered
    message_id: str | None = None  # Contextual: the answer's message
    request_id: str | None = None  # AquilaX: the answer's request
    org: str | None = None  # AquilaX
    group: str | None = None  # AquilaX
    run_id: str | None = None  # LangSmith: the run the answer is
    trace_id: str | None = None  # LangSmith: the run's trace; Langfuse: the answer's trace
    observation_id: str | None = None  # Langfuse: the observation within the trace
    position: int = 0

    @property
    def key_column(self) -> str:
        """The field (and column of answer_targets) that holds `key`."""
        return _TARGET_COLUMN[self.provider]

    @property
    def key(self) -> str:
        """The provider's id for the answer, for logs and messages: its message, request, run
        or trace (each provider's registration requires its own)."""
        column = _TARGET_COLUMN.get(self.provider)
        return (getattr(self, column) or "") if column is not None else ""

    def describe(self) -> str:
        """`langfuse trace_id=…`: the target as replies, logs and listings name it."""
        if self.position == ESCALATION:
            return "slack escalation"
        return f"{self.provider} {self.key_column}={self.key}"

    def ids(self) -> tuple[str | None, ...]:
        """Its provider and ids, in field order (the columns of answer_targets, too)."""
        return (
            self.provider,
            self.agent_id,
            self.message_id,
            self.request_id,
            self.org,
            self.group,
            self.run_id,
            self.trace_id,
            self.observation_id,
        )

    def same_ids(self, other: Target) -> bool:
        """The same provider and ids, wherever each sits in its answer's list."""
        return self.ids() == other.ids()


# An escalation (bot/escalation/) is a delivery like a verdict, through the same outbox, to
# the triage channel rather than to a provider: its rows name this target position, which no
# answer's target has, and are sent by the "slack" sender.
ESCALATION = -1
ESCALATION_TARGET = Target("slack", position=ESCALATION)
# The votes that bring an answer to its triage channel; any later vote or explanation on an
# answer brought there updates its message.
ESCALATING: frozenset[Status] = EXPLAINABLE


@dataclass(frozen=True, slots=True)
class Triage:
    """Where a channel's 👎 and 🚩 are escalated (/feedback escalate), and whether the
    message names who voted. Stored as the `escalate` setting: `setting()`, or "off"."""

    channel: str
    anonymous: bool = False

    def setting(self) -> dict[str, object]:
        return {"channel": self.channel, "anonymous": self.anonymous}

    @classmethod
    def from_setting(cls, value: object) -> Triage | None:
        """The stored setting as a Triage; None for "off", nothing, or a shape it never had."""
        if isinstance(value, dict) and isinstance(value.get("channel"), str):
            return cls(value["channel"], bool(value.get("anonymous")))
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """A Slack message holding an AI answer, and the provider targets it maps to."""

    channel: str
    ts: str
    targets: tuple[Target, ...]
    sources: tuple[Source, ...] = ()
    posted_by_bot: bool = False  # the bot posted the message, with its controls
    thread_ts: str | None = None  # the thread the answer is in, if any
    prompt_ts: str | None = None  # the bot's "Was this helpful?" reply under it, if any
    id: int = 0  # assigned by the store

    @property
    def first(self) -> Target:
        """The first target: the one a bot-posted answer is known by (post reservations)."""
        return self.targets[0]

    @property
    def providers(self) -> str:
        """`contextual+langfuse`: the providers of its targets, for listings."""
        return "+".join(t.provider for t in self.targets)

    def source(self, content_id: str) -> Source | None:
        return next((s for s in self.sources if s.content_id == content_id), None)

    def same_mapping(self, other: Answer) -> bool:
        return (
            len(self.targets) == len(other.targets)
            and all(a.same_ids(b) for a, b in zip(self.targets, other.targets, strict=True))
            and self.sources == other.sources
        )


class Registration(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    # Message metadata updated before any vote: the old mapping removed, the new one stored.
    REPLACED = "replaced"
    # Message metadata on a message whose answer an admin removed: it stays removed.
    ANSWER_REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a mapping came from when it registered itself through Slack message metadata."""

    via: Literal["metadata", "scan", "lookup"]  # the event, `answers scan`, the late lookup
    app_id: str | None  # the app that posted the message
    # When Slack says the metadata was posted or last updated (the event's event_ts): an
    # update older than the mapping's own never replaces it (Slack does not keep order).
    metadata_ts: float | None = None


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    DEAD = "dead"
    SUPERSEDED = "superseded"


# A slot is an answer, or an answer and one of its sources: `content_id` names the source,
# and this value stands for the answer itself (the database column's default).
WHOLE_ANSWER = ""


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
    content_id: str = WHOLE_ANSWER


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
    is_standing: bool  # not withdrawn


@dataclass(frozen=True, slots=True)
class VoteResult:
    duplicate: bool = False  # the Slack event was processed before; nothing changed
    vote_id: int | None = None  # the user's vote from this origin that now stands, if any
    standing: Status | None = None  # what the user's vote from this origin says now
    verdict: Verdict | None = None
    delivery_id: int | None = None  # set when the verdict changed and a delivery was queued
    held: bool = False  # no answer there yet: kept for the late lookup (bot/answers/late_lookup.py)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An outbox row with everything needed to send it: one verdict for one slot of an
    answer, to one of its targets."""

    id: int
    answer: Answer
    target: Target
    content_id: str
    verdict: Verdict
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    created_at: float
    last_error: str | None = None
    provider_ref: str | None = None
