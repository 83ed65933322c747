"""The `Store` facade: the bot's one handle on its database, whichever kind it is. It holds
no SQL; each method runs the function of the same name in the module of its aggregate,
through the backend that FEEDBACK_DB names:

    storage/sqlite/answers.py   answers, their sources, and post reservations
    storage/sqlite/votes.py     votes, and settling a slot into the outbox (queue_verdict_change)
    storage/sqlite/outbox.py    deliveries: claims, leases, outcomes, retries, counts
    storage/sqlite/config.py    channel and workspace settings, and the audit log
    storage/sqlite/keys.py      provider keys (encrypted)
    storage/sqlite/events.py    processed Slack event ids, and the health probe
    storage/sqlite/held.py      reactions held while the late lookup finds their message
    storage/sqlite/escalations.py  answers escalated to a triage channel (through the outbox)
    storage/sqlite/digests.py   digest runs (claimed once), and the figures of a period
    storage/sqlite/composite.py the units that span aggregates (register, remove an answer)

SQLite (a file path, the default; storage/sqlite/backend.py): each unit is a plain function
over the sqlite3 connection, run as one call on aiosqlite's connection thread, so a
transaction is one hop to that thread; votes share transactions through a group commit
(storage/sqlite/group_commit.py). PostgreSQL (a postgresql:// URL; storage/postgres/): the module
of the same name under storage/postgres/, an async function run in one short transaction
on a connection of the pool, for several replicas on one database. Both modules of an
aggregate take the same arguments and return the same types (the Protocols of
storage/queries.py and storage/async_queries.py, which mypy checks each module and each
call below against, and tests/test_backend_contract.py the rest). The decisions they share
are written once, in storage/rules.py, and the row converters in storage/rows.py; what stays
in each backend's SQL is which rows a statement takes, and the locks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

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
from storage.contract import Backend
from storage.models import (
    Asking,
    AuditEntry,
    Claim,
    DeliveryCounts,
    DigestRecord,
    DigestRun,
    EscalationState,
    EscalationView,
    Finished,
    HeldMessage,
    MetadataRegistration,
    PeriodFigures,
    PostReservation,
    Question,
    QuestionEnd,
    Removal,
    Resolution,
)


class Store:
    """The bot's database: an SQLite file, or a PostgreSQL database shared by replicas."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend
        self._q = backend.queries
        self.kind = backend.kind  # "sqlite" or "postgresql"
        self.path = backend.location  # the file, or the URL without its password

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Open FEEDBACK_DB (creating and migrating it as needed): a file path, or a
        postgresql:// URL. Raises storage.errors.DatabaseOpenError saying what is wrong."""
        from storage.backends import open_backend

        return cls(await open_backend(str(path)))

    async def close(self) -> None:
        await self._b.close()

    async def health(self, by: str) -> list[str]:
        return await self._b.health(by)

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever any process queues a delivery (PostgreSQL's LISTEN/NOTIFY);
        SQLite has no such signal: a worker there looks at data_version instead."""
        await self._b.subscribe_deliveries(wake)

    # ---------------------------------------------------------------- storage/sqlite/answers.py

    async def find_answer(self, channel: str, ts: str) -> Answer | None:
        return await self._b.run(self._q.answers.find_answer, channel, ts)

    async def find_answer_for_controls(self, channel: str, ts: str) -> Answer | None:
        return await self._b.run(self._q.answers.find_answer_for_controls, channel, ts)

    async def reserve_post(self, answer: Answer, holder: str, ttl: float) -> PostReservation:
        return await self._b.run(self._q.answers.reserve_post, answer, holder, ttl)

    async def release_post(self, answer: Answer, holder: str) -> None:
        await self._b.run(self._q.answers.release_post, answer, holder)

    async def register_posted_answer(
        self, answer: Answer, holder: str
    ) -> tuple[Registration, Answer, bool]:
        return await self._b.run(self._q.composite.register, answer, holder=holder)

    async def register_answer(
        self,
        answer: Answer,
        provenance: Provenance | None = None,
        *,
        replace_unvoted: bool = False,
    ) -> tuple[Registration, Answer, bool]:
        return await self._b.run(
            self._q.composite.register, answer, provenance, replace_unvoted=replace_unvoted
        )

    async def last_via_metadata(self) -> MetadataRegistration | None:
        return await self._b.run(self._q.answers.last_via_metadata)

    async def set_prompt_ts(self, answer_id: int, prompt_ts: str) -> None:
        await self._b.run(self._q.answers.set_prompt_ts, answer_id, prompt_ts)

    async def list_answers(
        self, channel: str | None, limit: int, before_id: int | None
    ) -> tuple[list[Answer], int | None]:
        return await self._b.run(self._q.answers.list_answers, channel, limit, before_id)

    async def remove_answer(self, channel: str, ts: str, reason: str) -> Removal | None:
        return await self._b.run(self._q.composite.remove_answer, channel, ts, reason)

    # ---------------------------------------------------------------- storage/sqlite/votes.py

    async def apply_vote(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        return await self._b.run_grouped(self._q.votes.apply_vote, change, dedupe_key=dedupe_key)

    async def apply_vote_to_message(
        self,
        channel: str,
        ts: str,
        change: VoteChange,
        *,
        dedupe_key: str | None = None,
        hold: bool = False,
    ) -> tuple[AnswerRef | None, VoteResult]:
        return await self._b.run_grouped(
            self._q.votes.apply_vote_to_message,
            channel,
            ts,
            change,
            dedupe_key=dedupe_key,
            hold=hold,
        )

    # ----------------------------------------------------------- storage/sqlite/questions.py

    async def claim_question(self, asking: Asking, holder: str, ttl: float) -> Question:
        return await self._b.run(self._q.questions.claim_question, asking, holder, ttl)

    async def finish_question(self, channel: str, ts: str, holder: str, end: QuestionEnd) -> bool:
        return await self._b.run(self._q.questions.finish_question, channel, ts, holder, end)

    async def thread_conversation(self, channel: str, thread_ts: str) -> tuple[str, str] | None:
        return await self._b.run(self._q.questions.thread_conversation, channel, thread_ts)

    # ---------------------------------------------------------------- storage/sqlite/held.py

    async def held_messages(self) -> list[HeldMessage]:
        return await self._b.run(self._q.held.held_messages)

    async def held_message(self, channel: str, ts: str) -> HeldMessage | None:
        return await self._b.run(self._q.held.held_message, channel, ts)

    async def drop_held(self, channel: str, ts: str) -> tuple[int, bool]:
        return await self._b.run(self._q.composite.drop_held, channel, ts)

    async def get_vote(self, vote_id: int) -> StoredVote | None:
        return await self._b.run(self._q.votes.get_vote, vote_id)

    async def explain_vote(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        return await self._b.run_grouped(self._q.votes.explain_vote, vote_id, explanation, category)

    async def export_page(
        self,
        after_id: int,
        since: float | None,
        until: float | None,
        channel: str | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        return await self._b.run(self._q.votes.export_page, after_id, since, until, channel, limit)

    async def votes_by(self, user: str) -> int:
        return await self._b.run(self._q.votes.votes_by, user)

    async def slot_verdicts(self, answer_id: int) -> list[SlotVerdict]:
        return await self._b.run(self._q.votes.slot_verdicts, answer_id)

    async def vote_stats(self, channel: str | None, since: float) -> dict[str, dict[str, int]]:
        return await self._b.run(self._q.votes.vote_stats, channel, since)

    # ---------------------------------------------------------------- storage/sqlite/outbox.py

    async def finish_and_claim(
        self,
        finished: Sequence[Finished],
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
        in_flight: Collection[int] = (),
    ) -> Claim:
        """`in_flight`: the sends the caller really has under way; only their leases are
        renewed, and any other row it owns in flight goes back to the queue."""
        return await self._b.run(
            self._q.outbox.finish_and_claim,
            finished,
            now,
            limit,
            owner=owner,
            lease=lease,
            in_flight=in_flight,
        )

    async def release(self, owner: str, lease: float) -> int:
        return await self._b.run(self._q.outbox.release, owner, lease)

    async def list_deliveries(
        self,
        states: Sequence[DeliveryState] = (),
        limit: int = 50,
        answer_id: int | None = None,
    ) -> list[Delivery]:
        return await self._b.run(self._q.outbox.list_deliveries, states, limit, answer_id)

    async def retry_dead(self, ids: Sequence[int] = ()) -> tuple[int, int]:
        return await self._b.run(self._q.outbox.retry_dead, ids)

    async def delivery_counts(self) -> DeliveryCounts:
        return await self._b.run(self._q.outbox.delivery_counts)

    async def last_delivered_at(self, provider: str) -> float | None:
        return await self._b.run(self._q.outbox.last_delivered_at, provider)

    # ---------------------------------------------------------------- storage/sqlite/events.py

    async def data_version(self) -> int:
        """Changes whenever another connection (another process) commits (SQLite only)."""
        return await self._b.data_version()

    async def prune_events(self, older_than: float) -> int:
        return await self._b.run(self._q.events.prune_events, older_than)

    # ---------------------------------------------------------------- storage/sqlite/config.py

    async def config_values(self, scopes: Sequence[str]) -> list[tuple[str, str, Any]]:
        return await self._b.run(self._q.config.config_values, scopes)

    async def set_config(self, scope: str, key: str, value: Any, user: str) -> Any:
        return await self._b.run(self._q.config.set_config, scope, key, value, user)

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        return await self._b.run(self._q.config.audit_log, limit)

    async def settings_named(self, key: str) -> list[tuple[str, Any]]:
        return await self._b.run(self._q.config.settings_named, key)

    # ---------------------------------------------------------- storage/sqlite/escalations.py

    async def resolve_escalation(
        self, channel: str, ts: str, user: str, message: str
    ) -> Resolution:
        return await self._b.run(self._q.escalations.resolve_escalation, channel, ts, user, message)

    async def escalation_view(self, answer_id: int) -> EscalationView:
        return await self._b.run(self._q.escalations.escalation_view, answer_id)

    async def escalation_of(self, answer_id: int) -> EscalationState | None:
        return await self._b.run(self._q.escalations.escalation_of, answer_id)

    # -------------------------------------------------------------- storage/sqlite/digests.py

    async def claim_digest(
        self, due: Sequence[DigestRun], now: float, owner: str, lease: float
    ) -> DigestRun | None:
        return await self._b.run(self._q.digests.claim_digest, due, now, owner, lease)

    async def finish_digest(
        self,
        run_id: int,
        owner: str,
        state: DeliveryState,
        error: str | None = None,
        retry_at: float = 0.0,
        ref: str | None = None,
    ) -> bool:
        return await self._b.run(
            self._q.digests.finish_digest, run_id, owner, state, error, retry_at, ref
        )

    async def queue_digest(self, run: DigestRun) -> bool:
        return await self._b.run(self._q.digests.queue_digest, run)

    async def list_digests(self, limit: int = 10) -> list[DigestRecord]:
        return await self._b.run(self._q.digests.list_digests, limit)

    async def period_figures(
        self, channel: str | None, start: float, end: float, previous: float
    ) -> PeriodFigures:
        return await self._b.run(self._q.digests.period_figures, channel, start, end, previous)

    # ---------------------------------------------------------------- storage/sqlite/keys.py

    async def provider_keys(self) -> dict[str, tuple[bytes, str]]:
        return await self._b.run(self._q.keys.provider_keys)

    async def set_provider_key(
        self, provider: str, ciphertext: bytes | None, last4: str, user: str
    ) -> None:
        await self._b.run(self._q.keys.set_provider_key, provider, ciphertext, last4, user)
