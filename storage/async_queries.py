"""The query contract, PostgreSQL's half: each aggregate's module typed by a Protocol,
coroutine functions over an asyncpg connection, with the names and parameters of SQLite's
(storage/queries.py); storage/contract.py says how they are checked."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.domain import (
    Answer,
    AnswerRef,
    Delivery,
    DeliveryState,
    Provenance,
    Registration,
    SlotVerdict,
    Status,
    StoredVote,
    Verdict,
    VoteChange,
    VoteResult,
)
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

if TYPE_CHECKING:
    # asyncpg is an optional extra, and aiosqlite is only named here: types only.
    import asyncpg

# ------------------------------------------------------------------------------ PostgreSQL


class PostgresAnswers(Protocol):
    async def add_answer(
        self, conn: asyncpg.Connection, answer: Answer, provenance: Provenance | None = None
    ) -> tuple[Registration, Answer]: ...
    async def carry_prompt(self, conn: asyncpg.Connection, old: Answer, new: Answer) -> Answer: ...
    async def drop_reservation(
        self, conn: asyncpg.Connection, answer: Answer, holder: str
    ) -> None: ...
    async def find_answer(
        self, conn: asyncpg.Connection, channel: str, ts: str
    ) -> Answer | None: ...
    async def find_answer_for_controls(
        self, conn: asyncpg.Connection, channel: str, ts: str
    ) -> Answer | None: ...
    async def last_via_metadata(self, conn: asyncpg.Connection) -> MetadataRegistration | None: ...
    async def list_answers(
        self, conn: asyncpg.Connection, channel: str | None, limit: int, before_id: int | None
    ) -> tuple[list[Answer], int | None]: ...
    async def mark_removed(
        self, conn: asyncpg.Connection, channel: str, ts: str, now: float
    ) -> Answer | None: ...
    async def metadata_ts(self, conn: asyncpg.Connection, answer_id: int) -> float | None: ...
    async def release_post(self, conn: asyncpg.Connection, answer: Answer, holder: str) -> None: ...
    async def removed_answer(
        self, conn: asyncpg.Connection, channel: str, ts: str
    ) -> Answer | None: ...
    async def reserve_post(
        self, conn: asyncpg.Connection, answer: Answer, holder: str, ttl: float
    ) -> PostReservation: ...
    async def set_prompt_ts(
        self, conn: asyncpg.Connection, answer_id: int, prompt_ts: str
    ) -> None: ...
    async def was_removed(self, conn: asyncpg.Connection, channel: str, ts: str) -> bool: ...


class PostgresVotes(Protocol):
    async def votes_by(self, conn: asyncpg.Connection, user: str) -> int: ...
    async def apply_vote(
        self, conn: asyncpg.Connection, change: VoteChange, *, dedupe_key: str | None = None
    ) -> VoteResult: ...
    async def apply_vote_to_message(
        self,
        conn: asyncpg.Connection,
        channel: str,
        ts: str,
        change: VoteChange,
        *,
        dedupe_key: str | None = None,
        hold: bool = False,
    ) -> tuple[AnswerRef | None, VoteResult]: ...
    async def change_vote(
        self, conn: asyncpg.Connection, change: VoteChange, now: float, cast_at: float | None = None
    ) -> VoteResult: ...
    async def count_votes(self, conn: asyncpg.Connection, answer_id: int) -> int: ...
    async def explain_vote(
        self, conn: asyncpg.Connection, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult: ...
    async def export_page(
        self,
        conn: asyncpg.Connection,
        after_id: int,
        since: float | None,
        until: float | None,
        channel: str | None,
        limit: int,
    ) -> list[tuple[Any, ...]]: ...
    async def get_vote(self, conn: asyncpg.Connection, vote_id: int) -> StoredVote | None: ...
    async def queue_verdict_change(
        self, conn: asyncpg.Connection, answer_id: int, content_id: str, now: float
    ) -> tuple[Verdict, int | None]: ...
    async def slot_verdicts(
        self, conn: asyncpg.Connection, answer_id: int
    ) -> list[SlotVerdict]: ...
    async def vote_stats(
        self, conn: asyncpg.Connection, channel: str | None, since: float
    ) -> dict[str, dict[str, int]]: ...


class PostgresOutbox(Protocol):
    async def cancel_pending(
        self, conn: asyncpg.Connection, answer_id: int, reason: str, now: float
    ) -> int: ...
    async def claim_due(
        self, conn: asyncpg.Connection, now: float, limit: int, owner: str, lease_until: float
    ) -> list[asyncpg.Record]: ...
    async def delivery_counts(self, conn: asyncpg.Connection) -> DeliveryCounts: ...
    async def finish_and_claim(
        self,
        conn: asyncpg.Connection,
        finished: Sequence[Finished],
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
        in_flight: Collection[int] = (),
    ) -> Claim: ...
    async def last_delivered_at(self, conn: asyncpg.Connection, provider: str) -> float | None: ...
    async def list_deliveries(
        self,
        conn: asyncpg.Connection,
        states: Sequence[DeliveryState] = (),
        limit: int = 50,
        answer_id: int | None = None,
    ) -> list[Delivery]: ...
    async def release(self, conn: asyncpg.Connection, owner: str, lease: float) -> int: ...
    async def retry_dead(
        self, conn: asyncpg.Connection, ids: Sequence[int] = ()
    ) -> tuple[int, int]: ...


class PostgresConfig(Protocol):
    async def audit(
        self,
        conn: asyncpg.Connection,
        at: float,
        user: str,
        scope: str,
        key: str,
        old: str | None,
        new: str | None,
    ) -> None: ...
    async def audit_log(self, conn: asyncpg.Connection, limit: int = 50) -> list[AuditEntry]: ...
    async def config_values(
        self, conn: asyncpg.Connection, scopes: Sequence[str]
    ) -> list[tuple[str, str, Any]]: ...
    async def set_config(
        self, conn: asyncpg.Connection, scope: str, key: str, value: Any, user: str
    ) -> Any: ...
    async def settings_named(self, conn: asyncpg.Connection, key: str) -> list[tuple[str, Any]]: ...


class PostgresEscalations(Protocol):
    async def escalate_on_vote(
        self,
        conn: asyncpg.Connection,
        answer_id: int,
        cast: Status | None,
        verdict: Status,
        now: float,
        explained: bool = False,
    ) -> int | None: ...
    async def resolve_escalation(
        self, conn: asyncpg.Connection, channel: str, ts: str, user: str, message: str
    ) -> Resolution: ...
    async def escalation_view(self, conn: asyncpg.Connection, answer_id: int) -> EscalationView: ...
    async def escalation_of(
        self, conn: asyncpg.Connection, answer_id: int
    ) -> EscalationState | None: ...


class PostgresDigests(Protocol):
    async def claim_digest(
        self,
        conn: asyncpg.Connection,
        due: Sequence[DigestRun],
        now: float,
        owner: str,
        lease: float,
    ) -> DigestRun | None: ...
    async def finish_digest(
        self,
        conn: asyncpg.Connection,
        run_id: int,
        owner: str,
        state: DeliveryState,
        error: str | None,
        retry_at: float,
        ref: str | None,
    ) -> bool: ...
    async def queue_digest(self, conn: asyncpg.Connection, run: DigestRun) -> bool: ...
    async def list_digests(
        self, conn: asyncpg.Connection, limit: int = 10
    ) -> list[DigestRecord]: ...
    async def period_figures(
        self,
        conn: asyncpg.Connection,
        channel: str | None,
        start: float,
        end: float,
        previous: float,
    ) -> PeriodFigures: ...


class PostgresKeys(Protocol):
    async def provider_keys(self, conn: asyncpg.Connection) -> dict[str, tuple[bytes, str]]: ...
    async def set_provider_key(
        self,
        conn: asyncpg.Connection,
        provider: str,
        ciphertext: bytes | None,
        last4: str,
        user: str,
    ) -> None: ...


class PostgresEvents(Protocol):
    # A pool, not a connection: the probe takes a short transaction of its own.
    async def health(self, pool: asyncpg.Pool, by: str) -> list[str]: ...
    async def mark_processed(self, conn: asyncpg.Connection, event_id: str, now: float) -> bool: ...
    async def prune_events(self, conn: asyncpg.Connection, older_than: float) -> int: ...


class PostgresQuestions(Protocol):
    async def claim_question(
        self, conn: asyncpg.Connection, asking: Asking, holder: str, ttl: float
    ) -> Question: ...
    async def finish_question(
        self, conn: asyncpg.Connection, channel: str, ts: str, holder: str, end: QuestionEnd
    ) -> bool: ...
    async def thread_conversation(
        self, conn: asyncpg.Connection, channel: str, thread_ts: str
    ) -> tuple[str, str] | None: ...


class PostgresHeld(Protocol):
    async def drop(self, conn: asyncpg.Connection, channel: str, ts: str) -> int: ...
    async def held_message(
        self, conn: asyncpg.Connection, channel: str, ts: str
    ) -> HeldMessage | None: ...
    async def held_messages(self, conn: asyncpg.Connection) -> list[HeldMessage]: ...
    async def hold(
        self,
        conn: asyncpg.Connection,
        channel: str,
        ts: str,
        change: VoteChange,
        event_id: str | None,
        now: float,
    ) -> None: ...
    async def lock_message(self, conn: asyncpg.Connection, channel: str, ts: str) -> None: ...
    async def take_held(
        self, conn: asyncpg.Connection, answer_id: int, channel: str, ts: str
    ) -> list[tuple[VoteChange, float]]: ...


class PostgresComposite(Protocol):
    async def drop_held(
        self, conn: asyncpg.Connection, channel: str, ts: str
    ) -> tuple[int, bool]: ...
    async def register(
        self,
        conn: asyncpg.Connection,
        answer: Answer,
        provenance: Provenance | None = None,
        *,
        holder: str | None = None,
        replace_unvoted: bool = False,
    ) -> tuple[Registration, Answer, bool]: ...
    async def remove_answer(
        self, conn: asyncpg.Connection, channel: str, ts: str, reason: str
    ) -> Removal | None: ...
