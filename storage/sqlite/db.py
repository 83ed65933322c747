"""Opening the SQLite file (pragmas, migrations) and running work on its thread."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import aiosqlite

from storage.errors import (
    DatabaseMovedError,
    DatabaseOpenError,
    SchemaTooNewError,
    StorageError,
)
from storage.sqlite.migrations import MIGRATIONS
from storage.sqlite.thread import call

log = logging.getLogger(__name__)
T = TypeVar("T")


class BoundConnection(sqlite3.Connection):
    """A connection that knows which file it opened and how its last writes went.

    SQLite keeps writing to a file deleted (or replaced) under it; every write after that is
    lost at the next start. So each transaction checks, before COMMIT, that the path still
    names the same file (one stat, about a microsecond).
    """

    path = ""
    directory = ""
    identity: tuple[int, int] | None = None
    last_write_at = 0.0  # the last COMMIT that changed rows (the health probe excluded)
    last_failure: tuple[float, str] | None = None  # (when, why) the last write failed
    grouping = False  # inside commit_group: transactions are savepoints of the batch

    def bind(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            self.directory = os.path.dirname(os.path.abspath(path))
            st = os.stat(path)
            self.identity = (st.st_dev, st.st_ino)

    def check_file(self) -> None:
        if self.identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise DatabaseMovedError(
                f"the database file {self.path} (FEEDBACK_DB) was deleted while feedback-bot"
                " was running; writes would be lost: restore it or restart feedback-bot"
            ) from None
        if (st.st_dev, st.st_ino) != self.identity:
            raise DatabaseMovedError(
                f"the database file {self.path} (FEEDBACK_DB) was replaced while feedback-bot"
                " was running; writes would go to the old file: restart feedback-bot"
            )


@contextmanager
def transaction(db: sqlite3.Connection, *, probe: bool = False) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error. A failure of the database itself
    becomes StorageError, and is remembered for the health check.

    In a group commit (`commit_group`), the unit of work gets a savepoint inside the
    batch's transaction instead, and the batch commits."""
    grouped = isinstance(db, BoundConnection) and db.grouping
    changes = db.total_changes
    try:
        if grouped:
            with _savepoint(db):
                yield db
        else:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                _commit(db)
            except BaseException:
                # A failed COMMIT (disk full) may already have rolled back.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
    except sqlite3.IntegrityError:
        raise  # a bug or a lost race of ours, not the database's fault
    except (sqlite3.OperationalError, sqlite3.DatabaseError, StorageError) as e:
        raise storage_error(db, e, probe=probe) from None
    if not grouped:
        _wrote(db, changes, probe=probe)


def commit_group(
    db: sqlite3.Connection, works: Sequence[Callable[[sqlite3.Connection], T]]
) -> list[tuple[bool, T | Exception]]:
    """Run `works` as one transaction, each unit's writes in a savepoint of its own (see
    storage/sqlite/group_commit.py): (True, result) or (False, error) per unit, in order.

    The transaction begins (IMMEDIATE) when the first unit writes, so a batch that only
    reads takes no write lock. A unit that fails is rolled back alone. A failure that takes
    the whole transaction with it (SQLite rolls back by itself on disk full or an I/O
    error), or a failed COMMIT, raises StorageError: no unit of the batch is stored."""
    assert isinstance(db, BoundConnection)
    outcomes: list[tuple[bool, T | Exception]] = []
    wrote = False  # total_changes counts rolled-back rows too, so count per unit
    db.grouping = True
    try:
        for work in works:
            was_open, changes = db.in_transaction, db.total_changes
            try:
                outcomes.append((True, work(db)))
            except Exception as e:
                if was_open and not db.in_transaction:
                    raise
                if isinstance(e, sqlite3.OperationalError | sqlite3.DatabaseError) and not (
                    isinstance(e, sqlite3.IntegrityError)
                ):
                    e = storage_error(db, e)  # as `run` gives it for a unit of its own
                outcomes.append((False, e))
            else:
                wrote = wrote or db.total_changes != changes
        if db.in_transaction:
            try:
                _commit(db)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
    except (sqlite3.OperationalError, sqlite3.DatabaseError, StorageError) as e:
        raise storage_error(db, e) from None
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.grouping = False
    if wrote:
        db.last_write_at = time.time()
    return outcomes


@contextmanager
def _savepoint(db: sqlite3.Connection) -> Iterator[None]:
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")  # the batch's: commit_group commits it
    db.execute("SAVEPOINT unit")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK TO unit")
            db.execute("RELEASE unit")
        raise
    db.execute("RELEASE unit")


def _commit(db: sqlite3.Connection) -> None:
    if isinstance(db, BoundConnection):
        db.check_file()
    db.execute("COMMIT")


def _wrote(db: sqlite3.Connection, changes_before: int, *, probe: bool = False) -> None:
    if isinstance(db, BoundConnection) and not probe and db.total_changes != changes_before:
        db.last_write_at = time.time()


def storage_error(db: sqlite3.Connection, error: Exception, *, probe: bool = False) -> StorageError:
    """`error`, a failure of the database, as the StorageError callers see; a real write's
    failure is remembered for the health check."""
    failure = error if isinstance(error, StorageError) else StorageError(f"database error: {error}")
    if isinstance(db, BoundConnection) and not probe:
        db.last_failure = (time.time(), str(failure))
    return failure


async def run(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on the connection's own thread, as one call: a whole transaction costs one
    trip to that thread, not one per statement (storage/sqlite/thread.py says why that
    needs aiosqlite's private parts)."""
    try:
        return await call(db, work)
    except sqlite3.IntegrityError:
        raise
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as e:
        # A read that failed (I/O error, corrupt file); writes are translated in transaction.
        raise StorageError(f"database error: {e}") from None


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
        db = await aiosqlite.connect(str(path), isolation_level=None, factory=BoundConnection)
    except sqlite3.Error as e:
        raise DatabaseOpenError(_problem(path, e)) from None
    db.row_factory = aiosqlite.Row
    try:
        await run(db, _prepare)
        await run(db, partial(_bind, path=str(path)))
    except (sqlite3.Error, StorageError) as e:
        await db.close()
        raise DatabaseOpenError(_problem(path, e)) from None
    except BaseException:
        await db.close()
        raise
    return db


def _bind(db: sqlite3.Connection, path: str) -> None:
    assert isinstance(db, BoundConnection)  # connect opens it with that factory
    db.bind(path)


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


def _problem(path: str | Path, error: Exception) -> str:
    """SQLite's reason, in terms of what the operator can fix."""
    reason = str(error).removeprefix("database error: ")
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
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        rebuild = version < len(MIGRATIONS) and MIGRATIONS[version].lstrip().startswith(
            FOREIGN_KEYS_OFF
        )
        if rebuild:
            # A table others reference is built again (SQLite's documented procedure): the
            # pragma is a no-op inside a transaction, so it goes before BEGIN, and the
            # references are checked before COMMIT.
            db.execute("PRAGMA foreign_keys=OFF")
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
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(
                    f"migration {version + 1} would break {len(broken)} references"
                )
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            if rebuild:
                db.execute("PRAGMA foreign_keys=ON")
        log.info("database migrated to schema version %d", version + 1)


FOREIGN_KEYS_OFF = "-- foreign keys off"


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
