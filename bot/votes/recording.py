"""Recording votes: the one door that reactions, buttons and forms all go through."""

from __future__ import annotations

from bot.delivery.worker import DeliveryWorker
from bot.domain import AnswerRef, StoredVote, VoteChange, VoteResult
from bot.support.metrics import Metrics
from storage import Store


class Votes:
    def __init__(
        self, store: Store, worker: DeliveryWorker, metrics: Metrics | None = None
    ) -> None:
        self._store = store
        self._worker = worker
        self._metrics = metrics

    async def record(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        """Store the change and its verdict in one transaction; wake the worker if the
        verdict changed. Local I/O only: safe on the ack path."""
        result = await self._store.apply_vote(change, dedupe_key=dedupe_key)
        self._recorded(result)
        return result

    async def record_on_message(
        self,
        channel: str,
        ts: str,
        change: VoteChange,
        *,
        dedupe_key: str | None = None,
        hold: bool = False,
    ) -> tuple[AnswerRef | None, VoteResult]:
        """The same for a change on whatever answer message (channel, ts) holds, found and
        changed in one call: the reaction path. (None, …) when no answer is there; with
        `hold`, the change is then kept for the late lookup (result.held)."""
        answer, result = await self._store.apply_vote_to_message(
            channel, ts, change, dedupe_key=dedupe_key, hold=hold
        )
        self._recorded(result)
        return answer, result

    async def explain(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        """Attach the "what went wrong?" answers to a standing vote."""
        result = await self._store.explain_vote(vote_id, explanation, category)
        self._recorded(result, explained=True)
        return result

    def _recorded(self, result: VoteResult, *, explained: bool = False) -> None:
        """Wake the worker if the verdict changed; count what happened."""
        if result.delivery_id is not None:
            self._worker.notify()
        m = self._metrics
        if m is None:
            return
        if result.verdict is not None and not explained:  # a vote was cast or withdrawn
            if result.vote_id is not None and result.standing is not None:
                m.votes.labels(result.standing.value).inc()
            else:
                m.withdrawals.inc()
        if result.delivery_id is not None:
            m.verdict_changes.inc()

    async def get(self, vote_id: int) -> StoredVote | None:
        """A vote by id (the form and its button carry it), standing or withdrawn."""
        return await self._store.get_vote(vote_id)
