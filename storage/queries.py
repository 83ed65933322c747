"""The query contract, SQLite's half: each aggregate's module typed by a Protocol, plain
functions over a sqlite3 connection. storage/async_queries.py is PostgreSQL's, with the same
names and parameters; storage/contract.py says how they are checked."""

from __future__ import annotations

import sqlite3
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
    import aiosqlite

# ---------------------------------------------------------------------------------- SQLite


class SqliteAnswers(Protocol):
    def add_answer(
        self, db: sqlite3.Connection, answer: Answer, provenance: Provenance | None = None
    ) -> tuple[Registration, Answer]: ...
    def carry_prompt(self, db: sqlite3.Connection, old: Answer, new: Answer) -> Answer: ...
    def drop_reservation(self, db: sqlite3.Connection, answer: Answer, holder: str) -> None: ...
    def find_answer(self, db: sqlite3.Connection, channel: str, ts: str) -> Answer | None: ...
    def find_answer_for_controls(
        self, db: sqlite3.Connection, channel: str, ts: str
    ) -> Answer | None: ...
    def last_via_metadata(self, db: sqlite3.Connection) -> MetadataRegistration | None: ...
    def list_answers(
        self, db: sqlite3.Connection, channel: str | None, limit: int, before_id: int | None
    ) -> tuple[list[Answer], int | None]: ...
    def mark_removed(
        self, db: sqlite3.Connection, channel: str, ts: str, now: float
    ) -> Answer | None: ...
    def metadata_ts(self, db: sqlite3.Connection, answer_id: int) -> float | None: ...
    def release_post(self, db: sqlite3.Connection, answer: Answer, holder: str) -> None: ...
    def removed_answer(self, db: sqlite3.Connection, channel: str, ts: str) -> Answer | None: ...
    def reserve_post(
        self, db: sqlite3.Connection, answer: Answer, holder: str, ttl: float
    ) -> PostReservation: ...
    def set_prompt_ts(self, db: sqlite3.Connection, answer_id: int, prompt_ts: str) -> None: ...
    def was_removed(self, db: sqlite3.Connection, channel: str, ts: str) -> bool: ...


class SqliteVotes(Protocol):
    def votes_by(self, db: sqlite3.Connection, user: str) -> int: ...
    def apply_vote(
        self, db: sqlite3.Connection, change: VoteChange, *, dedupe_key: str | None = None
    ) -> VoteResult: ...
    def apply_vote_to_message(
        self,
        db: sqlite3.Connection,
        channel: str,
        ts: str,
        change: VoteChange,
        *,
        dedupe_key: str | None = None,
        hold: bool = False,
    ) -> tuple[AnswerRef | None, VoteResult]: ...
    def change_vote(
        self, db: sqlite3.Connection, change: VoteChange, now: float, cast_at: float | None = None
    ) -> VoteResult: ...
    def count_votes(self, db: sqlite3.Connection, answer_id: int) -> int: ...
    def explain_vote(
        self, db: sqlite3.Connection, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult: ...
    def export_page(
        self,
        db: sqlite3.Connection,
        after_id: int,
        since: float | None,
        until: float | None,
        channel: str | None,
        limit: int,
    ) -> list[tuple[Any, ...]]: ...
    def get_vote(self, db: sqlite3.Connection, vote_id: int) -> StoredVote | None: ...
    def queue_verdict_change(
        self, db: sqlite3.Connection, answer_id: int, content_id: str, now: float
    ) -> tuple[Verdict, int | None]: ...
    def slot_verdicts(self, db: sqlite3.Connection, answer_id: int) -> list[SlotVerdict]: ...
    def vote_stats(
        self, db: sqlite3.Connection, channel: str | None, since: float
    ) -> dict[str, dict[str, int]]: ...


class SqliteOutbox(Protocol):
    def cancel_pending(
        self, db: sqlite3.Connection, answer_id: int, reason: str, now: float
    ) -> int: ...
    def claim_due(
        self, db: sqlite3.Connection, now: float, limit: int, owner: str, lease_until: float
    ) -> list[sqlite3.Row]: ...
    def delivery_counts(self, db: sqlite3.Connection) -> DeliveryCounts: ...
    def finish_and_claim(
        self,
        db: sqlite3.Connection,
        finished: Sequence[Finished],
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
        in_flight: Collection[int] = (),
    ) -> Claim: ...
    def last_delivered_at(self, db: sqlite3.Connection, provider: str) -> float | None: ...
    def list_deliveries(
        self,
        db: sqlite3.Connection,
        states: Sequence[DeliveryState] = (),
        limit: int = 50,
        answer_id: int | None = None,
    ) -> list[Delivery]: ...
    def release(self, db: sqlite3.Connection, owner: str, lease: float) -> int: ...
    def retry_dead(self, db: sqlite3.Connection, ids: Sequence[int] = ()) -> tuple[int, int]: ...


class SqliteConfig(Protocol):
    def audit(
        self,
        db: sqlite3.Connection,
        at: float,
        user: str,
        scope: str,
        key: str,
        old: str | None,
        new: str | None,
    ) -> None: ...
    def audit_log(self, db: sqlite3.Connection, limit: int = 50) -> list[AuditEntry]: ...
    def config_values(
        self, db: sqlite3.Connection, scopes: Sequence[str]
    ) -> list[tuple[str, str, Any]]: ...
    def set_config(
        self, db: sqlite3.Connection, scope: str, key: str, value: Any, user: str
    ) -> Any: ...
    def settings_named(self, db: sqlite3.Connection, key: str) -> list[tuple[str, Any]]: ...


class SqliteEscalations(Protocol):
    def escalate_on_vote(
        self,
        db: sqlite3.Connection,
        answer_id: int,
        cast: Status | None,
        verdict: Status,
        now: float,
        explained: bool = False,
    ) -> int | None: ...
    def resolve_escalation(
        self, db: sqlite3.Connection, channel: str, ts: str, user: str, message: str
    ) -> Resolution: ...
    def escalation_view(self, db: sqlite3.Connection, answer_id: int) -> EscalationView: ...
    def escalation_of(self, db: sqlite3.Connection, answer_id: int) -> EscalationState | None: ...


class SqliteDigests(Protocol):
    def claim_digest(
        self,
        db: sqlite3.Connection,
        due: Sequence[DigestRun],
        now: float,
        owner: str,
        lease: float,
    ) -> DigestRun | None: ...
    def finish_digest(
        self,
        db: sqlite3.Connection,
        run_id: int,
        owner: str,
        state: DeliveryState,
        error: str | None,
        retry_at: float,
        ref: str | None,
    ) -> bool: ...
    def queue_digest(self, db: sqlite3.Connection, run: DigestRun) -> bool: ...
    def list_digests(self, db: sqlite3.Connection, limit: int = 10) -> list[DigestRecord]: ...
    def period_figures(
        self,
        db: sqlite3.Connection,
        channel: str | None,
        start: float,
        end: float,
        previous: float,
    ) -> PeriodFigures: ...


class SqliteKeys(Protocol):
    def provider_keys(self, db: sqlite3.Connection) -> dict[str, tuple[bytes, str]]: ...
    def set_provider_key(
        self, db: sqlite3.Connection, provider: str, ciphertext: bytes | None, last4: str, user: str
    ) -> None: ...


class SqliteEvents(Protocol):
    def data_version(self, db: sqlite3.Connection) -> int: ...
    # SQLite's one coroutine: it sends its probe to the connection's thread itself.
    async def health(self, connection: aiosqlite.Connection, by: str) -> list[str]: ...
    def mark_processed(self, db: sqlite3.Connection, event_id: str, now: float) -> bool: ...
    def prune_events(self, db: sqlite3.Connection, older_than: float) -> int: ...


class SqliteQuestions(Protocol):
    def claim_question(
        self, db: sqlite3.Connection, asking: Asking, holder: str, ttl: float
    ) -> Question: ...
    def finish_question(
        self, db: sqlite3.Connection, channel: str, ts: str, holder: str, end: QuestionEnd
    ) -> bool: ...
    def thread_conversation(
        self, db: sqlite3.Connection, channel: str, thread_ts: str
    ) -> tuple[str, str] | None: ...


class SqliteHeld(Protocol):
    def drop(self, db: sqlite3.Connection, channel: str, ts: str) -> int: ...
    def held_message(self, db: sqlite3.Connection, channel: str, ts: str) -> HeldMessage | None: ...
    def held_messages(self, db: sqlite3.Connection) -> list[HeldMessage]: ...
    def hold(
        self,
        db: sqlite3.Connection,
        channel: str,
        ts: str,
        change: VoteChange,
        event_id: str | None,
        now: float,
    ) -> None: ...
    def take_held(
        self, db: sqlite3.Connection, answer_id: int, channel: str, ts: str
    ) -> list[tuple[VoteChange, float]]: ...


class SqliteComposite(Protocol):
    def drop_held(self, db: sqlite3.Connection, channel: str, ts: str) -> tuple[int, bool]: ...
    def register(
        self,
        db: sqlite3.Connection,
        answer: Answer,
        provenance: Provenance | None = None,
        *,
        holder: str | None = None,
        replace_unvoted: bool = False,
    ) -> tuple[Registration, Answer, bool]: ...
    def remove_answer(
        self, db: sqlite3.Connection, channel: str, ts: str, reason: str
    ) -> Removal | None: ...
