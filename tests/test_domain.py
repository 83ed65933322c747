"""The vote → verdict rules as pure functions."""

from __future__ import annotations

import random

import pytest

from bot.delivery.worker import Backoff
from bot.domain import (
    WITHDRAWN,
    Answer,
    Source,
    Status,
    Target,
    Verdict,
    Vote,
    next_standing,
    normalise_emoji,
    verdict,
)
from bot.support.logs import MASK, Redactor

UP, DOWN, FLAG = Status.THUMBS_UP, Status.THUMBS_DOWN, Status.FLAGGED


def test_no_vote_standing_means_removed() -> None:
    assert verdict([]) == WITHDRAWN


def test_newest_standing_vote_decides_regardless_of_input_order() -> None:
    votes = [Vote(3, "B", DOWN), Vote(1, "A", UP), Vote(2, "C", FLAG, "wrong", "accuracy")]
    assert verdict(votes) == Verdict(DOWN)
    assert verdict(votes[1:]) == Verdict(FLAG, "wrong", "accuracy")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("+1", "+1"),
        ("+1::skin-tone-3", "+1"),
        (":thumbsup:", "thumbsup"),
        ("Triangular_Flag_On_Post", "triangular_flag_on_post"),
        ("-1::skin-tone-6", "-1"),
    ],
)
def test_normalise_emoji(name: str, expected: str) -> None:
    assert normalise_emoji(name) == expected


@pytest.mark.parametrize(
    ("action", "current", "clicked", "after"),
    [
        ("add", None, UP, UP),
        ("add", DOWN, UP, UP),
        ("withdraw", UP, None, None),
        ("withdraw", None, None, None),
        ("toggle", None, UP, UP),
        ("toggle", UP, UP, None),  # the same choice again withdraws
        ("toggle", UP, DOWN, DOWN),  # another choice switches
    ],
)
def test_next_standing(action: str, current: Status, clicked: Status, after: Status) -> None:
    assert next_standing(action, current, clicked) == after


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    b = Backoff(base=1.0, factor=2.0, cap=8.0)
    rng = random.Random(7)
    delays = [b.delay(n, None, rng) for n in range(1, 7)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered
    assert b.delay(1, 42.0, rng) == 42.0
    assert b.delay(1, 10**6, rng) == b.retry_after_cap


def test_redactor_masks_known_values_and_token_shapes() -> None:
    r = Redactor(["sk-very-secret-value-123"])
    text = r(
        "key sk-very-secret-value-123 and xoxb-1-2-abc and xapp-1-A-2-def and "
        "Authorization: Bearer abc.def and X-AX-KEY: pat123"
    )
    assert "sk-very" not in text and "xoxb-1" not in text and "xapp-1" not in text
    assert "abc.def" not in text and "pat123" not in text
    assert text.count(MASK) == 5


# ------------------------------------------------------------------ targets

CONTEXTUAL = Target(provider="contextual", agent_id="a", message_id="m", position=0)
LANGFUSE = Target(provider="langfuse", trace_id="t", position=1)


def test_an_answer_and_its_targets_name_themselves() -> None:
    answer = Answer(
        channel="C0AAAAAAA",
        ts="1.0",
        targets=(CONTEXTUAL, LANGFUSE),
        sources=(Source("s1", "Doc", target=0),),
    )
    assert answer.first == CONTEXTUAL
    assert answer.providers == "contextual+langfuse"
    assert LANGFUSE.describe() == "langfuse trace_id=t"


def test_the_same_mapping_is_the_same_targets_in_the_same_order_and_sources() -> None:
    one = Answer(channel="C0AAAAAAA", ts="1.0", targets=(CONTEXTUAL, LANGFUSE))
    assert one.same_mapping(Answer(channel="C0BBBBBBB", ts="2.0", targets=(CONTEXTUAL, LANGFUSE)))
    swapped = (LANGFUSE, CONTEXTUAL)
    assert not one.same_mapping(Answer(channel="C0AAAAAAA", ts="1.0", targets=swapped))
    fewer = Answer(channel="C0AAAAAAA", ts="1.0", targets=(CONTEXTUAL,))
    assert not one.same_mapping(fewer)
    # Where a target sits is not one of its ids.
    assert CONTEXTUAL.same_ids(
        Target(provider="contextual", agent_id="a", message_id="m", position=3)
    )
