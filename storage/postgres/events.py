"""Processed Slack events and the health probe on PostgreSQL: the units of storage/sqlite/events.py
(the rules are in its docstrings), async over an asyncpg connection in the facade's
transaction.

What differs: no file to check (the server owns its storage), and no data_version:
PostgreSQL announces new deliveries with NOTIFY instead (storage/postgres/backend.py).
"""

from __future__ import annotations

import time

import asyncpg

from storage.errors import StorageError
from storage.postgres.db import count, transaction


async def mark_processed(conn: asyncpg.Connection, event_id: str, now: float) -> bool:
    """storage.sqlite.events.mark_processed. A replica marking the same event at once waits for
    our transaction, then inserts nothing: one of the two processes it."""
    return (
        count(
            await conn.execute(
                "INSERT INTO processed_events (event_id, received_at) VALUES ($1, $2)"
                " ON CONFLICT (event_id) DO NOTHING",
                event_id,
                now,
            )
        )
        != 0
    )


async def prune_events(conn: asyncpg.Connection, older_than: float) -> int:
    return count(
        await conn.execute("DELETE FROM processed_events WHERE received_at < $1", older_than)
    )


async def health(pool: asyncpg.Pool, by: str) -> list[str]:
    """What keeps the database from doing its job, one line each; [] when healthy: here,
    whether a write commits now (a probe row upserted in a short transaction of its own)."""
    try:
        async with transaction(pool) as conn:
            await conn.execute(
                "INSERT INTO health_probe (id, written_at, written_by) VALUES (1, $1, $2)"
                " ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at,"
                " written_by = excluded.written_by",
                time.time(),
                by,
            )
    except StorageError as e:
        return [f"the database refuses writes: {e}"]
    return []
