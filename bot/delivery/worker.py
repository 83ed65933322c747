"""The delivery worker: carries queued verdicts to the providers, at least once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.domain import Delivery, DeliveryState
from bot.providers import Provider, ProviderError, RetryableError, Sent
from bot.support.metrics import Metrics
from storage import Claim, Finished, StorageError, Store

log = logging.getLogger(__name__)

# Slack retries an event for about an hour; a day of event ids is plenty to drop repeats.
EVENT_ID_RETENTION = 24 * 3600.0
PRUNE_EVERY = 3600.0
# How often a worker in its own process (`feedback-bot worker`) looks whether another
# process committed: the longest a vote waits for its send when the worker was idle.
WATCH_EVERY = 0.02
# Under load every vote queued and every send finished wakes the worker, and each turn is a
# transaction. Turns at most this often gather what woke it meanwhile into one; a send
# waits at most this long for its turn. A worker with a backlog (its last turn filled every
# free slot) does not wait: draining is not slowed.
TURN_EVERY = 0.005


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter; a provider's Retry-After wins when it gives one."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    retry_after_cap: float = 3600.0

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.cap, self.base * self.factor ** max(0, attempts - 1))
        # "Equal jitter": never less than half the step, so retries still back off.
        return rng.uniform(ceiling / 2, ceiling)


def lease_for(request_timeout: float, requests_per_send: int = 1) -> float:
    """How long a claim holds without renewal. Never shorter than a send can last, so that
    a send cut off by a crash has ended (applied or dropped by the provider) before anyone
    takes its slot over: each of its requests may take a timeout, and the provider may go on
    with the last one for a timeout after that began. The margin covers a busy event loop
    between renewals."""
    return request_timeout * requests_per_send + max(1.0, request_timeout / 2)


def new_owner() -> str:
    """This process's name on its claims: readable in the database, unique per start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class DeliveryWorker:
    """Sends queued verdicts, `concurrency` at a time.

    One database call per turn records how the finished sends went, renews this process's
    leases, takes over sends whose owner is gone, and claims the next due rows, rather than
    one call per send: under load that is most of the worker's cost. Several processes may
    run a worker on one database; claims are shared between them (see
    storage.sqlite.outbox.claim_due).
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        request_timeout: float,
        concurrency: int = 16,
        backoff: Backoff | None = None,
        poll_interval: float = 1.0,
        redact: Callable[[str], str] = lambda s: s,
        rng: random.Random | None = None,
        owner: str | None = None,
        watch_other_writers: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._providers = providers
        self._concurrency = concurrency
        self._backoff = backoff or Backoff()
        self._poll = poll_interval
        self._redact = redact
        self._rng = rng or random.Random()
        self.owner = owner or new_owner()
        self._request_timeout = request_timeout
        # In its own process, no vote calls notify(): it looks at the database instead.
        self._watch = watch_other_writers
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        # The rows this worker is sending: claimed, and no outcome yet. Only their leases
        # are renewed; any other row the database says we hold goes back to the queue. A
        # send cancelled at shutdown stays here: it may still reach the provider.
        self._sending: set[int] = set()
        self._finished: list[Finished] = []
        # Sends that failed and wait to be recorded: their turn may supersede them instead.
        self._retrying: dict[int, Delivery] = {}
        self._pruned_at = 0.0
        self._turned_at = 0.0
        self._backlog = False
        self._db_error, self._db_error_at = "", 0.0  # logged once a minute, not every turn

    @property
    def lease(self) -> float:
        """How long a claim made now holds: a key entered for LangSmith while the bot runs
        lengthens it, as LangSmith's sends then make two requests."""
        most = max((p.requests_per_send for p in self._providers.values()), default=1)
        return lease_for(self._request_timeout, most)

    def notify(self) -> None:
        """A delivery was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish for `grace` seconds, then cancel them.
        What finished is recorded. A cancelled send may still reach the provider, so its
        row stays claimed until its lease (counted from when the send began) runs out;
        whichever feedback-bot runs then sends it again."""
        if self._task is None:
            return  # never started: FEEDBACK_WORKER=separate leaves sending to another process
        self._stopping = True
        self._wake.set()
        running, self._task = self._task, None  # a second stop() does nothing
        await running
        unfinished: set[asyncio.Task[None]] = set()
        if self._inflight:
            _, unfinished = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
        # The cancelled sends stay in self._sending: this turn keeps their claims (rather
        # than putting them back in the queue at once) and release() below cuts their leases.
        await self._turn(0)
        if unfinished:
            try:
                cut = await self._store.release(self.owner, self.lease)
            except StorageError as e:
                # The leases end a full lease after their last renewal instead.
                log.error("could not release the sends cut off at shutdown: %s", e)
                return
            log.info(
                "%d deliveries were cut off mid-send; they are sent again %.0f s after they"
                " began, by whichever feedback-bot runs then",
                cut,
                self.lease,
            )

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            free = self._concurrency - len(self._inflight)
            if free <= 0 and not self._finished:
                # Full: wait for a send to finish, or until the leases need renewing.
                await self._sleep_until(time.time() + self.lease / 3)
                if not self._finished and not self._stopping:
                    await self._turn(0)
                continue
            wait = self._turned_at + TURN_EVERY - time.monotonic()
            if wait > 0 and not self._backlog:
                await asyncio.sleep(wait)
                free = self._concurrency - len(self._inflight)  # sends may have finished
            claim = await self._turn(max(free, 0))
            self._backlog = free > 0 and len(claim.deliveries) == free
            self._sending.update(d.id for d in claim.deliveries)
            for delivery in claim.deliveries:
                task = asyncio.create_task(self._deliver(delivery))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if free <= 0 or len(claim.deliveries) == free or self._finished:
                continue  # more may be due, or more sends finished meanwhile
            await self._prune_events()
            await self._idle_until(claim.next_due)

    async def _turn(self, limit: int) -> Claim:
        self._turned_at = time.monotonic()
        finished = self._take_finished()
        try:
            claim = await self._store.finish_and_claim(
                finished,
                time.time(),
                limit,
                owner=self.owner,
                lease=self.lease,
                in_flight=frozenset(self._sending),
            )
        except StorageError as e:
            # The disk is full or the file is gone: keep the outcomes for the next turn (the
            # rows stay claimed by us meanwhile) and keep trying; /healthz says why. Had the
            # transaction committed after all (a connection lost at COMMIT), the next turn
            # finds these outcomes recorded, and the rows it claimed for us, which we never
            # got, are not in self._sending: they go back to the queue.
            self._finished[:0] = finished
            now = time.time()
            if str(e) != self._db_error or now - self._db_error_at >= 60:
                log.error("the delivery worker cannot use the database: %s", e)
                self._db_error, self._db_error_at = str(e), now
            if not self._stopping:
                await asyncio.sleep(self._poll)
            return Claim([], None, frozenset())
        if claim.orphaned:
            log.warning(
                "%d deliveries were claimed for this process by a turn the database reported"
                " as failed although it committed; they are back in the queue",
                claim.orphaned,
            )
        if claim.recovered:
            log.info(
                "took over %d deliveries whose sender stopped mid-send (lease expired);"
                " each is sent again unless a newer verdict replaces it",
                claim.recovered,
            )
        for delivery_id in claim.superseded:
            superseded = self._retrying.get(delivery_id)
            if superseded is not None:
                self._outcome(logging.INFO, superseded, "superseded", "a newer verdict replaces it")
        for f in finished:
            self._retrying.pop(f.delivery_id, None)
        for delivery_id in claim.lost:
            log.warning(
                "delivery %d: this process stalled past its lease and another took the send"
                " over; its outcome here is not recorded",
                delivery_id,
            )
        return claim

    def _take_finished(self) -> list[Finished]:
        finished, self._finished = self._finished, []
        return finished

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()

    async def _sleep_until(self, due: float | None) -> None:
        """Until woken, the next retry is due, or the poll interval passes (the admin CLI
        may requeue rows from another process)."""
        timeout = self._poll
        if due is not None:
            timeout = max(0.0, min(timeout, due - time.time()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _idle_until(self, due: float | None) -> None:
        """Nothing to send: sleep as `_sleep_until` does. A worker in its own process also
        wakes as soon as another process commits (SQLite's data_version: a few microseconds
        per look), since the votes it would send are written there."""
        if not self._watch:
            await self._sleep_until(due)
            return
        until = min(time.time() + self._poll, due if due is not None else float("inf"))
        try:
            version = await self._store.data_version()
            while (left := until - time.time()) > 0 and not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(WATCH_EVERY, left))
                if await self._store.data_version() != version:
                    return
        except StorageError:
            await self._sleep_until(due)  # the next turn reports it

    async def _prune_events(self) -> None:
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            try:
                await self._store.prune_events(now - EVENT_ID_RETENTION)
            except StorageError as e:
                # Housekeeping: it must never stop the sending (the task would end).
                log.warning("could not prune old Slack event ids (next try in an hour): %s", e)

    async def _deliver(self, d: Delivery) -> None:
        """Send one row; what became of it is recorded on the worker's next turn."""
        provider = self._providers[d.target.provider]
        started = time.perf_counter()
        try:
            outcome = await provider.send(d.answer, d.target, d.content_id, d.verdict)
        except ProviderError as e:
            error = self._redact(str(e))
            if not e.retryable:
                self._outcome(logging.ERROR, d, "dead", error, started=started)
                self._finish(Finished(d.id, DeliveryState.DEAD, error))
                return
            retry_after = e.retry_after if isinstance(e, RetryableError) else None
            self._retry(d, error, retry_after, started)
        except Exception as e:  # a bug of ours must not lose the row: retry it later
            log.exception("delivery %d (%s) failed unexpectedly", d.id, _slot(d))
            self._retry(d, self._redact(f"internal error: {type(e).__name__}"), None, started)
        else:
            if isinstance(outcome, Sent):
                self._outcome(logging.INFO, d, "delivered", started=started)
                self._finish(Finished(d.id, DeliveryState.DELIVERED, ref=outcome.ref))
            else:
                self._outcome(logging.INFO, d, "skipped", outcome.reason, started=started)
                self._finish(Finished(d.id, DeliveryState.SKIPPED, outcome.reason))

    def _finish(self, finished: Finished) -> None:
        self._sending.discard(finished.delivery_id)
        self._finished.append(finished)
        self._wake.set()

    def _retry(self, d: Delivery, error: str, retry_after: float | None, started: float) -> None:
        delay = self._backoff.delay(d.attempts, retry_after, self._rng)
        self._outcome(
            logging.WARNING, d, "retried", error, started=started, retry_in=round(delay, 1)
        )
        self._retrying[d.id] = d
        self._finish(Finished(d.id, DeliveryState.PENDING, error, retry_at=time.time() + delay))

    def _outcome(
        self,
        level: int,
        d: Delivery,
        result: str,
        detail: str | None = None,
        *,
        started: float | None = None,
        retry_in: float | None = None,
    ) -> None:
        seconds = None if started is None else time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.deliveries.labels(d.target.provider, result).inc()
            if seconds is not None:
                self._metrics.provider_seconds.labels(d.target.provider).observe(seconds)
        ms = None if seconds is None else seconds * 1000
        _outcome(level, d, result, detail, ms=ms, retry_in=retry_in)


def _slot(d: Delivery) -> str:
    where = f"{d.answer.channel}/{d.answer.ts}"
    return f"{where} source {d.content_id}" if d.content_id else where


def _outcome(
    level: int,
    d: Delivery,
    result: str,
    detail: str | None = None,
    *,
    ms: float | None = None,
    retry_in: float | None = None,
) -> None:
    """One line per delivery outcome, the same shape whatever it is: slot, provider,
    verdict, result, attempt (and, for FEEDBACK_LOG_FORMAT=json, the same as fields)."""
    notes = [f"attempt {d.attempts}"]
    if ms is not None:
        notes.append(f"{ms:.0f} ms")
    if retry_in is not None:
        notes.append(f"next try in {retry_in:.1f} s")
    log.log(
        level,
        "delivery %d %s %s %s: %s (%s)%s",
        d.id,
        _slot(d),
        d.target.provider,
        d.verdict.status.value,
        result,
        ", ".join(notes),
        f": {detail}" if detail else "",
        extra={
            "fields": {
                "event": "delivery",
                "delivery_id": d.id,
                "channel": d.answer.channel,
                "ts": d.answer.ts,
                "content_id": d.content_id or None,
                "provider": d.target.provider,
                "target": d.target.key,
                "verdict": d.verdict.status.value,
                "result": result,
                "attempt": d.attempts,
                "ms": None if ms is None else round(ms, 1),
                "retry_in_s": retry_in,
                "detail": detail,
            }
        },
    )
