"""Votes and settling on PostgreSQL: the units of storage/sqlite/votes.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction.

What differs: replicas are not serialised as SQLite's writers are, so every unit that changes
an answer's votes, or settles one of its slots, first locks the answer row (`_lock_answer`):
one vote at a time per answer, so one verdict change yields one delivery whichever replica
records it. The lock is FOR NO KEY UPDATE: it excludes every other locker of the row as FOR
UPDATE does, but not the foreign-key checks (FOR KEY SHARE) of rows that reference the
answer, so a claim turn writing the answer's deliveries never waits for a vote. Settling
also locks the slot's outbox rows it reads, so that a claim (which skips locked rows) and a
vote never act on the same row at once.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import asyncpg

from bot.domain import (
    WHOLE_ANSWER,
    AnswerRef,
    SlotVerdict,
    Status,
    StoredVote,
    Verdict,
    VoteChange,
    VoteResult,
    verdict,
)
from storage.postgres.db import DELIVERIES_CHANNEL
from storage.postgres.escalations import escalate_on_vote
from storage.postgres.events import mark_processed
from storage.postgres.held import hold as hold_reaction
from storage.postgres.held import lock_message
from storage.rows import (
    EXPORT_COLUMNS,
    EXPORT_FROM,
    TARGET_NAME,
    slot_row,
    slot_verdict,
    standing_vote,
    stored_vote_from_row,
    vote_from_row,
    vote_stats_from_rows,
)
from storage.rules import settle, vote_step

__all__ = [
    "EXPORT_COLUMNS",
    "apply_vote",
    "apply_vote_to_message",
    "change_vote",
    "count_votes",
    "explain_vote",
    "export_page",
    "get_vote",
    "queue_verdict_change",
    "slot_verdicts",
    "vote_stats",
    "votes_by",
]


async def _lock_answer(conn: asyncpg.Connection, answer_id: int) -> None:
    await conn.execute("SELECT id FROM answers WHERE id = $1 FOR NO KEY UPDATE", answer_id)


async def apply_vote(
    conn: asyncpg.Connection, change: VoteChange, *, dedupe_key: str | None = None
) -> VoteResult:
    """storage.sqlite.votes.apply_vote: the dedupe mark first (a redelivered event waits on it,
    then changes nothing), then the answer's lock."""
    now = time.time()
    if dedupe_key is not None and not await mark_processed(conn, dedupe_key, now):
        return VoteResult(duplicate=True)
    await _lock_answer(conn, change.answer_id)
    return await change_vote(conn, change, now)


async def change_vote(
    conn: asyncpg.Connection, change: VoteChange, now: float, cast_at: float | None = None
) -> VoteResult:
    """storage.sqlite.votes.change_vote (storage/rules.py: vote_step). The caller holds the
    answer row's lock (apply_vote, apply_vote_to_message, and the registration that applies
    held reactions lock it), so the standing vote read here cannot change before it is
    replaced."""
    row = await conn.fetchrow(
        "SELECT id, status FROM votes WHERE answer_id = $1 AND content_id = $2"
        " AND user_id = $3 AND origin = $4 AND withdrawn_at IS NULL",
        change.answer_id,
        change.content_id,
        change.user,
        change.origin,
    )
    step = vote_step(change, standing_vote(row), now, cast_at)
    if not step.changed:
        return VoteResult(vote_id=step.kept, standing=step.standing)
    if step.withdraw is not None:
        await conn.execute("UPDATE votes SET withdrawn_at = $1 WHERE id = $2", now, step.withdraw)
    vote_id = None
    if step.cast is not None:
        vote_id = await conn.fetchval(
            "INSERT INTO votes (answer_id, content_id, user_id, origin, status, cast_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            change.answer_id,
            change.content_id,
            change.user,
            change.origin,
            step.cast.value,
            step.cast_at,
        )
    new, delivery_id = await queue_verdict_change(conn, change.answer_id, change.content_id, now)
    if change.content_id == WHOLE_ANSWER:
        await escalate_on_vote(conn, change.answer_id, step.cast, new.status, now)
    return VoteResult(vote_id=vote_id, standing=step.standing, verdict=new, delivery_id=delivery_id)


async def apply_vote_to_message(
    conn: asyncpg.Connection,
    channel: str,
    ts: str,
    change: VoteChange,
    *,
    dedupe_key: str | None = None,
    hold: bool = False,
) -> tuple[AnswerRef | None, VoteResult]:
    """storage.sqlite.votes.apply_vote_to_message. The answer is looked up with its row locked (no
    answer there: no lock is taken), then the dedupe mark, then the change. Holding takes
    the message's lock (storage/postgres/held.py: lock_message) before it looks again, as
    registering takes it: a registration committed meanwhile is then seen, and one that
    comes later takes what was held."""
    answer = await _answer_on(conn, channel, ts)
    now = time.time()
    if answer is None and hold:
        await lock_message(conn, channel, ts)
        if dedupe_key is not None and not await mark_processed(conn, dedupe_key, now):
            return None, VoteResult(duplicate=True)
        answer = await _answer_on(conn, channel, ts)
        if answer is not None:
            return answer, await change_vote(conn, replace(change, answer_id=answer.id), now)
        if await _is_a_prompt(conn, channel, ts):
            return None, VoteResult()  # the bot's own "Was this helpful?" reply
        await hold_reaction(conn, channel, ts, change, dedupe_key, now)
        return None, VoteResult(held=True)
    if answer is None:
        return None, VoteResult()
    if dedupe_key is not None and not await mark_processed(conn, dedupe_key, now):
        return answer, VoteResult(duplicate=True)
    return answer, await change_vote(conn, replace(change, answer_id=answer.id), now)


async def _answer_on(conn: asyncpg.Connection, channel: str, ts: str) -> AnswerRef | None:
    """The live answer on the message, its row locked. A removal committed meanwhile makes
    it find nothing, as SQLite would after the removal."""
    row = await conn.fetchrow(
        "SELECT id, thread_ts FROM answers WHERE channel = $1 AND ts = $2"
        " AND removed_at IS NULL FOR NO KEY UPDATE",
        channel,
        ts,
    )
    return AnswerRef(row["id"], row["thread_ts"]) if row else None


async def _is_a_prompt(conn: asyncpg.Connection, channel: str, ts: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM answers WHERE channel = $1 AND prompt_ts = $2 AND removed_at IS NULL",
        channel,
        ts,
    )
    return found is not None


async def get_vote(conn: asyncpg.Connection, vote_id: int) -> StoredVote | None:
    row = await conn.fetchrow(
        "SELECT id, answer_id, content_id, user_id, origin, status, explanation,"
        " category, withdrawn_at IS NULL AS standing FROM votes WHERE id = $1",
        vote_id,
    )
    return stored_vote_from_row(row) if row else None


async def explain_vote(
    conn: asyncpg.Connection, vote_id: int, explanation: str | None, category: str | None
) -> VoteResult:
    """storage.sqlite.votes.explain_vote, with the vote's answer locked first."""
    now = time.time()
    await conn.execute(
        "SELECT a.id FROM votes v JOIN answers a ON a.id = v.answer_id WHERE v.id = $1"
        " FOR NO KEY UPDATE OF a",
        vote_id,
    )
    row = await conn.fetchrow(
        "UPDATE votes SET explanation = $1, category = $2"
        " WHERE id = $3 AND withdrawn_at IS NULL"
        " RETURNING answer_id, content_id, status",
        explanation,
        category,
        vote_id,
    )
    if row is None:
        return VoteResult()
    new, delivery_id = await queue_verdict_change(conn, row["answer_id"], row["content_id"], now)
    if row["content_id"] == WHOLE_ANSWER:
        status = Status(row["status"])
        await escalate_on_vote(conn, row["answer_id"], status, new.status, now, explained=True)
    return VoteResult(
        vote_id=vote_id,
        standing=Status(row["status"]),
        verdict=new,
        delivery_id=delivery_id,
    )


async def export_page(
    conn: asyncpg.Connection,
    after_id: int,
    since: float | None,
    until: float | None,
    channel: str | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """storage.sqlite.votes.export_page (EXPORT_COLUMNS as SQLite's: the orphaned flag comes back
    as a bool here, 0/1 there; bot/votes/export.py reads it with bool())."""
    where = ["v.id > $1"]
    params: list[Any] = [after_id]
    if since is not None:
        params.append(since)
        where.append(f"v.cast_at >= ${len(params)}")
    if until is not None:
        params.append(until)
        where.append(f"v.cast_at < ${len(params)}")
    if channel is not None:
        params.append(channel)
        where.append(f"a.channel = ${len(params)}")
    params.append(limit)
    rows = await conn.fetch(
        f"SELECT {EXPORT_COLUMNS}, (SELECT string_agg({TARGET_NAME}, ' ' ORDER BY t2.position)"
        f" FROM answer_targets t2 WHERE t2.answer_id = a.id) FROM {EXPORT_FROM}"
        f" WHERE {' AND '.join(where)} ORDER BY v.id LIMIT ${len(params)}",
        *params,
    )
    return [tuple(r) for r in rows]


async def count_votes(conn: asyncpg.Connection, answer_id: int) -> int:
    n = await conn.fetchval("SELECT count(*) FROM votes WHERE answer_id = $1", answer_id)
    return int(n)


async def slot_verdicts(conn: asyncpg.Connection, answer_id: int) -> list[SlotVerdict]:
    """storage.sqlite.votes.slot_verdicts, in one query. Ordered by content_id in byte order
    (COLLATE "C"), as SQLite orders text, whatever the database's collation."""
    rows = await conn.fetch(
        "SELECT g.content_id, g.standing, n.status FROM ("
        "  SELECT content_id, count(*) FILTER (WHERE withdrawn_at IS NULL) AS standing,"
        "   max(id) FILTER (WHERE withdrawn_at IS NULL) AS newest"
        "  FROM votes WHERE answer_id = $1 GROUP BY content_id) AS g"
        ' LEFT JOIN votes n ON n.id = g.newest ORDER BY g.content_id COLLATE "C"',
        answer_id,
    )
    return [slot_verdict(r["content_id"], r["status"], r["standing"]) for r in rows]


async def vote_stats(
    conn: asyncpg.Connection, channel: str | None, since: float
) -> dict[str, dict[str, int]]:
    """storage.sqlite.votes.vote_stats."""
    where = "v.cast_at >= $1"
    params: list[Any] = [since]
    if channel is not None:
        where += " AND a.channel = $2"
        params.append(channel)
    rows = await conn.fetch(
        "SELECT v.status, count(*), count(*) FILTER (WHERE v.withdrawn_at IS NULL) FROM votes v"
        f" JOIN answers a ON a.id = v.answer_id WHERE {where}"
        ' GROUP BY v.status ORDER BY v.status COLLATE "C"',
        *params,
    )
    return vote_stats_from_rows(rows)


async def queue_verdict_change(
    conn: asyncpg.Connection, answer_id: int, content_id: str, now: float
) -> tuple[Verdict, int | None]:
    """storage.sqlite.votes.queue_verdict_change (storage/rules.py: settle). The caller holds
    the answer row's lock. The slot's recent outbox rows are read FOR UPDATE: a row a claim
    is taking meanwhile is waited for and then seen as sending (never superseded in
    flight), and a claim skips the rows locked here. A pending row queued is announced with
    NOTIFY (delivered at COMMIT) so that the workers of every replica wake."""
    newest = [
        vote_from_row(r)
        for r in await conn.fetch(
            "SELECT id, user_id, status, explanation, category FROM votes"
            " WHERE answer_id = $1 AND content_id = $2 AND withdrawn_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            answer_id,
            content_id,
        )
    ]
    new = verdict(newest)
    if content_id == WHOLE_ANSWER:
        targets = await conn.fetch(
            "SELECT position FROM answer_targets WHERE answer_id = $1 ORDER BY position",
            answer_id,
        )
    else:
        targets = await conn.fetch(
            "SELECT target FROM answer_sources WHERE answer_id = $1 AND content_id = $2",
            answer_id,
            content_id,
        )
    first: int | None = None
    for (target,) in targets:
        queued = await _settle_target(conn, answer_id, target, content_id, new, now)
        if first is None:
            first = queued
    if first is not None:
        await conn.execute("SELECT pg_notify($1, '')", DELIVERIES_CHANNEL)
    return new, first


async def _settle_target(
    conn: asyncpg.Connection,
    answer_id: int,
    target: int,
    content_id: str,
    new: Verdict,
    now: float,
) -> int | None:
    """Settle the slot for one of its targets; the id of the row queued, if any."""
    recent = await conn.fetch(
        "SELECT id, state, status, explanation, category FROM deliveries"
        " WHERE answer_id = $1 AND target = $2 AND content_id = $3"
        " AND state IN ('pending', 'sending', 'delivered', 'skipped')"
        " ORDER BY id DESC LIMIT 3 FOR UPDATE",
        answer_id,
        target,
        content_id,
    )
    settlement = settle(new, [slot_row(r) for r in recent])
    if settlement.supersede:
        await conn.execute(
            "UPDATE deliveries SET state = 'superseded', updated_at = $1"
            " WHERE id = ANY($2::bigint[])",
            now,
            list(settlement.supersede),
        )
    if not settlement.queue:
        return None
    delivery_id = await conn.fetchval(
        "INSERT INTO deliveries (answer_id, target, content_id, status, explanation, category,"
        " next_attempt_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) RETURNING id",
        answer_id,
        target,
        content_id,
        new.status.value,
        new.explanation,
        new.category,
        now,
    )
    return int(delivery_id)


async def votes_by(conn: asyncpg.Connection, user: str) -> int:
    count = await conn.fetchval(
        "SELECT count(*) FROM votes WHERE user_id = $1 AND withdrawn_at IS NULL", user
    )
    return int(count)
