"""Escalations on PostgreSQL: the units of storage/sqlite/escalations.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction.

What differs: the units lock the answer's row first, as votes do (storage/postgres/votes.py),
so a vote and a "Resolved" click on one answer take turns on every replica; the queued
escalation rows are read FOR UPDATE before they are superseded (a claim skips rows locked
here), and a new row is announced with NOTIFY so that every replica's worker wakes.
"""

from __future__ import annotations

import time

import asyncpg

from bot.domain import ESCALATION, WHOLE_ANSWER, Status, Triage
from storage.models import Ballot, EscalationState, EscalationView, Resolution
from storage.postgres.config import config_values
from storage.postgres.db import DELIVERIES_CHANNEL
from storage.rules import (
    BALLOTS,
    ESCALATE_SETTING,
    ESCALATION_TRIED,
    WORKSPACE_SCOPE,
    EscalationStep,
    escalation_step,
    triage_setting,
)


async def escalate_on_vote(
    conn: asyncpg.Connection,
    answer_id: int,
    cast: Status | None,
    verdict: Status,
    now: float,
    explained: bool = False,
) -> int | None:
    """storage.sqlite.escalations.escalate_on_vote; the caller holds the answer's lock."""
    row = await conn.fetchrow(
        "SELECT resolved_at IS NOT NULL FROM escalations WHERE answer_id = $1", answer_id
    )
    step = escalation_step(cast, None if row is None else bool(row[0]), explained=explained)
    if step is EscalationStep.NONE:
        return None
    if step is EscalationStep.OPEN:
        channel = await conn.fetchval("SELECT channel FROM answers WHERE id = $1", answer_id)
        if await _triage_of(conn, channel) is None:
            return None
        await conn.execute(
            "INSERT INTO escalations (answer_id, opened_at) VALUES ($1, $2)", answer_id, now
        )
    elif step is EscalationStep.REOPEN:
        await conn.execute(
            "UPDATE escalations SET resolved_by = NULL, resolved_at = NULL WHERE answer_id = $1",
            answer_id,
        )
    return await _queue(conn, answer_id, verdict, now)


async def _triage_of(conn: asyncpg.Connection, channel: str) -> Triage | None:
    values = await config_values(conn, [channel, WORKSPACE_SCOPE])
    return triage_setting(
        [(scope, v) for scope, key, v in values if key == ESCALATE_SETTING], channel
    )


async def _queue(conn: asyncpg.Connection, answer_id: int, verdict: Status, now: float) -> int:
    pending = await conn.fetch(
        "SELECT id FROM deliveries WHERE answer_id = $1 AND target = $2 AND content_id = ''"
        " AND state = 'pending' FOR UPDATE",
        answer_id,
        ESCALATION,
    )
    if pending:
        await conn.execute(
            "UPDATE deliveries SET state = 'superseded', updated_at = $1"
            " WHERE id = ANY($2::bigint[])",
            now,
            [r[0] for r in pending],
        )
    delivery_id = await conn.fetchval(
        "INSERT INTO deliveries (answer_id, target, content_id, status, next_attempt_at,"
        " created_at, updated_at) VALUES ($1, $2, '', $3, $4, $4, $4) RETURNING id",
        answer_id,
        ESCALATION,
        verdict.value,
        now,
    )
    await conn.execute("SELECT pg_notify($1, '')", DELIVERIES_CHANNEL)
    return int(delivery_id)


async def resolve_escalation(
    conn: asyncpg.Connection, channel: str, ts: str, user: str, message: str
) -> Resolution:
    """storage.sqlite.escalations.resolve_escalation, with the answer locked first."""
    now = time.time()
    answer_id = await conn.fetchval(
        "SELECT id FROM answers WHERE channel = $1 AND ts = $2 AND removed_at IS NULL"
        " FOR NO KEY UPDATE",
        channel,
        ts,
    )
    if answer_id is None:
        return Resolution.NOT_ESCALATED
    row = await conn.fetchrow("SELECT resolved_at FROM escalations WHERE answer_id = $1", answer_id)
    if row is None or await _posted(conn, answer_id) != message:
        return Resolution.NOT_ESCALATED
    if row[0] is not None:
        return Resolution.ALREADY
    await conn.execute(
        "UPDATE escalations SET resolved_by = $1, resolved_at = $2 WHERE answer_id = $3",
        user,
        now,
        answer_id,
    )
    status = await conn.fetchval(
        "SELECT status FROM votes WHERE answer_id = $1 AND content_id = ''"
        " AND withdrawn_at IS NULL ORDER BY id DESC LIMIT 1",
        answer_id,
    )
    await _queue(conn, answer_id, Status(status) if status else Status.REMOVED, now)
    return Resolution.RESOLVED


async def _posted(conn: asyncpg.Connection, answer_id: int) -> str | None:
    ref = await conn.fetchval(
        "SELECT provider_ref FROM deliveries WHERE answer_id = $1 AND target = $2"
        " AND state = 'delivered' AND provider_ref IS NOT NULL ORDER BY id DESC LIMIT 1",
        answer_id,
        ESCALATION,
    )
    return str(ref) if ref is not None else None


async def escalation_view(conn: asyncpg.Connection, answer_id: int) -> EscalationView:
    """storage.sqlite.escalations.escalation_view."""
    channel = await conn.fetchval("SELECT channel FROM answers WHERE id = $1", answer_id)
    state = await conn.fetchrow(
        "SELECT opened_at, resolved_by, resolved_at FROM escalations WHERE answer_id = $1",
        answer_id,
    )
    posted = await _posted(conn, answer_id)
    unsure = await conn.fetchval(
        f"SELECT 1 FROM deliveries WHERE answer_id = $1 AND target = $2 AND {ESCALATION_TRIED}"
        " LIMIT 1",
        answer_id,
        ESCALATION,
    )
    counts = {
        Status(r[0]): int(r[1])
        for r in await conn.fetch(
            "SELECT status, count(*) FROM votes WHERE answer_id = $1 AND content_id = $2"
            " AND withdrawn_at IS NULL GROUP BY status",
            answer_id,
            WHOLE_ANSWER,
        )
    }
    ballots = tuple(
        Ballot(r[0], Status(r[1]), r[2], r[3], r[4])
        for r in await conn.fetch(
            "SELECT user_id, status, explanation, category, cast_at FROM votes"
            " WHERE answer_id = $1 AND content_id = $2 AND withdrawn_at IS NULL"
            " AND status IN ('thumbs_down', 'flagged') ORDER BY id DESC LIMIT $3",
            answer_id,
            WHOLE_ANSWER,
            BALLOTS,
        )
    )
    return EscalationView(
        triage=await _triage_of(conn, channel),
        message=posted,
        maybe_posted=posted is None and unsure is not None,
        opened_at=state[0] if state else None,
        resolved_by=state[1] if state else None,
        resolved_at=state[2] if state else None,
        counts=counts,
        ballots=ballots,
    )


async def escalation_of(conn: asyncpg.Connection, answer_id: int) -> EscalationState | None:
    """storage.sqlite.escalations.escalation_of."""
    row = await conn.fetchrow(
        "SELECT opened_at, resolved_by, resolved_at, (SELECT provider_ref FROM deliveries"
        "   WHERE answer_id = e.answer_id AND target = $1 AND state = 'delivered'"
        "   ORDER BY id DESC LIMIT 1) FROM escalations e WHERE answer_id = $2",
        ESCALATION,
        answer_id,
    )
    return EscalationState(row[0], row[1], row[2], row[3]) if row else None
