"""Votes and verdicts: the rules of DESIGN.md "Semantics", with no Slack, SQL or HTTP in them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


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


REMOVED = Verdict(Status.REMOVED)


def verdict(standing: Iterable[Vote]) -> Verdict:
    """The newest vote that still stands decides; with none standing, the feedback is removed."""
    newest = max(standing, key=lambda v: v.seq, default=None)
    if newest is None:
        return REMOVED
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
