"""What the bot records about itself: the Slack events it has processed (so that a redelivered
event changes nothing) and the health probe that tells /healthz whether a write commits."""

from __future__ import annotations

import os
import sqlite3
import time

import aiosqlite

from storage.errors import StorageError
from storage.sqlite.db import BoundConnection, run, transaction
from storage.sqlite.thread import sqlite_connection

# How long a failed write keeps /healthz at 503 when no write has succeeded since.
WRITE_FAILURE_MEMORY = 60.0
# Less free space than this on the database's disk is reported as a problem.
MIN_FREE_BYTES = 1024 * 1024


def mark_processed(db: sqlite3.Connection, event_id: str, now: float) -> bool:
    """Record the Slack event id as processed; False when it was already. Runs inside the
    caller's transaction, so the mark rolls back with whatever the event changed."""
    cur = db.execute(
        "INSERT OR IGNORE INTO processed_events (event_id, received_at) VALUES (?, ?)",
        (event_id, now),
    )
    return cur.rowcount != 0


def data_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA data_version").fetchone()[0])


def prune_events(db: sqlite3.Connection, older_than: float) -> int:
    with transaction(db):
        return db.execute(
            "DELETE FROM processed_events WHERE received_at < ?", (older_than,)
        ).rowcount


async def health(connection: aiosqlite.Connection, by: str) -> list[str]:
    """What keeps the database from doing its job, as one line each; [] when healthy.

    Checks that the file at FEEDBACK_DB is still the one opened, that its disk has room,
    that a write commits now, and that the last real write did not fail: a small probe
    can slip through where a vote does not (SQLite reuses free pages), so a failed write
    counts for a minute unless a write has changed something since.
    """
    conn = sqlite_connection(connection)
    assert isinstance(conn, BoundConnection)
    try:
        conn.check_file()
    except StorageError as e:
        return [str(e)]
    problems = []
    if conn.identity is not None:
        fs = os.statvfs(conn.directory)
        free = fs.f_bavail * fs.f_frsize
        if free < MIN_FREE_BYTES:
            problems.append(
                f"the disk holding {conn.path} (FEEDBACK_DB) has {free // 1024} KB free:"
                " votes cannot be stored; free some space"
            )

    def probe(db: sqlite3.Connection) -> None:
        with transaction(db, probe=True):
            db.execute(
                "INSERT INTO health_probe (id, written_at, written_by) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at,"
                " written_by = excluded.written_by",
                (time.time(), by),
            )

    try:
        await run(connection, probe)
    except StorageError as e:
        problems.append(f"the database refuses writes: {e}")
    failure = conn.last_failure
    if failure is not None and failure[0] > conn.last_write_at:
        age = time.time() - failure[0]
        if age < WRITE_FAILURE_MEMORY or problems:
            problems.append(f"a write failed {age:.0f} s ago: {failure[1]}")
    return problems
