"""The two private parts of aiosqlite that the SQLite backend uses, kept here alone.

aiosqlite gives each statement its own trip to the connection's thread, and under load each
trip waits for a turn of the event loop: a ten-statement transaction took ten turns, and
the benchmark measured 160 events/s that way; awaiting statement by statement is about 8×
slower than one trip for the whole transaction. aiosqlite has no public way to run a
callable on that thread. Its public methods all go through `Connection._execute`, which
runs any callable there, and `Connection._conn` is the sqlite3 connection they run on.

tests/test_sqlite_adapter.py checks, naming the installed version, that both still exist
with the shape used here and that a callable really runs on aiosqlite's thread; aiosqlite
is pinned below the next minor release until that test has passed on it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

import aiosqlite

T = TypeVar("T")


async def call(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(connection)` run on `db`'s thread as one call, in turn with the statements
    aiosqlite queues there; what it raises is raised here."""
    result: T = await db._execute(work, db._conn)  # type: ignore[no-untyped-call]
    return result


def sqlite_connection(db: aiosqlite.Connection) -> sqlite3.Connection:
    """The sqlite3 connection under `db`: for reading what the backend keeps on it (see
    storage/sqlite/db.py: BoundConnection) from the event loop. Statements go through `call`."""
    return db._conn
