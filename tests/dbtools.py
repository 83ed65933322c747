"""Raw SQL for tests: a look at the rows behind a running store, which the production `Store`
API deliberately does not offer."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.domain import Target
from storage import Store
from storage.sqlite.backend import SqliteBackend
from storage.sqlite.db import run

T = TypeVar("T")


async def query(store: Store, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` (with `?` placeholders, on either backend) on the store's own database and
    return its rows. On SQLite it runs on the store's connection and thread, in turn with
    the bot's transactions. Meant for reads; a test may also use it for a write it expects
    the schema to refuse."""
    backend = store._b
    if isinstance(backend, SqliteBackend):
        return await run(backend.db, lambda db: [tuple(r) for r in db.execute(sql, params)])
    numbers = itertools.count(1)
    numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
    async with backend.pool.acquire() as conn:
        return [tuple(r) for r in await conn.fetch(numbered, *params)]


async def on_connection(store: Store, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on the store's own connection and thread: for tests that break the
    database under a running bot (fill it up, say) through SQLite itself."""
    backend = store._b
    assert isinstance(backend, SqliteBackend), "an SQLite-only test"
    return await run(backend.db, work)


def replace_under(path: Path, aside: Path) -> None:
    """Move the database file at `path` aside and put an empty file in its place (a restore
    gone wrong, say); `os.replace(aside, path)` puts the original back."""
    os.replace(path, aside)
    path.write_bytes(b"")


# An AquilaX target for tests of the store's own rules, where the provider does not matter.
AQUILAX = Target(
    provider="aquilax", request_id="77e81bbc-3e7f-47b9-87fa-681b5d2f54e6", org="o", group="g"
)
