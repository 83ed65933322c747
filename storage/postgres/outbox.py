"""The delivery outbox on PostgreSQL: the units of storage/sqlite/outbox.py (the rules that keep a
slot in order are in its docstrings and in storage/rules.py), async over an asyncpg connection
in the facade's transaction.

What differs: SQLite's BEGIN IMMEDIATE made one claimer, and one writer, at a time. Here
claims take an advisory lock (CLAIM_LOCK: one claimer at a time across replicas) and the
rows they claim FOR UPDATE … SKIP LOCKED (a row a vote is settling right now waits for the
next turn). A unit that decides a row's next state from what else its slot holds locks the
rows it will write first, in id order (so that two such units cannot deadlock), and only
then reads: a vote settling the slot meanwhile (storage/postgres/votes.py locks the slot's
rows it reads) is waited for and seen. A claim turn never waits for an answer's lock while
it holds outbox rows (see finish_and_claim).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from bot.domain import Delivery, DeliveryState
from storage.models import Claim, DeliveryCounts, Finished
from storage.postgres.answers import ANSWER_COLUMNS
from storage.postgres.db import CLAIM_LOCK, count
from storage.rows import (
    COUNTS_BY_PROVIDER,
    DELIVERY_FIELDS,
    claimed_from_row,
    delivery_counts_from_rows,
    delivery_from_row,
)
from storage.rules import (
    CUT_OFF,
    NEVER_SENT,
    REMOVED_BEFORE_RETRY,
    Outcome,
    QueueFacts,
    StoredOutcome,
    already_recorded,
    goes_back,
    lease_end,
    outcome,
    owned_sends,
    renewal_due_before,
    requeue_outcome,
    requeue_state,
    tally,
)

__all__ = [
    "cancel_pending",
    "claim_due",
    "delivery_counts",
    "finish_and_claim",
    "last_delivered_at",
    "list_deliveries",
    "release",
    "retry_dead",
]

_DELIVERY_COLUMNS = f"{DELIVERY_FIELDS}, {ANSWER_COLUMNS}"


async def finish_and_claim(
    conn: asyncpg.Connection,
    finished: Sequence[Finished],
    now: float,
    limit: int,
    *,
    owner: str,
    lease: float,
    in_flight: Collection[int] = (),
) -> Claim:
    """storage.sqlite.outbox.finish_and_claim, under CLAIM_LOCK. The sending rows this turn may
    write (its finished sends and orphans, its leases to renew, the expired leases) are locked
    first, in id order, and only those are written. Before that, their answers are locked
    FOR KEY SHARE: a row written twice in one transaction (a retry, an orphan or a
    recovered send claimed again at once) has its foreign key checked again (a KEY SHARE
    lock on the answer). The answer locks of votes and removals are FOR NO KEY UPDATE,
    which that check passes; were one FOR UPDATE, the wait happens here, before any row
    lock, where it cannot close a cycle with a vote waiting on our rows."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", CLAIM_LOCK)
    renew_before = renewal_due_before(now, lease)
    touched = (
        "state = 'sending' AND ((claimed_by = $1 AND (id = ANY($5::bigint[])"
        " OR NOT id = ANY($2::bigint[]) OR lease_until < $3::float8))"
        " OR lease_until <= $4::float8)"
    )
    args = (owner, sorted(in_flight), renew_before, now, [f.delivery_id for f in finished])
    answer_ids = [
        r[0]
        for r in await conn.fetch(
            f"SELECT id FROM answers WHERE id IN (SELECT answer_id FROM deliveries"
            f" WHERE {touched}) ORDER BY id FOR KEY SHARE",
            *args,
        )
    ]
    locked = [
        r[0]
        for r in await conn.fetch(
            f"SELECT id FROM deliveries WHERE {touched} AND answer_id = ANY($6::bigint[])"
            " ORDER BY id FOR UPDATE",
            *args,
            answer_ids,
        )
    ]
    superseded, lost = await _record_finished(conn, finished, now, owner)
    mine = {
        int(r[0])
        for r in await conn.fetch(
            "SELECT id FROM deliveries WHERE id = ANY($1::bigint[]) AND state = 'sending'"
            " AND claimed_by = $2",
            locked,
            owner,
        )
    }
    owned = owned_sends(mine, in_flight, (f.delivery_id for f in finished))
    # Those in flight were locked (and are written) only if their renewal was due.
    await conn.execute(
        "UPDATE deliveries SET lease_until = $1::float8 WHERE id = ANY($2::bigint[])",
        lease_end(now, lease),
        owned.renew,
    )
    orphaned = await _requeue(conn, owned.orphans, now, NEVER_SENT)
    expired = [
        int(r[0])
        for r in await conn.fetch(
            "SELECT id FROM deliveries WHERE id = ANY($2::bigint[]) AND state = 'sending'"
            " AND lease_until <= $1::float8 ORDER BY id",
            now,
            locked,
        )
    ]
    recovered = await _requeue(conn, expired, now, CUT_OFF)
    rows = await claim_due(conn, now, limit, owner, lease_end(now, lease)) if limit > 0 else []
    later = await conn.fetchval(
        "SELECT min(next_attempt_at) FROM deliveries"
        " WHERE state = 'pending' AND next_attempt_at > $1::float8",
        now,
    )
    claimed = [claimed_from_row(r) for r in rows]
    return Claim(
        claimed, later, frozenset(superseded), recovered, frozenset(lost), orphaned=orphaned
    )


async def claim_due(
    conn: asyncpg.Connection, now: float, limit: int, owner: str, lease_until: float
) -> list[asyncpg.Record]:
    """storage.sqlite.outbox.claim_due. Runs inside finish_and_claim, under CLAIM_LOCK: claimers
    take turns, and each turn's statements see the claims committed before it. Rows locked
    by a vote settling their slot are skipped this turn."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
        " JOIN answers a ON a.id = d.answer_id AND a.removed_at IS NULL"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= $1::float8"
        " AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.answer_id = d.answer_id"
        "   AND s.target = d.target AND s.content_id = d.content_id AND (s.state = 'sending'"
        "   OR (s.id > d.id AND s.state != 'superseded')))"
        " ORDER BY d.next_attempt_at, d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED",
        now,
        limit,
    )
    if rows:
        await conn.execute(
            "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, claimed_by = $1,"
            " lease_until = $2::float8, sent_at = $3::float8, updated_at = $3::float8"
            " WHERE id = ANY($4::bigint[])",
            owner,
            lease_until,
            now,
            [r["delivery_id"] for r in rows],
        )
    return list(rows)


async def _record_finished(
    conn: asyncpg.Connection, finished: Sequence[Finished], now: float, owner: str
) -> tuple[set[int], set[int]]:
    """storage.sqlite.outbox._record_finished; the rows are locked by the caller."""
    results: list[tuple[int, Outcome, bool]] = []
    for f in finished:
        facts = await _queue_facts(conn, f.delivery_id) if goes_back(f) else None
        recorded = outcome(f, facts)
        status = await conn.execute(
            "UPDATE deliveries SET state = $1, last_error = $2, provider_ref = $3,"
            " next_attempt_at = CASE WHEN $4::float8 > 0 THEN $4::float8"
            " ELSE next_attempt_at END,"
            " claimed_by = NULL, lease_until = NULL, updated_at = $5::float8"
            " WHERE id = $6 AND state = 'sending' AND claimed_by = $7",
            recorded.state.value,
            recorded.error,
            f.ref,
            f.retry_at,
            now,
            f.delivery_id,
            owner,
        )
        counts = count(status) > 0 or already_recorded(
            await _stored(conn, f.delivery_id), recorded, f.ref
        )
        results.append((f.delivery_id, recorded, counts))
    return tally(results)


async def _stored(conn: asyncpg.Connection, delivery_id: int) -> StoredOutcome | None:
    row = await conn.fetchrow(
        "SELECT state, last_error, provider_ref FROM deliveries WHERE id = $1", delivery_id
    )
    return (row[0], row[1], row[2]) if row else None


async def _queue_facts(conn: asyncpg.Connection, delivery_id: int) -> QueueFacts:
    """storage.sqlite.outbox._queue_facts."""
    row = await conn.fetchrow(
        "SELECT a.removed_at IS NOT NULL, EXISTS (SELECT 1 FROM deliveries n"
        "   WHERE n.answer_id = d.answer_id AND n.target = d.target"
        "   AND n.content_id = d.content_id AND n.id > d.id"
        "   AND n.state != 'superseded')"
        " FROM deliveries d JOIN answers a ON a.id = d.answer_id WHERE d.id = $1",
        delivery_id,
    )
    return QueueFacts(bool(row[0]), bool(row[1])) if row else QueueFacts(False, False)


async def _requeue(conn: asyncpg.Connection, ids: Sequence[int], now: float, why: str) -> int:
    """storage.sqlite.outbox._requeue, over rows the caller locked."""
    for delivery_id in ids:
        state, reason = requeue_outcome(await _queue_facts(conn, delivery_id), why)
        await conn.execute(
            "UPDATE deliveries SET state = $1, next_attempt_at = $2::float8, claimed_by = NULL,"
            " lease_until = NULL, updated_at = $2::float8,"
            " last_error = CASE WHEN $1 = 'skipped' THEN $3 ELSE coalesce(last_error, $3) END"
            " WHERE id = $4",
            state.value,
            now,
            reason,
            delivery_id,
        )
    return len(ids)


async def release(conn: asyncpg.Connection, owner: str, lease: float) -> int:
    """storage.sqlite.outbox.release (SQLite's scalar min() is LEAST here). The rows are locked in
    id order first, as finish_and_claim locks them."""
    await conn.execute(
        "SELECT id FROM deliveries WHERE state = 'sending' AND claimed_by = $1"
        " ORDER BY id FOR UPDATE",
        owner,
    )
    return count(
        await conn.execute(
            "UPDATE deliveries SET lease_until = LEAST(lease_until, sent_at + $1::float8)"
            " WHERE state = 'sending' AND claimed_by = $2",
            lease,
            owner,
        )
    )


async def list_deliveries(
    conn: asyncpg.Connection,
    states: Sequence[DeliveryState] = (),
    limit: int = 50,
    answer_id: int | None = None,
) -> list[Delivery]:
    conditions = []
    params: list[Any] = []
    if states:
        params.append([s.value for s in states])
        conditions.append(f"d.state = ANY(${len(params)}::text[])")
    if answer_id is not None:
        params.append(answer_id)
        conditions.append(f"d.answer_id = ${len(params)}")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
        f" JOIN answers a ON a.id = d.answer_id {where} ORDER BY d.id DESC LIMIT ${len(params)}",
        *params,
    )
    return [delivery_from_row(r) for r in rows]


async def cancel_pending(conn: asyncpg.Connection, answer_id: int, reason: str, now: float) -> int:
    """storage.sqlite.outbox.cancel_pending. The caller holds the answer row's lock. The answer's
    pending and sending rows are locked first, in id order: a send finishing meanwhile
    (which may put its row back in the queue) is waited for, and its row cancelled too."""
    await conn.execute(
        "SELECT id FROM deliveries WHERE answer_id = $1 AND state IN ('pending', 'sending')"
        " ORDER BY id FOR UPDATE",
        answer_id,
    )
    return count(
        await conn.execute(
            "UPDATE deliveries SET state = 'skipped', last_error = $1, updated_at = $2::float8"
            " WHERE answer_id = $3 AND state = 'pending'",
            reason,
            now,
            answer_id,
        )
    )


async def retry_dead(conn: asyncpg.Connection, ids: Sequence[int] = ()) -> tuple[int, int]:
    """storage.sqlite.outbox.retry_dead. Requeueing settles a slot, so the answers of the dead rows
    are locked first (in id order), as a vote locks its answer: a vote queueing a newer
    verdict meanwhile is waited for, then supersedes the requeued row or is seen here."""
    now = time.time()
    where = "state = 'dead'"
    params: list[Any] = []
    if ids:
        where += " AND id = ANY($1::bigint[])"
        params = [list(ids)]
    candidates = await conn.fetch(
        f"SELECT id, answer_id FROM deliveries WHERE {where} ORDER BY id", *params
    )
    if not candidates:
        return 0, 0
    await conn.execute(
        "SELECT id FROM answers WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        sorted({r["answer_id"] for r in candidates}),
    )
    dead = [
        int(r[0])
        for r in await conn.fetch(
            "SELECT id FROM deliveries WHERE state = 'dead' AND id = ANY($1::bigint[]) ORDER BY id",
            [r["id"] for r in candidates],
        )
    ]
    requeued = superseded = 0
    for delivery_id in dead:
        state = requeue_state(await _queue_facts(conn, delivery_id))
        if state is DeliveryState.SKIPPED:
            await conn.execute(
                "UPDATE deliveries SET state = 'skipped', last_error = $1, updated_at = $2::float8"
                " WHERE id = $3",
                REMOVED_BEFORE_RETRY,
                now,
                delivery_id,
            )
            continue
        if state is DeliveryState.SUPERSEDED:
            superseded += 1
        else:
            requeued += 1
        await conn.execute(
            "UPDATE deliveries SET state = $1, attempts = 0, next_attempt_at = $2::float8,"
            " updated_at = $2::float8 WHERE id = $3",
            state.value,
            now,
            delivery_id,
        )
    return requeued, superseded


async def delivery_counts(conn: asyncpg.Connection) -> DeliveryCounts:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),"
        " (SELECT count(*) FROM deliveries WHERE state = 'sending'),"
        " (SELECT count(*) FROM deliveries WHERE state = 'dead'),"
        " (SELECT min(created_at) FROM deliveries WHERE state = 'pending')"
    )
    # Ties broken as SQLite's plan breaks them (newest row first; the dead row first).
    err = await conn.fetchrow(
        "SELECT last_error FROM ("
        " (SELECT last_error, updated_at, 0 AS k FROM deliveries WHERE state = 'dead'"
        "   ORDER BY id DESC LIMIT 1)"
        " UNION ALL"
        " (SELECT last_error, updated_at, 1 FROM deliveries"
        "   WHERE state = 'pending' AND last_error IS NOT NULL"
        "   ORDER BY next_attempt_at DESC, id DESC LIMIT 1)"
        ") AS e ORDER BY updated_at DESC, k LIMIT 1"
    )
    return delivery_counts_from_rows(row, err, await conn.fetch(COUNTS_BY_PROVIDER))


async def last_delivered_at(conn: asyncpg.Connection, provider: str) -> float | None:
    """storage.sqlite.outbox.last_delivered_at."""
    updated = await conn.fetchval(
        "SELECT d.updated_at FROM deliveries d JOIN answer_targets t"
        " ON t.answer_id = d.answer_id AND t.position = d.target"
        " WHERE d.state = 'delivered' AND t.provider = $1 ORDER BY d.id DESC LIMIT 1",
        provider,
    )
    return float(updated) if updated is not None else None
