"""Opening the SQLite file (pragmas, migrations) and running work on its thread."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiosqlite

from storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)
T = TypeVar("T")


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer feedback-bot than this one."""


class DatabaseOpenError(RuntimeError):
    """The database file cannot be opened or written; the message says what is wrong."""


async def run(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on the connection's own thread, as one call.

    aiosqlite gives every statement its own round trip to that thread; under load each trip
    waits for a turn of the event loop, so a ten-statement transaction took ten turns (the
    benchmark measured 160 events/s). Its public methods all go through `_execute`, which
    runs any callable on the thread: a whole transaction then costs one trip. aiosqlite is
    pinned below 0.23 and tests/test_storage.py checks this still holds.
    """
    return await db._execute(work, db._conn)  # type: ignore[no-any-return]


async def connect(path: str | Path) -> aiosqlite.Connection:
    """Open (creating if needed) the database and bring its schema up to date. Raises
    DatabaseOpenError, saying what is wrong, when the file cannot be used."""
    if str(path) != ":memory:":
        _prepare_path(Path(path))
        try:
            # Open it once here first: when aiosqlite fails to open a file, its thread
            # reports to the event loop after the CLI has closed it, with a traceback.
            sqlite3.connect(path).close()
        except sqlite3.Error as e:
            raise DatabaseOpenError(_problem(path, e)) from None
    try:
        db = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as e:
        raise DatabaseOpenError(_problem(path, e)) from None
    db.row_factory = aiosqlite.Row
    try:
        await run(db, _prepare)
    except sqlite3.Error as e:
        await db.close()
        raise DatabaseOpenError(_problem(path, e)) from None
    except BaseException:
        await db.close()
        raise
    return db


def _prepare_path(path: Path) -> None:
    """Create the file's directory; refuse, in words, a path that cannot hold a file."""
    if path.is_dir():
        raise DatabaseOpenError(f"{path} is a directory")
    for parent in path.parents:  # nearest first
        if parent.exists():
            if not parent.is_dir():
                raise DatabaseOpenError(f"{parent} is a file, not a directory")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatabaseOpenError(
            f"cannot create the directory {path.parent}: {e.strerror}"
        ) from None


def _problem(path: str | Path, error: sqlite3.Error) -> str:
    """SQLite's reason, in terms of what the operator can fix."""
    reason = str(error)
    if "file is not a database" in reason:
        return f"{path} is not an SQLite database"
    if "readonly" in reason:
        return f"{path} is read-only; feedback-bot needs write access to it and its directory"
    if "unable to open" in reason:
        return (
            f"{path} cannot be created or written; feedback-bot needs write access to it and"
            " its directory"
        )
    return f"{path}: {reason}"


def _prepare(db: sqlite3.Connection) -> None:
    # WAL lets the admin CLI read and write while the bot runs. synchronous=NORMAL keeps
    # every committed transaction across a process crash (only an OS crash or power loss
    # can lose the last commits) without an fsync on every vote.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    migrate(db)


def migrate(db: sqlite3.Connection) -> int:
    """Run the migrations this file has not seen; returns the schema version.

    Each migration runs in its own IMMEDIATE transaction and re-reads the version inside it,
    so two processes starting at once (the bot and the admin CLI) never apply one twice.
    """
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise SchemaTooNewError(
                    f"the database is at schema version {version}, but this feedback-bot "
                    f"knows only {len(MIGRATIONS)}: upgrade feedback-bot"
                )
            if version == len(MIGRATIONS):
                db.execute("COMMIT")
                return version
            # Statement by statement: executescript would commit on its own.
            for statement in _statements(MIGRATIONS[version]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        log.info("database migrated to schema version %d", version + 1)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
