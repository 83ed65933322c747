"""Recording votes: the one door that reactions, buttons and forms all go through."""

from __future__ import annotations

from bot.delivery import DeliveryWorker
from bot.domain import AnswerRef, StoredVote, VoteChange, VoteResult
from storage import Store


class Votes:
    def __init__(self, store: Store, worker: DeliveryWorker) -> None:
        self._store = store
        self._worker = worker

    async def record(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        """Store the change and its verdict in one transaction; wake the worker if the
        verdict changed. Local I/O only: safe on the ack path."""
        result = await self._store.apply_vote(change, dedupe_key=dedupe_key)
        if result.delivery_id is not None:
            self._worker.notify()
        return result

    async def record_on_message(
        self, channel: str, ts: str, change: VoteChange, *, dedupe_key: str | None = None
    ) -> tuple[AnswerRef | None, VoteResult]:
        """The same for a change on whatever answer message (channel, ts) holds, found and
        changed in one call: the reaction path. (None, …) when no answer is there."""
        answer, result = await self._store.apply_vote_to_message(
            channel, ts, change, dedupe_key=dedupe_key
        )
        if result.delivery_id is not None:
            self._worker.notify()
        return answer, result

    async def explain(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        """Attach the "what went wrong?" answers to a standing vote."""
        result = await self._store.explain_vote(vote_id, explanation, category)
        if result.delivery_id is not None:
            self._worker.notify()
        return result

    async def get(self, vote_id: int) -> StoredVote | None:
        """A vote by id (the form and its button carry it), standing or withdrawn."""
        return await self._store.get_vote(vote_id)
