"""The `Store` facade: the bot's one handle on its database. It holds no SQL; each method
runs the function of the same name in the module of its aggregate:

    storage/answers.py   answers, their sources, and post reservations
    storage/votes.py     votes, and settling a slot into the outbox (queue_verdict_change)
    storage/outbox.py    deliveries: claims, leases, outcomes, retries, counts
    storage/config.py    channel and workspace settings, and the audit log
    storage/keys.py      provider keys (encrypted)
    storage/events.py    processed Slack event ids, and the health probe
    storage/held.py      reactions held while the late lookup finds their message

Each public method is one unit of work: a plain function over the sqlite3 connection, run as
a single call on aiosqlite's connection thread (see `storage.db.run`). A transaction is
therefore one hop to that thread, not one per statement; calls queue up there in order, so
two transactions never interleave, and a cancelled caller cannot leave one half-applied.
Votes go through a group commit (storage/group_commit.py): those that queue while one
batch is on the thread share the next transaction, each in its own savepoint.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite

from bot.domain import (
    Answer,
    AnswerRef,
    Delivery,
    DeliveryState,
    Provenance,
    Registration,
    SlotVerdict,
    StoredVote,
    VoteChange,
    VoteResult,
)
from storage import answers, config, events, held, keys, outbox, votes
from storage.db import connect, run, transaction
from storage.group_commit import GroupCommit
from storage.held import HeldMessage
from storage.models import (
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    MetadataRegistration,
    PostReservation,
)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Removal:
    """What removing an answer did: the mapping, the votes kept, the sends cancelled."""

    answer: Answer
    votes_kept: int
    deliveries_cancelled: int


def _remove_answer(db: sqlite3.Connection, channel: str, ts: str, reason: str) -> Removal | None:
    """One unit across three aggregates: the mapping goes, its votes stay (for statistics),
    its queued deliveries are cancelled, all in one transaction."""
    now = time.time()
    with transaction(db):
        answer = answers.mark_removed(db, channel, ts, now)
        if answer is None:
            return None
        cancelled = outbox.cancel_pending(db, answer.id, reason, now)
        return Removal(answer, votes.count_votes(db, answer.id), cancelled)


def _register(
    db: sqlite3.Connection,
    answer: Answer,
    provenance: Provenance | None = None,
    *,
    holder: str | None = None,
    replace_unvoted: bool = False,
) -> tuple[Registration, Answer, bool]:
    """One unit across three aggregates: map the message (dropping the bot's post
    reservation, `holder`, so that anyone waiting finds the message, never a gap) and apply
    the reactions held for it (storage/held.py), oldest first; True when that queued a
    delivery.

    `replace_unvoted` (message metadata updated): a different mapping already there that
    no vote has touched is removed and the new one stored (REPLACED); with votes, it stays
    (CONFLICT): votes are history."""
    now = time.time()
    with transaction(db):
        if holder is not None:
            answers.drop_reservation(db, answer, holder)
        outcome, stored = answers.add_answer(db, answer, provenance)
        if (
            outcome is Registration.CONFLICT
            and replace_unvoted
            and votes.count_votes(db, stored.id) == 0
        ):
            answers.mark_removed(db, answer.channel, answer.ts, now)
            _, stored = answers.add_answer(db, answer, provenance)
            outcome = Registration.REPLACED
        queued = False
        for change in held.take_held(db, stored.id, stored.channel, stored.ts):
            queued = votes.change_vote(db, change, now).delivery_id is not None or queued
        return outcome, stored, queued


class Store:
    """The bot's SQLite database."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self._votes = GroupCommit(db)
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        return cls(await connect(path), str(path))

    async def close(self) -> None:
        await self._db.close()

    async def _run(
        self,
        work: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await run(self._db, lambda db: work(db, *args, **kwargs))

    async def _run_grouped(
        self,
        work: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """The same, written in one transaction with the votes that queue alongside."""
        return await self._votes.run(lambda db: work(db, *args, **kwargs))

    async def health(self, by: str) -> list[str]:
        return await events.health(self._db, by)

    # ---------------------------------------------------------------- storage/answers.py

    async def find_answer(self, channel: str, ts: str) -> Answer | None:
        return await self._run(answers.find_answer, channel, ts)

    async def find_answer_for_controls(self, channel: str, ts: str) -> Answer | None:
        return await self._run(answers.find_answer_for_controls, channel, ts)

    async def reserve_post(self, answer: Answer, holder: str, ttl: float) -> PostReservation:
        return await self._run(answers.reserve_post, answer, holder, ttl)

    async def release_post(self, answer: Answer, holder: str) -> None:
        await self._run(answers.release_post, answer, holder)

    async def register_posted_answer(
        self, answer: Answer, holder: str
    ) -> tuple[Registration, Answer, bool]:
        return await self._run(_register, answer, holder=holder)

    async def register_answer(
        self,
        answer: Answer,
        provenance: Provenance | None = None,
        *,
        replace_unvoted: bool = False,
    ) -> tuple[Registration, Answer, bool]:
        return await self._run(_register, answer, provenance, replace_unvoted=replace_unvoted)

    async def last_via_metadata(self) -> MetadataRegistration | None:
        return await self._run(answers.last_via_metadata)

    async def set_prompt_ts(self, answer_id: int, prompt_ts: str) -> None:
        await self._run(answers.set_prompt_ts, answer_id, prompt_ts)

    async def list_answers(
        self, channel: str | None, limit: int, before_id: int | None
    ) -> tuple[list[Answer], int | None]:
        return await self._run(answers.list_answers, channel, limit, before_id)

    async def remove_answer(self, channel: str, ts: str, reason: str) -> Removal | None:
        return await self._run(_remove_answer, channel, ts, reason)

    # ---------------------------------------------------------------- storage/votes.py

    async def apply_vote(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        return await self._run_grouped(votes.apply_vote, change, dedupe_key=dedupe_key)

    async def apply_vote_to_message(
        self,
        channel: str,
        ts: str,
        change: VoteChange,
        *,
        dedupe_key: str | None = None,
        hold: bool = False,
    ) -> tuple[AnswerRef | None, VoteResult]:
        return await self._run_grouped(
            votes.apply_vote_to_message, channel, ts, change, dedupe_key=dedupe_key, hold=hold
        )

    # ---------------------------------------------------------------- storage/held.py

    async def held_messages(self) -> list[HeldMessage]:
        return await self._run(held.held_messages)

    async def drop_held(self, channel: str, ts: str) -> int:
        return await self._run(held.drop_held, channel, ts)

    async def get_vote(self, vote_id: int) -> StoredVote | None:
        return await self._run(votes.get_vote, vote_id)

    async def explain_vote(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        return await self._run_grouped(votes.explain_vote, vote_id, explanation, category)

    async def export_page(
        self,
        after_id: int,
        since: float | None,
        until: float | None,
        channel: str | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        return await self._run(votes.export_page, after_id, since, until, channel, limit)

    async def slot_verdicts(self, answer_id: int) -> list[SlotVerdict]:
        return await self._run(votes.slot_verdicts, answer_id)

    async def vote_stats(self, channel: str | None, since: float) -> dict[str, dict[str, int]]:
        return await self._run(votes.vote_stats, channel, since)

    # ---------------------------------------------------------------- storage/outbox.py

    async def finish_and_claim(
        self,
        finished: Sequence[Finished],
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
    ) -> Claim:
        return await self._run(
            outbox.finish_and_claim, finished, now, limit, owner=owner, lease=lease
        )

    async def release(self, owner: str, lease: float) -> int:
        return await self._run(outbox.release, owner, lease)

    async def list_deliveries(
        self,
        states: Sequence[DeliveryState] = (),
        limit: int = 50,
        answer_id: int | None = None,
    ) -> list[Delivery]:
        return await self._run(outbox.list_deliveries, states, limit, answer_id)

    async def retry_dead(self, ids: Sequence[int] = ()) -> tuple[int, int]:
        return await self._run(outbox.retry_dead, ids)

    async def delivery_counts(self) -> DeliveryCounts:
        return await self._run(outbox.delivery_counts)

    async def last_delivered_at(self, provider: str) -> float | None:
        return await self._run(outbox.last_delivered_at, provider)

    # ---------------------------------------------------------------- storage/events.py

    async def data_version(self) -> int:
        """Changes whenever another connection (another process) commits."""
        return await self._run(events.data_version)

    async def prune_events(self, older_than: float) -> int:
        return await self._run(events.prune_events, older_than)

    # ---------------------------------------------------------------- storage/config.py

    async def config_values(self, scopes: Sequence[str]) -> list[tuple[str, str, Any]]:
        return await self._run(config.config_values, scopes)

    async def set_config(self, scope: str, key: str, value: Any, user: str) -> Any:
        return await self._run(config.set_config, scope, key, value, user)

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        return await self._run(config.audit_log, limit)

    # ---------------------------------------------------------------- storage/keys.py

    async def provider_keys(self) -> dict[str, tuple[bytes, str]]:
        return await self._run(keys.provider_keys)

    async def set_provider_key(
        self, provider: str, ciphertext: bytes | None, last4: str, user: str
    ) -> None:
        await self._run(keys.set_provider_key, provider, ciphertext, last4, user)
