"""Digests on PostgreSQL: the units of storage/sqlite/digests.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction.

What differs: replicas claim at once, so the claim takes its row FOR UPDATE SKIP LOCKED (two
replicas never take one run; the unique (scope, period, period_end) makes the second insert
of a due run a no-op), and booleans are summed as integers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from bot.domain import DeliveryState
from storage.models import DigestRecord, DigestRun, PeriodFigures
from storage.rows import (
    FIRST_AGENT,
    digest_record_from_row,
    digest_run_values,
    period_figures_from_rows,
)

DAY = 86400.0
_INSERT = (
    "INSERT INTO digest_runs (scope, period, period_start, period_end, channel, state,"
    " next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $6)"
    " ON CONFLICT (scope, period, period_end) DO NOTHING"
)


async def claim_digest(
    conn: asyncpg.Connection, due: Sequence[DigestRun], now: float, owner: str, lease: float
) -> DigestRun | None:
    if due:
        await conn.executemany(_INSERT, [(*digest_run_values(r), now) for r in due])
    row = await conn.fetchrow(
        "SELECT id, scope, period, period_start, period_end, channel, attempts"
        " FROM digest_runs WHERE (state = 'pending' AND next_attempt_at <= $1)"
        " OR (state = 'sending' AND lease_until <= $1) ORDER BY next_attempt_at, id LIMIT 1"
        " FOR UPDATE SKIP LOCKED",
        now,
    )
    if row is None:
        return None
    await conn.execute(
        "UPDATE digest_runs SET state = 'sending', attempts = attempts + 1, claimed_by = $1,"
        " lease_until = $2, updated_at = $3 WHERE id = $4",
        owner,
        now + lease,
        now,
        row[0],
    )
    return DigestRun(row[1], row[2], row[3], row[4], row[5], id=row[0], attempts=row[6] + 1)


async def finish_digest(
    conn: asyncpg.Connection,
    run_id: int,
    owner: str,
    state: DeliveryState,
    error: str | None,
    retry_at: float,
    ref: str | None,
) -> bool:
    now = time.time()
    status = await conn.execute(
        "UPDATE digest_runs SET state = $1, last_error = $2, ref = $3, next_attempt_at = $4,"
        " claimed_by = NULL, lease_until = NULL, updated_at = $5"
        " WHERE id = $6 AND state = 'sending' AND claimed_by = $7",
        state.value,
        error,
        ref,
        retry_at or now,
        now,
        run_id,
        owner,
    )
    return str(status) != "UPDATE 0"


async def queue_digest(conn: asyncpg.Connection, run: DigestRun) -> bool:
    status = await conn.execute(_INSERT, *digest_run_values(run), time.time())
    return str(status) != "INSERT 0 0"


async def list_digests(conn: asyncpg.Connection, limit: int = 10) -> list[DigestRecord]:
    rows = await conn.fetch(
        "SELECT id, scope, period, period_start, period_end, channel, attempts, state,"
        " last_error, updated_at FROM digest_runs ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [digest_record_from_row(r) for r in rows]


async def period_figures(
    conn: asyncpg.Connection, channel: str | None, start: float, end: float, previous: float
) -> PeriodFigures:
    """storage.sqlite.digests.period_figures."""
    # $1 and $2 are the period's bounds in every query; $3 the channel, when one is given.
    where = "" if channel is None else " AND a.channel = $3"
    scope: tuple[Any, ...] = () if channel is None else (channel,)
    verdicts = await conn.fetch(
        f"SELECT a.channel, {FIRST_AGENT}, floor((v.cast_at - $1) / {DAY})::int, count(*),"
        " sum((v.status = 'thumbs_up')::int) FROM votes v JOIN answers a ON a.id = v.answer_id"
        " WHERE v.content_id = '' AND v.withdrawn_at IS NULL AND v.cast_at >= $1"
        " AND v.cast_at < $2 AND v.id = (SELECT max(w.id) FROM votes w"
        "   WHERE w.answer_id = v.answer_id AND w.content_id = '' AND w.withdrawn_at IS NULL)"
        f"{where} GROUP BY 1, 2, 3",
        previous,
        end,
        *scope,
    )
    bounds = (start, end, *scope)
    cast = await conn.fetch(
        f"SELECT a.channel, {FIRST_AGENT}, count(*), count(DISTINCT v.answer_id) FROM votes v"
        f" JOIN answers a ON a.id = v.answer_id WHERE v.cast_at >= $1 AND v.cast_at < $2{where}"
        " GROUP BY 1, 2",
        *bounds,
    )
    categories = await conn.fetch(
        "SELECT v.category, count(*) FROM votes v JOIN answers a ON a.id = v.answer_id"
        " WHERE v.status IN ('thumbs_down', 'flagged') AND v.withdrawn_at IS NULL"
        f" AND v.category IS NOT NULL AND v.cast_at >= $1 AND v.cast_at < $2{where}"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        *bounds,
    )
    sources = await conn.fetch(
        "SELECT s.label, sum((v.status = 'thumbs_up')::int), sum((v.status != 'thumbs_up')::int)"
        " FROM votes v JOIN answers a ON a.id = v.answer_id JOIN answer_sources s"
        " ON s.answer_id = v.answer_id AND s.content_id = v.content_id"
        " WHERE v.content_id != '' AND v.withdrawn_at IS NULL AND v.cast_at >= $1"
        f" AND v.cast_at < $2{where} GROUP BY 1 HAVING sum((v.status != 'thumbs_up')::int) > 0"
        " ORDER BY 1.0 * sum((v.status = 'thumbs_up')::int) / count(*), 3 DESC, 1 LIMIT 5",
        *bounds,
    )
    only = "" if channel is None else " AND a.channel = $1"
    open_escalations = await conn.fetchval(
        "SELECT count(*) FROM escalations e JOIN answers a ON a.id = e.answer_id"
        f" WHERE e.resolved_at IS NULL AND a.removed_at IS NULL{only}",
        *scope,
    )
    resolved = await conn.fetch(
        "SELECT a.channel, a.ts, e.resolved_by, e.resolved_at FROM escalations e"
        " JOIN answers a ON a.id = e.answer_id WHERE e.resolved_at >= $1 AND e.resolved_at < $2"
        f"{where} ORDER BY e.resolved_at DESC LIMIT 10",
        *bounds,
    )
    dead = await conn.fetchval(
        "SELECT count(*) FROM deliveries d JOIN answers a ON a.id = d.answer_id"
        f" WHERE d.state = 'dead'{only}",
        *scope,
    )
    downvotes = (
        "SELECT a.channel, a.ts, v.user_id, v.status, v.category, v.explanation, v.cast_at"
        " FROM votes v JOIN answers a ON a.id = v.answer_id WHERE v.content_id = ''"
        " AND v.status IN ('thumbs_down', 'flagged') AND v.withdrawn_at IS NULL"
        f" AND v.cast_at >= $1 AND v.cast_at < $2{where}"
    )
    explained = await conn.fetch(
        downvotes + " AND v.explanation IS NOT NULL ORDER BY v.id DESC LIMIT 5", *bounds
    )
    recent = await conn.fetch(downvotes + " ORDER BY v.id DESC LIMIT 5", *bounds)
    return period_figures_from_rows(
        verdicts,
        cast,
        categories,
        explained,
        recent,
        sources,
        int(open_escalations),
        resolved,
        int(dead),
        days=round((start - previous) / DAY),
    )
