"""The rules of the store that both backends keep, written once: what a vote supersedes,
when settling a slot queues a delivery, what a worker's turn does with the sends it owns,
what a row sent back to the queue becomes, whose outcome of a send counts, in what order held
reactions apply, when metadata is newer than a mapping's, what a vote does to its answer's
escalation, and what the digest's schedule makes due.

Plain functions over the values the backends read. They do no I/O: the SQL that reads their
inputs and writes what they decide, and the locks that keep those reads true until the
write, are the backends' own (storage/sqlite/ and storage/postgres/).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from bot.domain import (
    ESCALATING,
    WITHDRAWN,
    DeliveryState,
    Provenance,
    Status,
    Triage,
    Verdict,
    VoteChange,
    next_standing,
)
from storage.models import Finished

# ---------------------------------------------------------------------------------- votes


class VoteStep(NamedTuple):
    """What one action does to a user's standing vote from one origin on one slot. (A
    NamedTuple, as Settlement: built on every vote, and a frozen dataclass costs ~2 µs more.)"""

    standing: Status | None  # what that vote says afterwards
    changed: bool  # False: nothing is written, and the slot is not settled again
    kept: int | None = None  # unchanged: the vote that still stands, if any
    withdraw: int | None = None  # the standing vote the new one supersedes (kept, withdrawn)
    cast: Status | None = None  # the vote to cast, if any
    cast_at: float = 0.0  # when the vote cast counts from


def vote_step(
    change: VoteChange, current: tuple[int, Status] | None, now: float, came_at: float | None
) -> VoteStep:
    """Apply `change` to the user's vote standing from its origin (`current`: its id and
    status). A vote that would say what the standing one says changes nothing; otherwise the
    standing one is withdrawn (never deleted: votes are history) and the new one, if the
    action leaves one, is cast. A reaction held for the late lookup counts from when it came
    (`came_at`), anything else from `now`."""
    status = current[1] if current is not None else None
    target = next_standing(change.action, status, change.status)
    if target == status:
        return VoteStep(status, changed=False, kept=current[0] if current is not None else None)
    return VoteStep(
        target,
        changed=True,
        withdraw=current[0] if current is not None else None,
        cast=target,
        cast_at=now if came_at is None else came_at,
    )


# --------------------------------------------------------------------------------- settling

# A delivery row in one of these states says what is at the provider, or is about to be (one
# in flight may land any moment).
REACHED_PROVIDER: frozenset[DeliveryState] = frozenset(
    {DeliveryState.SENDING, DeliveryState.DELIVERED, DeliveryState.SKIPPED}
)

# One recent delivery row of a slot, as settling reads it: its id, state and verdict.
SlotRow = tuple[int, DeliveryState, Verdict]


class Settlement(NamedTuple):
    """What settling a slot writes to its outbox."""

    supersede: tuple[int, ...]  # pending rows that will not be sent
    queue: bool  # a new pending row is queued for the verdict


def settle(new: Verdict, recent: Sequence[SlotRow]) -> Settlement:
    """The outbox rules for one slot whose votes changed, `new` being its verdict now (the
    newest standing vote's, or removed: bot.domain.verdict), `recent` its rows pending, in
    flight, delivered or skipped, newest first:

    - what is at the provider is the verdict of the newest row that reached it
      (REACHED_PROVIDER), or removed when there is none;
    - pending rows are superseded: they have not left yet, and the provider only ever needs
      the newest verdict; except that a newest pending row already carrying `new` stays
      queued rather than being replaced by a copy (unless `new` is at the provider already);
    - a new row is queued only when `new` differs from what is at the provider and no
      pending row already carries it;
    - rows in flight, delivered, skipped or dead are left alone: a send in flight finishes
      first, and a claim takes the new row only after it.

    Settling leaves at most one row pending and a slot has at most one in flight, so the
    newest three rows are enough to read."""
    # One pass over `recent`, not two: this runs on every vote, on the database thread.
    pending: list[tuple[int, Verdict]] = []
    at_provider: Verdict | None = None
    for row_id, state, row_verdict in recent:
        if state is _PENDING:
            pending.append((row_id, row_verdict))
        elif at_provider is None and state in REACHED_PROVIDER:
            at_provider = row_verdict
    if at_provider is None:
        at_provider = WITHDRAWN
    keep = None
    if pending and pending[0][1] == new and new != at_provider:
        keep = pending[0][0]
    supersede = tuple(row_id for row_id, _ in pending if row_id != keep)
    return Settlement(supersede, queue=keep is None and new != at_provider)


_PENDING = DeliveryState.PENDING

# ------------------------------------------------------------------------------ the outbox

# Why a row went back to the queue, or was dropped (its last_error).
CUT_OFF = "cut off mid-send (its sender stopped)"
NEVER_SENT = "claimed, but the claim never reached its sender (a database failure)"
REMOVED_WHILE_SENT = "the answer was removed while it was sent"
REMOVED_BEFORE_RETRY = "the answer was removed: not retried"


def lease_end(now: float, lease: float) -> float:
    """When a lease taken or renewed at `now` expires."""
    return now + lease


def renewal_due_before(now: float, lease: float) -> float:
    """A lease ending before this is renewed this turn: once a third of it has run, rather
    than on every turn."""
    return now + lease * 2 / 3


@dataclass(frozen=True, slots=True)
class OwnedSends:
    """What a worker's turn does with the rows in flight that it owns."""

    renew: list[int]  # sent by it now: their leases are renewed (once due), in id order
    orphans: list[int]  # claimed for it, yet never got: back to the queue, in id order


def owned_sends(
    mine: Collection[int], in_flight: Collection[int], finished: Iterable[int]
) -> OwnedSends:
    """`mine`: the rows in flight claimed by the worker; `in_flight`: the sends it says it
    has under way (claimed, no outcome yet); `finished`: those it reports done this turn.
    Only the sends under way are renewed. Any other row of its in flight is one it never
    got: a turn whose transaction committed while the worker was told it failed (a
    connection lost at COMMIT). Nothing sends it, so it goes back to the queue at once,
    rather than being renewed for as long as the worker lives."""
    mine, under_way = set(mine), set(in_flight)
    return OwnedSends(sorted(mine & under_way), sorted(mine - under_way - set(finished)))


class QueueFacts(NamedTuple):
    """What decides the fate of a row going back to the queue."""

    answer_removed: bool  # its answer was removed meanwhile
    newer_verdict: bool  # its slot has a newer row, not superseded


def requeue_state(facts: QueueFacts) -> DeliveryState:
    """What a row that goes back to the queue (a send to be retried, cut off, never got, or
    dead and retried) becomes: skipped when its answer was removed (nothing claims a removed
    answer's rows: it would wait for good); superseded when its slot has a newer verdict
    (an older verdict never lands after a newer one); otherwise pending again, to be sent at
    least once."""
    if facts.answer_removed:
        return DeliveryState.SKIPPED
    if facts.newer_verdict:
        return DeliveryState.SUPERSEDED
    return DeliveryState.PENDING


class Outcome(NamedTuple):
    """What is recorded of one finished send: the row's state and last_error."""

    state: DeliveryState
    error: str | None


def requeue_outcome(facts: QueueFacts, why: str | None) -> Outcome:
    """What a row sent back to the queue becomes (requeue_state), and the reason to record:
    `why`, unless it is skipped for its removed answer."""
    state = requeue_state(facts)
    return Outcome(state, REMOVED_WHILE_SENT if state is DeliveryState.SKIPPED else why)


def goes_back(finished: Finished) -> bool:
    """The send is to be tried again: what its row becomes depends on its QueueFacts."""
    return finished.state is DeliveryState.PENDING


def outcome(finished: Finished, facts: QueueFacts | None) -> Outcome:
    """What to record of a send the worker finished; `facts` are needed (and read) only for
    one that goes back (goes_back). A failed send of a removed answer is not sent again."""
    if not goes_back(finished):
        return Outcome(finished.state, finished.error)
    if facts is None:
        raise ValueError(f"delivery {finished.delivery_id} goes back: its QueueFacts are needed")
    return requeue_outcome(facts, finished.error)


# A delivery row's outcome columns as stored: state, last_error and provider_ref.
StoredOutcome = tuple[str, str | None, str | None]


def already_recorded(stored: StoredOutcome | None, recorded: Outcome, ref: str | None) -> bool:
    """The row has this outcome already (it is no longer in flight): an outcome offered
    again because the turn that recorded it committed while its caller was told it failed."""
    return stored is not None and stored == (recorded.state.value, recorded.error, ref)


def tally(results: Iterable[tuple[int, Outcome, bool]]) -> tuple[set[int], set[int]]:
    """The superseded and the lost among the owner's finished sends, each given as (its row,
    what was to be recorded, whether it counts). An outcome counts when the owner wrote it
    (the row was still in flight and its own) or the row has it already (`already_recorded`). One
    that does not is lost: the lease was taken over (the owner stalled past it), and the
    row is its new owner's, whose outcome counts instead."""
    superseded: set[int] = set()
    lost: set[int] = set()
    for delivery_id, recorded, counts in results:
        if not counts:
            lost.add(delivery_id)
        elif recorded.state is DeliveryState.SUPERSEDED:
            superseded.add(delivery_id)
    return superseded, lost


# ------------------------------------------------------------------------- held reactions


def arrival_order(
    held: Iterable[tuple[int, VoteChange, float]],
) -> list[tuple[VoteChange, float]]:
    """Held reactions, each (its row id, the change, when it came), in the order they apply:
    the order they were held in (row ids), which is the order Slack delivered them, not that
    of their clocks (replicas' clocks differ). Each is applied as the vote it would have
    been had its answer been known, counting from when it came."""
    return [(change, came_at) for _, change, came_at in sorted(held, key=lambda h: h[0])]


# --------------------------------------------------------------------------------- answers


def provenance_newer(provenance: Provenance | None, than: float | None) -> bool:
    """The metadata `provenance` comes from is newer than `than` (when the stored mapping's
    metadata was posted or updated): an update that arrives late must not undo a newer one.
    Where either time is unknown, nothing says the update is older, and it counts as newer."""
    if provenance is None or provenance.metadata_ts is None or than is None:
        return True
    return provenance.metadata_ts > than


# ------------------------------------------------------------------------------ escalations


class EscalationStep(StrEnum):
    NONE = "none"  # nothing to show anyone
    OPEN = "open"  # escalate the answer, if its channel's escalations go somewhere
    REOPEN = "reopen"  # a new 👎 or 🚩 on a resolved escalation: it is open again
    UPDATE = "update"  # the message shows the votes as they are now


def escalation_step(
    cast: Status | None, resolved: bool | None, *, explained: bool = False
) -> EscalationStep:
    """What a change of the votes on an answer itself (a vote `cast`, or an explanation added
    to a standing one of that status; None: withdrawn) does to its escalation: `resolved` is
    None when it has none. Only a 👎 or 🚩 brings an answer to its triage channel; once there,
    every later change updates the one message. An explanation added to a standing vote
    (`explained`) is no new vote: it opens an escalation, but does not reopen one."""
    raises = cast in ESCALATING
    if resolved is None:
        return EscalationStep.OPEN if raises else EscalationStep.NONE
    if raises and resolved and not explained:
        return EscalationStep.REOPEN
    return EscalationStep.UPDATE


# The setting that says where a channel's escalations go (bot/config/channels.py), the scope
# of the workspace's settings, and how many of the newest 👎 and 🚩 an escalation names.
ESCALATE_SETTING = "escalate"
WORKSPACE_SCOPE = "*"
BALLOTS = 10
# An escalation row whose send may have posted: sent before and not recorded as delivered,
# or the one in flight on its second try or later (the slot has one row in flight at most).
ESCALATION_TRIED = "attempts > 0 AND state != 'delivered' AND (state != 'sending' OR attempts > 1)"


def triage_setting(values: Sequence[tuple[str, Any]], channel: str) -> Triage | None:
    """Where the `escalate` setting sends a channel's escalations: the channel's own value
    over the workspace's ("*"); "off" in the channel turns the workspace's off there."""
    own = {scope: value for scope, value in values}
    value = own.get(channel, own.get("*"))
    return Triage.from_setting(value)
