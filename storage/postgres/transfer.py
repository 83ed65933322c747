"""`feedback-bot migrate-db`: copy an SQLite database into an empty PostgreSQL one, every
table row for row (ids kept, so votes, deliveries and the audit log still point where they
did), then check that both hold the same number of rows per table."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from functools import partial
from typing import Any

from storage.errors import DatabaseOpenError
from storage.postgres.db import connect as open_postgres
from storage.sqlite.db import connect as open_sqlite
from storage.sqlite.db import run

# In the order references allow; each with the columns both schemas share. health_probe is
# the bot's own scratch row, not data.
TABLES: dict[str, tuple[str, ...]] = {
    "answers": (
        "id",
        "channel",
        "ts",
        "created_at",
        "posted_by_bot",
        "thread_ts",
        "prompt_ts",
        "removed_at",
        "registered_via",
        "registered_by_app",
        "metadata_ts",
    ),
    "answer_targets": (
        "answer_id",
        "position",
        "provider",
        "agent_id",
        "message_id",
        "request_id",
        "org",
        "grp",
        "run_id",
        "trace_id",
        "observation_id",
    ),
    "answer_sources": ("answer_id", "position", "content_id", "label", "target"),
    "votes": (
        "id",
        "answer_id",
        "content_id",
        "user_id",
        "origin",
        "status",
        "explanation",
        "category",
        "cast_at",
        "withdrawn_at",
    ),
    "deliveries": (
        "id",
        "answer_id",
        "target",
        "content_id",
        "status",
        "explanation",
        "category",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "provider_ref",
        "created_at",
        "updated_at",
        "claimed_by",
        "lease_until",
        "sent_at",
    ),
    "processed_events": ("event_id", "received_at"),
    "config": ("scope", "key", "value", "updated_at", "updated_by"),
    "audit_log": ("id", "at", "user_id", "scope", "key", "old_value", "new_value"),
    "provider_keys": ("provider", "ciphertext", "last4", "updated_at", "updated_by"),
    "post_reservations": ("channel", "provider", "target", "holder", "expires_at"),
    "held_reactions": (
        "id",
        "channel",
        "ts",
        "user_id",
        "origin",
        "action",
        "status",
        "event_id",
        "received_at",
    ),
    "escalations": ("answer_id", "opened_at", "resolved_by", "resolved_at"),
    "digest_runs": (
        "id",
        "scope",
        "period",
        "period_start",
        "period_end",
        "channel",
        "state",
        "attempts",
        "next_attempt_at",
        "claimed_by",
        "lease_until",
        "last_error",
        "ref",
        "created_at",
        "updated_at",
    ),
}
WITH_IDS = ("answers", "votes", "deliveries", "audit_log", "held_reactions", "digest_runs")
BATCH = 5000


class TransferError(RuntimeError):
    """The copy cannot be made, or does not match; the message says why."""


def sqlite_path(source: str) -> str:
    """`sqlite:///path`, `sqlite://relative` or a plain path, as a path."""
    # sqlite:///var/x.db → /var/x.db: the third slash begins the absolute path.
    return source.removeprefix("sqlite://")


async def copy(source: str, target: str) -> dict[str, int]:
    """Copy the SQLite database at `source` into the PostgreSQL database at `target` (which
    must hold no answers yet); returns the rows copied per table."""
    path = sqlite_path(source)
    if not await asyncio.to_thread(os.path.isfile, path):
        raise TransferError(f"{path} is not a file: give the SQLite database to copy")
    lite = await open_sqlite(path)  # brings it to the current schema first
    try:
        pool, shown = await open_postgres(target)
    except DatabaseOpenError:
        await lite.close()
        raise
    copied: dict[str, int] = {}
    try:
        async with pool.acquire() as conn:
            if await conn.fetchval("SELECT count(*) FROM answers"):
                raise TransferError(
                    f"{shown.shown} already holds answers: copy into an empty database"
                )
            async with conn.transaction():
                for table, columns in TABLES.items():
                    names = ", ".join(columns)
                    rows = await run(lite, partial(_rows, table=table, names=names))
                    for start in range(0, len(rows), BATCH):
                        await conn.copy_records_to_table(
                            table, records=rows[start : start + BATCH], columns=list(columns)
                        )
                    copied[table] = len(rows)
                for table in WITH_IDS:
                    # The identity goes on from the highest id copied.
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                    )
            for table in TABLES:
                there = await conn.fetchval(f"SELECT count(*) FROM {table}")
                here = await run(lite, partial(_count, table=table))
                if there != here:
                    raise TransferError(
                        f"{table}: {here} rows in SQLite but {there} in PostgreSQL after the copy"
                    )
    except sqlite3.Error as e:
        raise TransferError(f"cannot read {path}: {e}") from None
    finally:
        await pool.close()
        await lite.close()
    return copied


def _rows(db: sqlite3.Connection, table: str, names: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(f"SELECT {names} FROM {table}")]


def _count(db: sqlite3.Connection, table: str) -> int:
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
