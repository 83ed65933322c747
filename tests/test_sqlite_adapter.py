"""storage/sqlite/thread.py leans on two private parts of aiosqlite, `Connection._execute` and
`Connection._conn`. An aiosqlite release that changes them should fail here, loudly and
naming the version, rather than in the bot."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import pytest

from storage.sqlite.thread import call, sqlite_connection

VERSION = f"aiosqlite {aiosqlite.__version__}"
BROKEN = f"{VERSION} changed what storage/sqlite/thread.py relies on"


@asynccontextmanager
async def connected(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """An aiosqlite connection; whatever fails while it is open (opening and closing it
    included) names the version."""
    try:
        connection = await aiosqlite.connect(tmp_path / "t.db")
        try:
            yield connection
        finally:
            await connection.close()
    except Exception as e:
        e.add_note(f"{BROKEN} (see its docstring)")
        raise


def test_the_private_parts_exist_with_the_shape_used() -> None:
    execute = getattr(aiosqlite.Connection, "_execute", None)
    assert execute is not None, f"{BROKEN}: Connection._execute is gone"
    assert inspect.iscoroutinefunction(execute), f"{BROKEN}: Connection._execute is not async"
    params = list(inspect.signature(execute).parameters.values())
    kinds = [p.kind for p in params]
    assert len(params) >= 2 and inspect.Parameter.VAR_POSITIONAL in kinds[2:], (
        f"{BROKEN}: Connection._execute{inspect.signature(execute)} no longer takes (fn, *args)"
    )
    assert hasattr(aiosqlite.Connection, "_conn"), f"{BROKEN}: Connection._conn is gone"


async def test_the_connection_under_it_is_the_one_its_statements_use(tmp_path: Path) -> None:
    async with connected(tmp_path) as db:
        conn = sqlite_connection(db)
        assert isinstance(conn, sqlite3.Connection), f"{BROKEN}: _conn is {type(conn)!r}"
        before = conn.total_changes
        await db.execute("CREATE TABLE t (x)")  # through the public API
        await db.execute("INSERT INTO t VALUES (1)")
        assert conn.total_changes == before + 1, f"{BROKEN}: statements run on another connection"
        seen: list[sqlite3.Connection] = []
        await call(db, seen.append)
        assert seen == [conn], f"{BROKEN}: the callable got another connection than _conn"


async def test_a_callable_runs_whole_on_the_connection_thread(tmp_path: Path) -> None:
    async with connected(tmp_path) as db:
        # The thread aiosqlite itself runs statements on, found through its public API: a
        # function registered with SQLite runs wherever the statement calling it runs.
        await db.create_function("thread_id", 0, threading.get_ident)
        async with db.execute("SELECT thread_id()") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        aiosqlite_thread = row[0]

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            first = threading.get_ident()
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            conn.execute("INSERT INTO t VALUES (1)")
            return first, threading.get_ident()

        start, end = await call(db, work)
        loop_thread = threading.get_ident()
        assert start != loop_thread, f"{BROKEN}: the callable ran on the event loop's thread"
        assert start == end == aiosqlite_thread, (
            f"{BROKEN}: the callable ran on thread {start}, aiosqlite's statements on"
            f" {aiosqlite_thread}"
        )


async def test_what_the_callable_raises_reaches_the_caller(tmp_path: Path) -> None:
    async with connected(tmp_path) as db:
        # storage/sqlite/db.py: run tells SQLite's errors apart by their type.
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT * FROM no_such_table")

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await call(db, work)


async def test_calls_keep_their_order_with_the_public_api(tmp_path: Path) -> None:
    async with connected(tmp_path) as db:
        # Both go through one queue to one thread, so a call queued after a statement sees it.
        await db.execute("CREATE TABLE t (x)")
        inserting = asyncio.ensure_future(db.execute("INSERT INTO t VALUES (1)"))
        counted = asyncio.ensure_future(
            call(db, lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0])
        )
        await inserting
        assert await counted == 1, f"{BROKEN}: a call overtook a statement queued before it"
