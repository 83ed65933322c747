"""The outbox's guarantees, each pinned by a test that fails when it is broken: leases
(renewed once a third has run, only for the sends really in flight, cut at shutdown),
claims per slot, owner fencing, what is retried, and a turn that committed although the
database said it failed. On both backends: a real store, the real worker and provider
client, and the stand-in provider over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.delivery.worker import Backoff, DeliveryWorker, lease_for
from bot.domain import (
    WHOLE_ANSWER,
    Answer,
    DeliveryState,
    Source,
    Status,
    Target,
    Verdict,
    VoteChange,
)
from bot.providers import ContextualProvider, Outcome, Provider
from storage import Claim, Finished, StorageError, Store
from tests.conftest import TEST_BACKOFF
from tests.credentials import CONTEXTUAL_KEY
from tests.dbtools import query
from tests.harness import PROVIDER_TIMEOUT, Harness, wait_until
from tests.slack_payloads import new_ts, new_uuid
from tests.standins import Standins
from tests.standins.providers import ProviderStandIn

ALICE, BOB = "U0ALICE001", "U0BOB00001"
UP, DOWN = Status.THUMBS_UP, Status.THUMBS_DOWN
T = 1e10  # a clock of our own for the store-level tests: leases compare with the `now` given


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = await Store.open(database)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def contextual(standins: Standins) -> ProviderStandIn:
    return standins[1]


class CommitThenFail(Store):
    """A connection lost at COMMIT: the turn's transaction committed, and the worker is told
    it failed. Once, on the first turn that claims rows (or, with `on_outcomes`, that
    records outcomes); `before_failing` runs first (a vote arriving meanwhile)."""

    fired = False
    on_outcomes = False
    before_failing: Callable[[], Awaitable[None]] | None = None

    async def finish_and_claim(
        self, finished: Sequence[Finished], now: float, limit: int, **kwargs: Any
    ) -> Claim:
        claim = await super().finish_and_claim(finished, now, limit, **kwargs)
        if (finished if self.on_outcomes else claim.deliveries) and not self.fired:
            self.fired = True
            if self.before_failing is not None:
                await self.before_failing()
            raise StorageError("the database connection was lost at COMMIT")
        return claim


class Buggy:
    """The Contextual client with a bug of ours in it: it raises until `fixed`."""

    name = "contextual"
    requests_per_send = 1

    def __init__(self, real: Provider) -> None:
        self.real = real
        self.fixed = False

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        if not self.fixed:
            raise RuntimeError("a bug in the client")
        return await self.real.send(answer, target, content_id, verdict)


class Gated:
    """The Contextual client, holding the sends for one answer until `opened` is set."""

    name = "contextual"
    requests_per_send = 1

    def __init__(self, real: Provider, held: str) -> None:
        self.real = real
        self.held = held  # the message_id whose sends wait
        self.opened = asyncio.Event()
        self.sends: list[str] = []  # the message_id of each send begun

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        self.sends.append(target.message_id or "")
        if target.message_id == self.held:
            await self.opened.wait()
        return await self.real.send(answer, target, content_id, verdict)


@asynccontextmanager
async def running(
    store: Store,
    standin: ProviderStandIn,
    *,
    wrap: Callable[[Provider], Provider] = lambda p: p,
    backoff: Backoff = TEST_BACKOFF,
) -> AsyncIterator[DeliveryWorker]:
    """The delivery worker over `store`, sending to the stand-in with the real client,
    stopped at the end."""
    timeout = aiohttp.ClientTimeout(total=PROVIDER_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        client = wrap(ContextualProvider(http, standin.base_url, lambda: CONTEXTUAL_KEY))
        worker = DeliveryWorker(
            store,
            {"contextual": client},
            request_timeout=PROVIDER_TIMEOUT,
            backoff=backoff,
            poll_interval=0.05,
        )
        await store.subscribe_deliveries(worker.notify)
        worker.start()
        try:
            yield worker
        finally:
            await worker.stop(grace=1.0)  # nothing more if the test stopped it
    assert standin.overlaps() == []


async def new_answer(store: Store, sources: int = 0) -> Answer:
    _, answer, _ = await store.register_answer(
        Answer(
            channel="C0OUTBOX01",
            ts=new_ts(),
            sources=tuple(Source(new_uuid(), f"Doc {i + 1}") for i in range(sources)),
            targets=(Target(provider="contextual", agent_id=new_uuid(), message_id=new_uuid()),),
        )
    )
    return answer


async def click(
    store: Store,
    answer: Answer,
    user: str,
    status: Status,
    content_id: str = WHOLE_ANSWER,
    worker: DeliveryWorker | None = None,
) -> None:
    """A button click: the user's vote becomes `status`, or is withdrawn if it was that."""
    await store.apply_vote(VoteChange(answer.id, user, "button", "toggle", status, content_id))
    if worker is not None:
        worker.notify()


async def rows(store: Store) -> list[tuple[Any, ...]]:
    return await query(
        store,
        "SELECT id, content_id, status, state, attempts, last_error FROM deliveries ORDER BY id",
    )


async def settled(store: Store) -> None:
    async def nothing_queued() -> bool:
        counts = await store.delivery_counts()
        return counts.pending == 0 and counts.sending == 0

    await wait_until(nothing_queued)


def slot(answer: Answer, content_id: str = WHOLE_ANSWER) -> str:
    return f"{answer.first.message_id}/{content_id}"


# ---------------------------------------------------------------- a turn lost at COMMIT


async def test_a_claim_whose_turn_failed_after_committing_is_sent_not_stranded(
    database: str, contextual: ProviderStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18, defect 1: the claim committed, the worker was told it failed and never got
    the row. Before, its live owner renewed that lease forever: the row stayed `sending`
    and every newer verdict for the slot waited behind it."""
    store = await CommitThenFail.open(database)
    assert isinstance(store, CommitThenFail)
    try:
        answer = await new_answer(store)
        async with running(store, contextual) as worker:
            await click(store, answer, ALICE, UP, worker=worker)
            await contextual.wait_for(1)
            assert store.fired
            await settled(store)
            await click(store, answer, ALICE, DOWN, worker=worker)
            await contextual.wait_for(2)
            await settled(store)
        assert contextual.applied() == {slot(answer): ["thumbs_up", "thumbs_down"]}
        assert [(r[2], r[3]) for r in await rows(store)] == [
            ("thumbs_up", "delivered"),
            ("thumbs_down", "delivered"),
        ]
        assert "back in the queue" in caplog.text
        assert "took the send over" not in caplog.text
    finally:
        await store.close()


async def test_a_newer_verdict_queued_meanwhile_supersedes_the_lost_claim(
    database: str, contextual: ProviderStandIn
) -> None:
    """The probe's case: a newer verdict arrives while the lost claim holds the slot. It is
    delivered, and the older one, never sent, is superseded (the provider ends on the
    database's verdict)."""
    store = await CommitThenFail.open(database)
    assert isinstance(store, CommitThenFail)
    try:
        answer = await new_answer(store)

        async def bob_votes() -> None:
            await click(store, answer, BOB, DOWN)

        store.before_failing = bob_votes
        async with running(store, contextual) as worker:
            await click(store, answer, ALICE, UP, worker=worker)
            await contextual.wait_for(1)
            await settled(store)
        assert store.fired
        assert contextual.statuses() == ["thumbs_down"]
        assert [(r[2], r[3]) for r in await rows(store)] == [
            ("thumbs_up", "superseded"),
            ("thumbs_down", "delivered"),
        ]
    finally:
        await store.close()


async def test_an_outcome_recorded_by_a_turn_reported_failed_is_not_called_lost(
    database: str, contextual: ProviderStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker offers the outcomes of a failed turn again; those the turn had recorded
    after all are simply there: no warning that another process took the send over."""
    store = await CommitThenFail.open(database)
    assert isinstance(store, CommitThenFail)
    store.on_outcomes = True
    try:
        answer = await new_answer(store)
        async with running(store, contextual) as worker:
            await click(store, answer, ALICE, UP, worker=worker)
            await contextual.wait_for(1)
            await settled(store)
        assert store.fired
        assert contextual.statuses() == ["thumbs_up"]
        assert [(r[3], r[4]) for r in await rows(store)] == [("delivered", 1)]
        assert "took the send over" not in caplog.text
    finally:
        await store.close()


async def test_outcomes_a_failed_turn_recorded_are_kept_and_its_claims_go_back(
    store: Store,
) -> None:
    """The same at the store, step by step: the outcome offered again is already recorded
    (not reported lost: nobody took the send over), and the row claimed by the lost turn
    goes back to the queue at once, to be claimed again by the very next turn."""
    answer = await new_answer(store, sources=1)
    await click(store, answer, ALICE, UP)
    [first] = (await store.finish_and_claim([], T, 10, owner="a", lease=3.0)).deliveries
    await click(store, answer, ALICE, DOWN, answer.sources[0].content_id)
    done = Finished(first.id, DeliveryState.DELIVERED, ref="fb-1")
    # This turn commits, but "a" is told it failed: it never learns of the source's claim.
    [unseen] = (await store.finish_and_claim([done], T + 0.1, 10, owner="a", lease=3.0)).deliveries
    again = await store.finish_and_claim([done], T + 0.2, 10, owner="a", lease=3.0, in_flight=())
    assert (again.lost, again.orphaned, again.recovered) == (frozenset(), 1, 0)
    assert [d.id for d in again.deliveries] == [unseen.id]
    assert await query(store, "SELECT id, state, provider_ref FROM deliveries ORDER BY id") == [
        (first.id, "delivered", "fb-1"),
        (unseen.id, "sending", None),
    ]


async def test_turns_taken_while_a_send_is_in_flight_leave_it_alone(
    store: Store, contextual: ProviderStandIn
) -> None:
    """The other side of the fix: a row the worker is sending is in flight, not an orphan.
    Turns taken meanwhile (another answer's vote) neither put it back nor send it twice."""
    slow, quick = await new_answer(store), await new_answer(store)
    gated: list[Gated] = []

    def wrap(real: Provider) -> Provider:
        gated.append(Gated(real, held=slow.first.message_id or ""))
        return gated[0]

    async with running(store, contextual, wrap=wrap) as worker:
        await click(store, slow, ALICE, UP, worker=worker)

        async def begun() -> bool:
            return bool(gated[0].sends)

        await wait_until(begun)
        await click(store, quick, ALICE, UP, worker=worker)
        [received] = await contextual.wait_for(1)
        assert received.body == {"message_id": quick.first.message_id, "feedback": "thumbs_up"}
        [(state, attempts)] = await query(
            store, "SELECT state, attempts FROM deliveries WHERE answer_id = ?", (slow.id,)
        )
        assert (state, attempts) == ("sending", 1)
        gated[0].opened.set()
        await contextual.wait_for(2)
        await settled(store)
    assert gated[0].sends == [slow.first.message_id, quick.first.message_id]
    assert [r[3:5] for r in await rows(store)] == [("delivered", 1), ("delivered", 1)]


# ---------------------------------------------------------------- leases


def test_a_lease_outlasts_the_send_timeout_by_half_of_it_and_at_least_a_second() -> None:
    assert lease_for(10) == 15
    assert lease_for(1) == 2
    assert lease_for(0.5) == 1.5
    # LangSmith's update-then-create: the provider may go on with the create for a timeout.
    assert lease_for(10, requests_per_send=2) == 25


def at(when: float) -> Any:
    """`when`, give or take a millisecond (a relative tolerance would be hours, at T)."""
    return pytest.approx(when, abs=1e-3)


async def lease_until(store: Store) -> dict[int, float]:
    return dict(await query(store, "SELECT id, lease_until FROM deliveries ORDER BY id"))  # type: ignore[arg-type]


async def test_leases_are_renewed_once_a_third_has_run_and_only_for_sends_in_flight(
    store: Store,
) -> None:
    lease = 3.0
    answer = await new_answer(store, sources=1)
    await click(store, answer, ALICE, UP)
    await click(store, answer, ALICE, DOWN, answer.sources[0].content_id)
    claim = await store.finish_and_claim([], T, 10, owner="a", lease=lease)
    ids = sorted(d.id for d in claim.deliveries)
    assert len(ids) == 2
    # Less than a third has run: not renewed (one write a third of a lease, not every turn).
    await store.finish_and_claim([], T + 0.9, 0, owner="a", lease=lease, in_flight=ids)
    assert await lease_until(store) == {i: at(T + lease) for i in ids}
    # More than a third: renewed, a full lease from now.
    await store.finish_and_claim([], T + 1.1, 0, owner="a", lease=lease, in_flight=ids)
    assert await lease_until(store) == {i: at(T + 1.1 + lease) for i in ids}
    # So nobody takes them over when the first lease would have ended.
    other = await store.finish_and_claim([], T + 3.5, 10, owner="b", lease=lease)
    assert (other.recovered, other.deliveries) == (0, [])
    # Only what the worker really sends is renewed: the row it does not have goes back.
    kept, gone = ids
    turn = await store.finish_and_claim([], T + 2.5, 0, owner="a", lease=lease, in_flight=[kept])
    assert turn.orphaned == 1
    assert await query(
        store, "SELECT id, state, claimed_by, lease_until FROM deliveries ORDER BY id"
    ) == [
        (kept, "sending", "a", at(T + 2.5 + lease)),
        (gone, "pending", None, None),
    ]


async def test_release_cuts_leases_to_a_lease_after_the_send_began_and_never_lengthens_them(
    store: Store,
) -> None:
    lease = 3.0
    answer = await new_answer(store)
    await click(store, answer, ALICE, UP)
    [d] = (await store.finish_and_claim([], T, 10, owner="a", lease=lease)).deliveries
    await store.finish_and_claim([], T + 1.1, 0, owner="a", lease=lease, in_flight=[d.id])
    assert await lease_until(store) == {d.id: at(T + 1.1 + lease)}
    assert await store.release("a", lease) == 1
    assert await lease_until(store) == {d.id: at(T + lease)}  # sent_at + lease
    await store.release("a", 10 * lease)
    assert await lease_until(store) == {d.id: at(T + lease)}  # min, not set


async def test_a_send_cancelled_at_stop_keeps_its_claim_until_a_lease_after_it_began(
    store: Store, contextual: ProviderStandIn
) -> None:
    """The cancelled request may still reach the provider: the row is not put back in the
    queue at stop (the last turn knows it as in flight); its lease is cut to sent_at + lease."""
    answer = await new_answer(store)
    gated: list[Gated] = []

    def wrap(real: Provider) -> Provider:
        gated.append(Gated(real, held=answer.first.message_id or ""))
        return gated[0]

    # The send is held until stop cuts it off, however slow the machine: a request that
    # merely hung would end at the client's timeout (half a second) and be retried instead.
    async with running(store, contextual, wrap=wrap) as worker:
        await click(store, answer, ALICE, UP, worker=worker)

        async def begun() -> bool:
            return bool(gated[0].sends)

        await wait_until(begun)
        await worker.stop(grace=0.01)
        [(state, claimed_by, left)] = await query(
            store, "SELECT state, claimed_by, lease_until - sent_at FROM deliveries"
        )
        assert (state, claimed_by) == ("sending", worker.owner)
        assert left == pytest.approx(worker.lease)


# ---------------------------------------------------------------- claims, fencing


async def test_a_source_in_backoff_does_not_hold_up_the_answer_s_own_slot(
    store: Store, contextual: ProviderStandIn
) -> None:
    """Claims are per slot: the whole answer's newer verdicts are delivered while one of its
    sources waits for a retry, and that source is delivered after, all the same."""
    answer = await new_answer(store, sources=1)
    source = answer.sources[0].content_id
    contextual.fail(503, retry_after="3")
    async with running(store, contextual) as worker:
        await click(store, answer, BOB, DOWN, source, worker=worker)

        async def refused() -> bool:
            return len(contextual.rejected) == 1

        await wait_until(refused)
        await click(store, answer, ALICE, UP, worker=worker)
        await contextual.wait_for(1)
        await click(store, answer, ALICE, DOWN, worker=worker)
        await contextual.wait_for(2)
        [waiting] = [r for r in await rows(store) if r[1] == source]
        assert (waiting[3], waiting[4]) == ("pending", 1)  # still in its backoff
        await contextual.wait_for(3)
        await settled(store)
    assert contextual.applied() == {
        slot(answer): ["thumbs_up", "thumbs_down"],
        slot(answer, source): ["thumbs_down"],
    }


async def test_a_stalled_owner_cannot_record_over_its_successor(store: Store) -> None:
    answer = await new_answer(store)
    await click(store, answer, ALICE, UP)
    [d] = (await store.finish_and_claim([], T, 10, owner="a", lease=3.0)).deliveries
    # Before the lease ends, nobody takes it over; after, b does and claims it again.
    early = await store.finish_and_claim([], T + 2.9, 10, owner="b", lease=3.0)
    assert (early.recovered, early.deliveries) == (0, [])
    taken = await store.finish_and_claim([], T + 3.1, 10, owner="b", lease=3.0)
    assert taken.recovered == 1 and [x.id for x in taken.deliveries] == [d.id]
    # a wakes up: its outcome is dropped as lost, b's claim stands.
    late = [Finished(d.id, DeliveryState.DELIVERED, ref="from-a")]
    assert (await store.finish_and_claim(late, T + 3.2, 0, owner="a", lease=3.0)).lost == {d.id}
    assert await query(store, "SELECT state, claimed_by FROM deliveries") == [("sending", "b")]
    # b's outcome is recorded; a's, offered again (a retry, say), still changes nothing.
    mine = [Finished(d.id, DeliveryState.DELIVERED, ref="from-b")]
    assert (await store.finish_and_claim(mine, T + 3.3, 0, owner="b", lease=3.0)).lost == set()
    retry = [Finished(d.id, DeliveryState.PENDING, "HTTP 503", retry_at=T + 4)]
    assert (await store.finish_and_claim(retry, T + 3.4, 0, owner="a", lease=3.0)).lost == {d.id}
    assert await query(store, "SELECT state, provider_ref, claimed_by FROM deliveries") == [
        ("delivered", "from-b", None)
    ]


async def test_retrying_a_dead_row_of_a_removed_answer_sends_nothing(
    store: Store, contextual: ProviderStandIn
) -> None:
    contextual.fail(404)
    answer = await new_answer(store)
    async with running(store, contextual) as worker:
        await click(store, answer, ALICE, UP, worker=worker)

        async def dead() -> bool:
            return (await store.delivery_counts()).dead == 1

        await wait_until(dead)
        await store.remove_answer(answer.channel, answer.ts, "removed by a test")
        assert await store.retry_dead() == (0, 0)
        [row] = await rows(store)
        assert (row[3], row[4], row[5]) == ("skipped", 1, "the answer was removed: not retried")
        assert (await store.delivery_counts()).pending == 0  # not waiting for good
        # The worker goes on turning; the next answer's vote is all the provider gets.
        other = await new_answer(store)
        await click(store, other, ALICE, UP, worker=worker)
        await contextual.wait_for(1)
        await settled(store)
    assert [r.body for r in contextual.received] == [
        {"message_id": other.first.message_id, "feedback": "thumbs_up"}
    ]


# ---------------------------------------------------------------- what is retried


async def test_a_withdrawal_while_the_newer_verdict_fails_ends_on_removed(
    store: Store, contextual: ProviderStandIn
) -> None:
    """👍 delivered; the voter switches to 👎, which the provider refuses (5xx) and which waits
    for its retry; the voter withdraws. The provider ends on `removed`, last."""
    answer = await new_answer(store)
    async with running(store, contextual) as worker:
        await click(store, answer, ALICE, UP, worker=worker)
        await contextual.wait_for(1)
        # A retry far off, whatever the machine's speed: the withdrawal lands while 👎
        # waits for it.
        contextual.fail(503, retry_after="600")
        await click(store, answer, ALICE, DOWN, worker=worker)

        async def failing() -> bool:
            waiting = [r for r in await rows(store) if r[2] == "thumbs_down" and r[3] == "pending"]
            return bool(contextual.rejected) and bool(waiting)

        await wait_until(failing)
        await click(store, answer, ALICE, DOWN, worker=worker)  # the same click: withdrawn
        await contextual.wait_for(2)
        await settled(store)
    assert contextual.statuses()[0] == "thumbs_up"
    assert contextual.applied()[slot(answer)][-1] == "removed"
    assert [r[2] for r in await rows(store) if r[3] == "delivered"][-1] == "removed"


async def test_408_is_retried(harness: Harness) -> None:
    h = harness
    h.contextual.fail(408)
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    assert [status for status, _ in h.contextual.rejected] == [408]
    [row] = await h.store.list_deliveries()
    assert (row.state, row.attempts) == ("delivered", 2)


async def test_an_unexpected_exception_in_a_send_is_retried_not_dead(
    store: Store, contextual: ProviderStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    answer = await new_answer(store)
    buggy: list[Buggy] = []

    def wrap(real: Provider) -> Provider:
        buggy.append(Buggy(real))
        return buggy[0]

    async with running(store, contextual, wrap=wrap) as worker:
        await click(store, answer, ALICE, UP, worker=worker)

        async def retried_twice() -> bool:
            [row] = await rows(store)
            return row[4] >= 2 and row[3] in ("pending", "sending")

        await wait_until(retried_twice)
        [row] = await rows(store)
        assert row[5] == "internal error: RuntimeError"
        buggy[0].fixed = True
        await contextual.wait_for(1)
        await settled(store)
    assert [r[3] for r in await rows(store)] == ["delivered"]
    assert "failed unexpectedly" in caplog.text
