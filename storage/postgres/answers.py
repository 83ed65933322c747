"""Answers and post reservations on PostgreSQL: the units of storage/sqlite/answers.py (the rules
are in its docstrings), async over an asyncpg connection in the facade's transaction.

What differs: replicas are not serialised as SQLite's writers are, so registering relies on
the partial unique index (ON CONFLICT … DO NOTHING, then read the winner's row), removing
locks the answer row, and a reservation is decided with its row locked.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import asyncpg

from bot.domain import Answer, Provenance, Registration
from storage.models import MetadataRegistration, PostReservation, PostState
from storage.rows import (
    ANSWER_FIELDS,
    ANSWER_INSERT,
    ANSWER_INSERT_COUNT,
    TARGET_COLUMNS,
    TARGET_INSERT,
    TARGET_INSERT_COUNT,
    answer_from_row,
    answer_values,
    metadata_registration_from_row,
    source_values,
    target_values,
)

# The columns answer_from_row reads, with the sources aggregated the PostgreSQL way.
INSERT_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, ANSWER_INSERT_COUNT + 1))
TARGET_PLACEHOLDERS = ", ".join(f"${i}" for i in range(1, TARGET_INSERT_COUNT + 1))
ANSWER_COLUMNS = f"""{ANSWER_FIELDS},
    (SELECT json_agg(json_build_array({TARGET_COLUMNS}) ORDER BY t.position)::text
       FROM answer_targets t WHERE t.answer_id = a.id) AS targets,
    (SELECT coalesce(json_agg(json_build_array(s.content_id, s.label, s.target)
                              ORDER BY s.position), '[]'::json)::text
       FROM answer_sources s WHERE s.answer_id = a.id) AS sources
"""


async def find_answer(conn: asyncpg.Connection, channel: str, ts: str) -> Answer | None:
    row = await conn.fetchrow(
        f"SELECT {ANSWER_COLUMNS} FROM answers a"
        " WHERE a.channel = $1 AND a.ts = $2 AND a.removed_at IS NULL",
        channel,
        ts,
    )
    return answer_from_row(row) if row else None


async def find_answer_for_controls(
    conn: asyncpg.Connection, channel: str, ts: str
) -> Answer | None:
    """storage.sqlite.answers.find_answer_for_controls (the answer itself first)."""
    answer = await find_answer(conn, channel, ts)
    if answer is not None:
        return answer
    row = await conn.fetchrow(
        f"SELECT {ANSWER_COLUMNS} FROM answers a"
        " WHERE a.channel = $1 AND a.prompt_ts = $2 AND a.removed_at IS NULL",
        channel,
        ts,
    )
    return answer_from_row(row) if row else None


async def add_answer(
    conn: asyncpg.Connection, answer: Answer, provenance: Provenance | None = None
) -> tuple[Registration, Answer]:
    """storage.sqlite.answers.add_answer. Another replica may register the same message between
    our look and our insert: the insert then does nothing (it waits for that replica's
    transaction first), and we answer from the row it stored."""
    while True:
        existing = await find_answer(conn, answer.channel, answer.ts)
        if existing is not None:
            same = existing.same_mapping(answer)
            return (Registration.UNCHANGED if same else Registration.CONFLICT), existing
        answer_id = await conn.fetchval(
            f"INSERT INTO answers ({ANSWER_INSERT}) VALUES ({INSERT_PLACEHOLDERS})"
            " ON CONFLICT (channel, ts) WHERE removed_at IS NULL DO NOTHING RETURNING id",
            *answer_values(answer, provenance, time.time()),
        )
        if answer_id is not None:
            break
        # Nothing inserted: the row that won is committed now, and the next look sees it
        # (unless it was removed meanwhile: then we try again).
    await conn.executemany(
        f"INSERT INTO answer_targets ({TARGET_INSERT}) VALUES ({TARGET_PLACEHOLDERS})",
        target_values(int(answer_id), answer),
    )
    if answer.sources:
        await conn.executemany(
            "INSERT INTO answer_sources (answer_id, position, content_id, label, target)"
            " VALUES ($1, $2, $3, $4, $5)",
            source_values(int(answer_id), answer),
        )
    return Registration.CREATED, replace(answer, id=int(answer_id))


async def last_via_metadata(conn: asyncpg.Connection) -> MetadataRegistration | None:
    row = await conn.fetchrow(
        "SELECT channel, ts, created_at, registered_via, registered_by_app FROM answers"
        " WHERE registered_via IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    return metadata_registration_from_row(row) if row else None


async def list_answers(
    conn: asyncpg.Connection, channel: str | None, limit: int, before_id: int | None
) -> tuple[list[Answer], int | None]:
    """storage.sqlite.answers.list_answers."""
    where = ["a.removed_at IS NULL"]
    params: list[Any] = []
    if channel is not None:
        params.append(channel)
        where.append(f"a.channel = ${len(params)}")
    if before_id is not None:
        params.append(before_id)
        where.append(f"a.id < ${len(params)}")
    params.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {ANSWER_COLUMNS} FROM answers a WHERE {' AND '.join(where)}"
        f" ORDER BY a.id DESC LIMIT ${len(params)}",
        *params,
    )
    answers = [answer_from_row(r) for r in rows[:limit]]
    return answers, (answers[-1].id if len(rows) > limit else None)


async def mark_removed(
    conn: asyncpg.Connection, channel: str, ts: str, now: float
) -> Answer | None:
    """storage.sqlite.answers.mark_removed. The answer row is locked (FOR NO KEY UPDATE, as votes
    take it) as it is read, so that votes on it wait, and a replica removing it at the same
    time finds none."""
    row = await conn.fetchrow(
        f"SELECT {ANSWER_COLUMNS} FROM answers a"
        " WHERE a.channel = $1 AND a.ts = $2 AND a.removed_at IS NULL FOR NO KEY UPDATE OF a",
        channel,
        ts,
    )
    if row is None:
        return None
    await conn.execute("UPDATE answers SET removed_at = $1 WHERE id = $2", now, row["id"])
    return answer_from_row(row)


async def metadata_ts(conn: asyncpg.Connection, answer_id: int) -> float | None:
    value = await conn.fetchval("SELECT metadata_ts FROM answers WHERE id = $1", answer_id)
    return float(value) if value is not None else None


async def removed_answer(conn: asyncpg.Connection, channel: str, ts: str) -> Answer | None:
    row = await conn.fetchrow(
        f"SELECT {ANSWER_COLUMNS} FROM answers a WHERE a.channel = $1 AND a.ts = $2"
        " AND a.removed_at IS NOT NULL ORDER BY a.id DESC LIMIT 1",
        channel,
        ts,
    )
    return answer_from_row(row) if row else None


async def was_removed(conn: asyncpg.Connection, channel: str, ts: str) -> bool:
    return (
        await find_answer(conn, channel, ts) is None
        and await removed_answer(conn, channel, ts) is not None
    )


async def carry_prompt(conn: asyncpg.Connection, old: Answer, new: Answer) -> Answer:
    """storage.sqlite.answers.carry_prompt, inside the caller's transaction."""
    if old.prompt_ts is None:
        return new
    await conn.execute("UPDATE answers SET prompt_ts = NULL WHERE id = $1", old.id)
    await conn.execute("UPDATE answers SET prompt_ts = $1 WHERE id = $2", old.prompt_ts, new.id)
    return replace(new, prompt_ts=old.prompt_ts)


async def set_prompt_ts(conn: asyncpg.Connection, answer_id: int, prompt_ts: str) -> None:
    await conn.execute("UPDATE answers SET prompt_ts = $1 WHERE id = $2", prompt_ts, answer_id)


# ---------------------------------------------------------------- post reservations


async def reserve_post(
    conn: asyncpg.Connection, answer: Answer, holder: str, ttl: float
) -> PostReservation:
    """storage.sqlite.answers.reserve_post, decided with the reservation row locked: it is
    inserted if absent (a replica inserting it too waits for us), else locked FOR UPDATE.
    With the lock held, the posted answer is looked for again: a replica that posted and
    registered it since our first look dropped its reservation in that transaction."""
    key = _post_key(answer)
    now = time.time()
    posted = await _find_posted(conn, answer)
    if posted is not None:
        return PostReservation(PostState.POSTED, posted)
    # The expired rows of other posts are housekeeping: skip those another transaction
    # holds rather than wait (two of these waiting on each other's rows would deadlock).
    await conn.execute(
        "DELETE FROM post_reservations p USING (SELECT channel, provider, target"
        " FROM post_reservations WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED) e"
        " WHERE (p.channel, p.provider, p.target) = (e.channel, e.provider, e.target)",
        now,
    )
    while True:
        inserted = await conn.fetchval(
            "INSERT INTO post_reservations (channel, provider, target, holder, expires_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel, provider, target) DO NOTHING"
            " RETURNING true",
            *key,
            holder,
            now + ttl,
        )
        if inserted:
            row = None
            break
        row = await conn.fetchrow(
            "SELECT holder, expires_at FROM post_reservations"
            " WHERE channel = $1 AND provider = $2 AND target = $3 FOR UPDATE",
            *key,
        )
        if row is not None:
            break
        # Released between the two statements: insert it again.
    posted = await _find_posted(conn, answer)
    if posted is not None:
        if inserted:
            await drop_reservation(conn, answer, holder)
        return PostReservation(PostState.POSTED, posted)
    if row is not None:
        # An expired one (left by a crashed holder) is taken over, as SQLite's clean-up
        # before its look would have deleted it.
        if row["holder"] != holder and row["expires_at"] > now:
            return PostReservation(PostState.BUSY, expires_at=float(row["expires_at"]))
        await conn.execute(
            "UPDATE post_reservations SET holder = $4, expires_at = $5"
            " WHERE channel = $1 AND provider = $2 AND target = $3",
            *key,
            holder,
            now + ttl,
        )
    return PostReservation(PostState.RESERVED, expires_at=now + ttl)


async def release_post(conn: asyncpg.Connection, answer: Answer, holder: str) -> None:
    await drop_reservation(conn, answer, holder)


async def _find_posted(conn: asyncpg.Connection, answer: Answer) -> Answer | None:
    first = answer.first
    row = await conn.fetchrow(
        f"SELECT {ANSWER_COLUMNS} FROM answer_targets t JOIN answers a ON a.id = t.answer_id"
        f" WHERE t.{first.key_column} = $1 AND t.position = 0 AND t.provider = $2"
        " AND t.observation_id IS NOT DISTINCT FROM $3 AND a.channel = $4"
        " AND a.posted_by_bot = 1 AND a.removed_at IS NULL ORDER BY a.id LIMIT 1",
        first.key,
        first.provider,
        first.observation_id,
        answer.channel,
    )
    return answer_from_row(row) if row else None


def _post_key(answer: Answer) -> tuple[str, str, str]:
    return answer.channel, answer.first.provider, answer.first.key


async def drop_reservation(conn: asyncpg.Connection, answer: Answer, holder: str) -> None:
    await conn.execute(
        "DELETE FROM post_reservations WHERE channel = $1 AND provider = $2 AND target = $3"
        " AND holder = $4",
        *_post_key(answer),
        holder,
    )
