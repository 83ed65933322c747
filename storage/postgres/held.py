"""Held reactions on PostgreSQL: the units of storage/sqlite/held.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction.

What differs: SQLite's writers take turns, PostgreSQL's replicas do not. Taking the held
reactions is one DELETE … RETURNING, so that each is applied once; and `lock_message`
orders, for one message, holding a reaction on it with registering it.
"""

from __future__ import annotations

import asyncpg

from bot.domain import VoteChange
from storage.models import HeldMessage
from storage.postgres.db import count
from storage.rows import held_message_from_row, held_reaction_from_row, held_values
from storage.rules import arrival_order

# The first key of the advisory lock of one message (lock_message); the second is a hash of
# the message. Two int4 keys: a key space apart from the bigint ones of storage/postgres/db.py.
MESSAGE_LOCK = 0x66656564


async def lock_message(conn: asyncpg.Connection, channel: str, ts: str) -> None:
    """Take, until the transaction ends, the lock of message (channel, ts). Whatever
    registers or removes the answer on a message, drops its held reactions, or holds a
    reaction on it (after looking again for its answer, under the lock) takes it first,
    before any row lock: otherwise a replica that cannot see the answer another is
    registering would hold a reaction after that registration took what was held, and it
    would wait for nothing. (SQLite's write lock does this there.)"""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2 || ' ' || $3))", MESSAGE_LOCK, channel, ts
    )


async def hold(
    conn: asyncpg.Connection,
    channel: str,
    ts: str,
    change: VoteChange,
    event_id: str | None,
    now: float,
) -> None:
    await conn.execute(
        "INSERT INTO held_reactions (channel, ts, user_id, origin, action, status, event_id,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        *held_values(channel, ts, change, event_id, now),
    )


async def take_held(
    conn: asyncpg.Connection, answer_id: int, channel: str, ts: str
) -> list[tuple[VoteChange, float]]:
    """storage.sqlite.held.take_held: deleted and returned in one statement, in the order
    they apply (storage/rules.py: arrival_order)."""
    rows = await conn.fetch(
        "DELETE FROM held_reactions WHERE channel = $1 AND ts = $2"
        " RETURNING id, user_id, origin, action, status, received_at",
        channel,
        ts,
    )
    return arrival_order(held_reaction_from_row(answer_id, r) for r in rows)


async def held_messages(conn: asyncpg.Connection) -> list[HeldMessage]:
    rows = await conn.fetch(
        "SELECT channel, ts, count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " GROUP BY channel, ts ORDER BY first_at"
    )
    return [held_message_from_row(r) for r in rows]


async def held_message(conn: asyncpg.Connection, channel: str, ts: str) -> HeldMessage | None:
    row = await conn.fetchrow(
        "SELECT channel, ts, count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " WHERE channel = $1 AND ts = $2 GROUP BY channel, ts",
        channel,
        ts,
    )
    return held_message_from_row(row) if row is not None else None


async def drop(conn: asyncpg.Connection, channel: str, ts: str) -> int:
    """storage.sqlite.held.drop, inside the caller's transaction (composite.drop_held)."""
    return count(
        await conn.execute("DELETE FROM held_reactions WHERE channel = $1 AND ts = $2", channel, ts)
    )
