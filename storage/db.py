"""Opening the SQLite file: pragmas and migrations."""

from __future__ import annotations

import logging
from pathlib import Path

import aiosqlite

from storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer feedback-bot than this one."""


async def connect(path: str | Path) -> aiosqlite.Connection:
    """Open (creating if needed) the database and bring its schema up to date."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(str(path), isolation_level=None)
    db.row_factory = aiosqlite.Row
    # WAL lets the admin CLI read and write while the bot runs. synchronous=NORMAL keeps
    # every committed transaction across a process crash (only an OS crash or power loss
    # can lose the last commits) without an fsync on every vote.
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA busy_timeout=5000")
    await migrate(db)
    return db


async def migrate(db: aiosqlite.Connection) -> int:
    """Run the migrations this file has not seen; returns the schema version.

    Each migration runs in its own IMMEDIATE transaction and re-reads the version inside it,
    so two processes starting at once (the bot and the admin CLI) never apply one twice.
    """
    while True:
        await db.execute("BEGIN IMMEDIATE")
        try:
            async with db.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise SchemaTooNewError(
                    f"the database is at schema version {version}, but this feedback-bot "
                    f"knows only {len(MIGRATIONS)}: upgrade feedback-bot"
                )
            if version == len(MIGRATIONS):
                await db.execute("COMMIT")
                return version
            # Statement by statement: executescript would commit on its own.
            for statement in _statements(MIGRATIONS[version]):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {version + 1}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("database migrated to schema version %d", version + 1)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
