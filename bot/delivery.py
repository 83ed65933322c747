"""The delivery worker: carries queued verdicts to the providers, at least once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.providers import Provider, ProviderError, RetryableError, Sent
from storage import Delivery, DeliveryState, Store

log = logging.getLogger(__name__)

# Slack retries an event for about an hour; a day of event ids is plenty to drop repeats.
EVENT_ID_RETENTION = 24 * 3600.0
PRUNE_EVERY = 3600.0


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


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        concurrency: int = 16,
        backoff: Backoff | None = None,
        poll_interval: float = 1.0,
        redact: Callable[[str], str] = lambda s: s,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._providers = providers
        self._concurrency = concurrency
        self._backoff = backoff or Backoff()
        self._poll = poll_interval
        self._redact = redact
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._pruned_at = 0.0

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def notify(self) -> None:
        """A delivery was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        recovered = await self._store.recover_sending()
        if recovered:
            log.info("re-queued %d deliveries interrupted by the last shutdown", recovered)
        while not self._stopping:
            self._wake.clear()
            free = self._concurrency - len(self._inflight)
            if free <= 0:
                await self._wake.wait()  # full: wait for a send to finish
                continue
            claimed, later = await self._store.claim_due(time.time(), free)
            for delivery in claimed:
                task = asyncio.create_task(self._deliver(delivery))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if len(claimed) == free:
                continue  # maybe more are due: claim again once a send finishes
            await self._prune_events()
            await self._sleep_until(later)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let sends in flight finish for `grace` seconds, then cancel them.
        A cancelled send's row goes back to pending and is sent after the next start."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            _, unfinished = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
                requeued = await self._store.recover_sending()
                log.info("%d deliveries were still in flight; they stay queued", requeued)

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

    async def _prune_events(self) -> None:
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await self._store.prune_events(now - EVENT_ID_RETENTION)

    async def _deliver(self, d: Delivery) -> None:
        provider = self._providers[d.answer.provider]
        slot = f"{d.answer.channel}/{d.answer.ts}" + (
            f" source {d.content_id}" if d.content_id else ""
        )
        started = time.perf_counter()
        try:
            outcome = await provider.send(d.answer, d.content_id, d.verdict)
        except ProviderError as e:
            error = self._redact(str(e))
            if not e.retryable:
                await self._store.mark_dead(d.id, error)
                log.error("delivery %d (%s) is dead: %s", d.id, slot, error)
                return
            retry_after = e.retry_after if isinstance(e, RetryableError) else None
            await self._retry(d, slot, error, retry_after)
        except Exception as e:  # a bug of ours must not lose the row: retry it later
            log.exception("delivery %d (%s) failed unexpectedly", d.id, slot)
            await self._retry(d, slot, self._redact(f"internal error: {type(e).__name__}"), None)
        else:
            elapsed = (time.perf_counter() - started) * 1000
            if isinstance(outcome, Sent):
                await self._store.mark_delivered(d.id, outcome.ref)
                log.info(
                    "delivered %s for %s to %s in %.0f ms",
                    d.verdict.status.value,
                    slot,
                    provider.name,
                    elapsed,
                )
            else:
                await self._store.mark_skipped(d.id, outcome.reason)
                log.info("skipped %s for %s: %s", d.verdict.status.value, slot, outcome.reason)

    async def _retry(self, d: Delivery, slot: str, error: str, retry_after: float | None) -> None:
        delay = self._backoff.delay(d.attempts, retry_after, self._rng)
        state = await self._store.reschedule(d.id, time.time() + delay, error)
        if state is DeliveryState.SUPERSEDED:
            log.info(
                "delivery %d (%s) failed and a newer verdict replaces it: %s", d.id, slot, error
            )
        else:
            log.warning(
                "delivery %d (%s) failed, attempt %d, retrying in %.1f s: %s",
                d.id,
                slot,
                d.attempts,
                delay,
                error,
            )
