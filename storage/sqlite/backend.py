"""The SQLite backend: one file, one aiosqlite connection, each unit of work one call on its
thread (storage/sqlite/db.py: run), votes through the group commit
(storage/sqlite/group_commit.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

import aiosqlite

from storage.contract import SqliteQueries
from storage.sqlite import (
    answers,
    composite,
    config,
    digests,
    escalations,
    events,
    held,
    keys,
    outbox,
    questions,
    votes,
)
from storage.sqlite.db import connect, run
from storage.sqlite.group_commit import GroupCommit

P = ParamSpec("P")
T = TypeVar("T")
# The facade's type for a unit of work covers both backends'; here it is always a plain
# function (SqliteQueries, checked by tests/test_backend_contract.py), so it returns a T.
Work = Callable[Concatenate[sqlite3.Connection, P], T | Awaitable[T]]

QUERIES = SqliteQueries(
    answers=answers,
    votes=votes,
    outbox=outbox,
    config=config,
    keys=keys,
    events=events,
    held=held,
    questions=questions,
    escalations=escalations,
    digests=digests,
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

    async def run(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await run(self.db, lambda db: work(db, *args, **kwargs)))

    async def run_grouped(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await self._votes.run(lambda db: work(db, *args, **kwargs)))

    async def health(self, by: str) -> list[str]:
        return await events.health(self.db, by)

    async def data_version(self) -> int:
        return await self.run(events.data_version)

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None:
        """Nothing to subscribe to: a worker in another process watches data_version."""

    async def close(self) -> None:
        await self.db.close()
