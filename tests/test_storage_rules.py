"""The store's rules (storage/rules.py) as pure functions, without a database: what a vote
supersedes, when settling queues a delivery, what a worker's turn does with its sends, what a
row sent back to the queue becomes, whose outcome counts, in what order held reactions
apply, and when metadata is newer."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import WITHDRAWN, DeliveryState, Provenance, Status, Verdict, VoteChange
from storage import rules
from storage.models import Finished
from storage.rules import (
    CUT_OFF,
    REACHED_PROVIDER,
    REMOVED_WHILE_SENT,
    Outcome,
    QueueFacts,
    SlotRow,
)

UP, DOWN, FLAG = Status.THUMBS_UP, Status.THUMBS_DOWN, Status.FLAGGED
PENDING, SENDING, DELIVERED = DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.DELIVERED
SKIPPED, DEAD, SUPERSEDED = DeliveryState.SKIPPED, DeliveryState.DEAD, DeliveryState.SUPERSEDED


def _change(
    action: Literal["add", "withdraw", "toggle"], status: Status | None = None
) -> VoteChange:
    return VoteChange(7, "U1", "button", action, status)


# ------------------------------------------------------------------------------------ votes


def test_a_first_vote_is_cast_and_supersedes_nothing() -> None:
    step = rules.vote_step(_change("add", UP), None, now=100.0, came_at=None)
    assert step.changed and step.standing is UP and step.cast is UP
    assert step.withdraw is None and step.cast_at == 100.0


def test_a_vote_saying_what_stands_changes_nothing_and_keeps_the_standing_one() -> None:
    step = rules.vote_step(_change("add", UP), (41, UP), now=100.0, came_at=None)
    assert not step.changed
    assert (step.kept, step.standing, step.withdraw, step.cast) == (41, UP, None, None)


def test_a_different_vote_withdraws_the_standing_one_and_casts_the_new() -> None:
    step = rules.vote_step(_change("add", DOWN), (41, UP), now=100.0, came_at=None)
    assert step.changed and step.withdraw == 41 and step.cast is DOWN and step.standing is DOWN


def test_toggling_the_standing_choice_withdraws_it_and_casts_nothing() -> None:
    step = rules.vote_step(_change("toggle", UP), (41, UP), now=100.0, came_at=None)
    assert step.changed and step.withdraw == 41
    assert step.cast is None and step.standing is None


def test_withdrawing_where_no_vote_stands_changes_nothing() -> None:
    step = rules.vote_step(_change("withdraw"), None, now=100.0, came_at=None)
    assert not step.changed and step.kept is None and step.standing is None


def test_a_held_reaction_counts_from_when_it_came() -> None:
    step = rules.vote_step(_change("add", FLAG), None, now=100.0, came_at=42.5)
    assert step.cast_at == 42.5


# --------------------------------------------------------------------------------- settling

V_UP, V_DOWN = Verdict(UP), Verdict(DOWN)


def test_a_verdict_the_provider_does_not_hold_is_queued() -> None:
    assert rules.settle(V_UP, []) == rules.Settlement((), queue=True)
    assert rules.settle(V_UP, [(3, DELIVERED, V_DOWN)]).queue


def test_nothing_is_queued_for_what_is_at_the_provider() -> None:
    # No row at all: nothing is at the provider, which is the verdict `removed`.
    assert rules.settle(WITHDRAWN, []) == rules.Settlement((), queue=False)
    assert rules.settle(V_UP, [(3, DELIVERED, V_UP)]) == rules.Settlement((), queue=False)
    assert rules.settle(V_UP, [(3, SKIPPED, V_UP)]) == rules.Settlement((), queue=False)


def test_a_send_in_flight_counts_as_at_the_provider() -> None:
    recent: list[SlotRow] = [(5, SENDING, V_UP), (3, DELIVERED, V_DOWN)]
    assert not rules.settle(V_UP, recent).queue
    assert rules.settle(V_DOWN, recent).queue  # the send in flight may land: DOWN must follow


def test_a_pending_row_with_another_verdict_is_superseded_by_the_new_one() -> None:
    settlement = rules.settle(V_DOWN, [(6, PENDING, V_UP), (3, DELIVERED, V_UP)])
    assert settlement == rules.Settlement((6,), queue=True)
    settlement = rules.settle(V_DOWN, [(6, PENDING, V_UP)])
    assert settlement == rules.Settlement((6,), queue=True)


def test_a_pending_row_carrying_the_verdict_stays_queued_instead_of_a_copy() -> None:
    settlement = rules.settle(V_UP, [(6, PENDING, V_UP), (3, DELIVERED, V_DOWN)])
    assert settlement == rules.Settlement((), queue=False)


def test_a_pending_row_is_superseded_when_the_verdict_is_at_the_provider_already() -> None:
    # UP, then DOWN (pending), then UP again: UP is still at the provider.
    settlement = rules.settle(V_UP, [(6, PENDING, V_DOWN), (3, DELIVERED, V_UP)])
    assert settlement == rules.Settlement((6,), queue=False)


def test_dead_and_superseded_rows_say_nothing_of_what_is_at_the_provider() -> None:
    recent: list[SlotRow] = [(6, DEAD, V_UP), (5, SUPERSEDED, V_UP)]
    assert rules.settle(V_UP, recent) == rules.Settlement((), queue=True)


def test_the_explanation_is_part_of_the_verdict() -> None:
    explained = Verdict(DOWN, "wrong", "accuracy")
    assert rules.settle(explained, [(3, DELIVERED, V_DOWN)]).queue


_verdicts = st.sampled_from([WITHDRAWN, V_UP, V_DOWN, Verdict(DOWN, "why", "accuracy")])
_states = st.sampled_from([PENDING, SENDING, DELIVERED, SKIPPED, DEAD, SUPERSEDED])


@given(
    new=_verdicts,
    rows=st.lists(st.tuples(_states, _verdicts), max_size=6),
)
def test_settling_leaves_the_provider_on_its_way_to_the_new_verdict(
    new: Verdict, rows: list[tuple[DeliveryState, Verdict]]
) -> None:
    recent: list[SlotRow] = [(100 - i, state, v) for i, (state, v) in enumerate(rows)]
    settlement = rules.settle(new, recent)
    pending = [(i, v) for i, state, v in recent if state is PENDING]
    # Only pending rows are ever superseded, each once.
    assert set(settlement.supersede) <= {i for i, _ in pending}
    assert len(set(settlement.supersede)) == len(settlement.supersede)
    left = [(i, v) for i, v in pending if i not in settlement.supersede]
    # At most one row waits afterwards, and it carries the new verdict.
    waiting = [v for _, v in left] + ([new] if settlement.queue else [])
    assert waiting in ([], [new])
    # Nothing waits only when the new verdict is at the provider, or on its way, already.
    at_provider = next((v for _, s, v in recent if s in REACHED_PROVIDER), WITHDRAWN)
    assert (waiting == []) == (at_provider == new)


# ------------------------------------------------------------------------------ the outbox


def test_the_lease_is_renewed_once_a_third_of_it_has_run() -> None:
    assert rules.lease_end(1000.0, 30.0) == 1030.0
    assert rules.renewal_due_before(1000.0, 30.0) == 1020.0


def test_a_turn_renews_the_sends_under_way_and_sends_back_those_never_got() -> None:
    owned = rules.owned_sends(mine={5, 3, 9, 4}, in_flight={9, 3, 11}, finished=[4])
    # 11: under way by the worker's count, but no longer its row in flight: not renewed.
    assert owned == rules.OwnedSends(renew=[3, 9], orphans=[5])


@given(
    mine=st.sets(st.integers(1, 20)),
    in_flight=st.sets(st.integers(1, 20)),
    finished=st.sets(st.integers(1, 20)),
)
def test_a_turn_touches_only_its_own_rows_and_never_renews_and_requeues_one(
    mine: set[int], in_flight: set[int], finished: set[int]
) -> None:
    owned = rules.owned_sends(mine, in_flight, finished)
    assert set(owned.renew) | set(owned.orphans) <= mine
    assert not set(owned.renew) & set(owned.orphans)
    assert not set(owned.orphans) & (in_flight | finished)
    assert owned.renew == sorted(owned.renew) and owned.orphans == sorted(owned.orphans)
    # Every row of ours is renewed, sent back, or finished this turn.
    assert mine <= set(owned.renew) | set(owned.orphans) | finished


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        (QueueFacts(answer_removed=False, newer_verdict=False), PENDING),
        (QueueFacts(answer_removed=False, newer_verdict=True), SUPERSEDED),
        (QueueFacts(answer_removed=True, newer_verdict=False), SKIPPED),
        # A removed answer's row is skipped, whatever its slot holds: nothing would claim it.
        (QueueFacts(answer_removed=True, newer_verdict=True), SKIPPED),
    ],
)
def test_what_a_row_sent_back_to_the_queue_becomes(facts: QueueFacts, state: DeliveryState) -> None:
    assert rules.requeue_state(facts) is state


def test_a_row_sent_back_says_why_unless_its_answer_was_removed() -> None:
    assert rules.requeue_outcome(QueueFacts(False, False), CUT_OFF) == Outcome(PENDING, CUT_OFF)
    assert rules.requeue_outcome(QueueFacts(False, True), CUT_OFF) == Outcome(SUPERSEDED, CUT_OFF)
    assert rules.requeue_outcome(QueueFacts(True, False), CUT_OFF) == Outcome(
        SKIPPED, REMOVED_WHILE_SENT
    )


def test_a_finished_send_is_recorded_as_reported_when_it_does_not_go_back() -> None:
    for state in (DELIVERED, SKIPPED, DEAD):
        finished = Finished(8, state, error="e", ref="r")
        assert not rules.goes_back(finished)
        assert rules.outcome(finished, None) == Outcome(state, "e")


def test_a_failed_send_goes_back_unless_overtaken() -> None:
    failed = Finished(8, PENDING, error="HTTP 503", retry_at=50.0)
    assert rules.goes_back(failed)
    assert rules.outcome(failed, QueueFacts(False, False)) == Outcome(PENDING, "HTTP 503")
    assert rules.outcome(failed, QueueFacts(False, True)) == Outcome(SUPERSEDED, "HTTP 503")
    assert rules.outcome(failed, QueueFacts(True, False)) == Outcome(SKIPPED, REMOVED_WHILE_SENT)
    with pytest.raises(ValueError, match="QueueFacts"):
        rules.outcome(failed, None)


def test_an_outcome_offered_again_is_already_recorded_only_if_every_column_matches() -> None:
    recorded = Outcome(DELIVERED, None)
    assert rules.already_recorded(("delivered", None, "ref-1"), recorded, "ref-1")
    assert not rules.already_recorded(("delivered", None, "ref-2"), recorded, "ref-1")
    assert not rules.already_recorded(("sending", None, "ref-1"), recorded, "ref-1")
    assert not rules.already_recorded(("delivered", "late", "ref-1"), recorded, "ref-1")
    assert not rules.already_recorded(None, recorded, "ref-1")


def test_lost_outcomes_do_not_count_as_superseded() -> None:
    superseded, lost = rules.tally(
        [
            (1, Outcome(SUPERSEDED, None), True),
            (2, Outcome(SUPERSEDED, None), False),  # taken over: the new owner decides
            (3, Outcome(DELIVERED, None), False),
            (4, Outcome(PENDING, "e"), True),
        ]
    )
    assert (superseded, lost) == ({1}, {2, 3})


# ------------------------------------------------------------------------- held reactions


def test_held_reactions_apply_in_the_order_they_were_held_not_by_their_clocks() -> None:
    up, down, gone = _change("add", UP), _change("add", DOWN), _change("withdraw")
    # A replica's clock behind another's: the row ids, not received_at, give the order.
    taken = [(12, gone, 10.0), (3, up, 30.0), (7, down, 20.0)]
    assert rules.arrival_order(taken) == [(up, 30.0), (down, 20.0), (gone, 10.0)]
    assert rules.arrival_order([]) == []


# --------------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("provenance", "than", "newer"),
    [
        (Provenance("metadata", "A1", 20.0), 10.0, True),
        (Provenance("metadata", "A1", 10.0), 20.0, False),
        (Provenance("metadata", "A1", 10.0), 10.0, False),  # the same update is not newer
        (Provenance("metadata", "A1", None), 20.0, True),
        (Provenance("metadata", "A1", 10.0), None, True),
        (None, 20.0, True),
    ],
)
def test_metadata_is_newer_unless_both_times_say_otherwise(
    provenance: Provenance | None, than: float | None, newer: bool
) -> None:
    assert rules.provenance_newer(provenance, than) is newer


# ------------------------------------------------------------------------------ escalations


def test_only_a_thumbs_down_or_flag_escalates_and_only_a_new_one_reopens() -> None:
    from storage.rules import EscalationStep, escalation_step

    assert escalation_step(Status.THUMBS_UP, None) is EscalationStep.NONE
    assert escalation_step(None, None) is EscalationStep.NONE
    assert escalation_step(Status.THUMBS_DOWN, None) is EscalationStep.OPEN
    assert escalation_step(Status.FLAGGED, None, explained=True) is EscalationStep.OPEN
    assert escalation_step(Status.THUMBS_UP, False) is EscalationStep.UPDATE
    assert escalation_step(None, True) is EscalationStep.UPDATE
    assert escalation_step(Status.FLAGGED, True) is EscalationStep.REOPEN
    # An explanation added to an old 👎 is no new vote: a resolved escalation stays resolved.
    assert escalation_step(Status.THUMBS_DOWN, True, explained=True) is EscalationStep.UPDATE


def test_the_excerpt_shows_slacks_mrkdwn_as_it_is_and_cuts_no_link_in_half() -> None:
    from bot.escalation.message import EXCERPT_CHARS, excerpt

    assert (
        excerpt("a &lt;b&gt; <@U1> <https://x.test|docs>")
        == "> a &lt;b&gt; <@U1> <https://x.test|docs>"
    )
    long = "x" * (EXCERPT_CHARS - 10) + " <https://example.test/very/long/link|label>"
    shown = excerpt(long)
    assert shown.endswith("…") and "<https" not in shown
