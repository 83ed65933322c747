"""The SQLite backend: one file, one aiosqlite connection, each unit of work one call on its
thread (storage/sqlite/db.py: run), votes through the group commit
(storage/sqlite/group_commit.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiosqlite

from storage.contract import Queries
from storage.sqlite import answers, composite, config, events, held, keys, outbox, votes
from storage.sqlite.db import connect, run
from storage.sqlite.group_commit import GroupCommit

QUERIES = Queries(
    answers=answers,
    votes=votes,
    outbox=outbox,
    config=config,
    keys=keys,
    events=events,
    held=held,
    composite=composite,
)


class SqliteBackend:
    kind = "sqlite"
    queries = QUERIES

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self.db = db  # tests reach the connection through it (tests/dbtools.py)
        self.location = path
        self._votes = GroupCommit(db)

    @classmethod
    async def open(cls, path: str) -> SqliteBackend:
        return cls(await connect(path), path)

    async def run(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await run(self.db, lambda db: work(db, *args, **kwargs))

    async def run_grouped(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._votes.run(lambda db: work(db, *args, **kwargs))

    async def health(self, by: str) -> list[str]:
        return await events.health(self.db, by)

    async def data_version(self) -> int:
        return int(await self.run(events.data_version))

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None:
        """Nothing to subscribe to: a worker in another process watches data_version."""

    async def close(self) -> None:
        await self.db.close()
