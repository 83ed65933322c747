"""Group commit: vote transactions that arrive while one is on the database thread are
written together in the next one.

Under load most of a vote's cost on the SQLite thread is the transaction around it (BEGIN,
the WAL append, COMMIT) and the hop to that thread and back. A batch pays them once. The
batch is one callable, `storage.sqlite.db.commit_group`, that aiosqlite runs on its connection
thread (`storage.sqlite.db.run`): every unit of work in turn, each one's writes in a SAVEPOINT of
its own inside one BEGIN IMMEDIATE … COMMIT. So:

- a unit that raises is rolled back to its savepoint alone, and only its caller gets the
  error; the others still commit;
- every caller waits for the COMMIT that holds its work, so an ack still means stored;
- a COMMIT that fails (disk full, file replaced) fails every unit of the batch: each caller
  gets the StorageError, and each event's dedupe row is rolled back with it, so Slack's
  retry is processed;
- no timer: a batch is whatever queued while the previous one ran, so a lone vote goes at
  once, alone.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import aiosqlite

from storage.sqlite.db import commit_group, run

T = TypeVar("T")


class GroupCommit:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._queued: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` (which writes through `storage.sqlite.db.transaction`) in the next batch;
        returns, or raises, once that batch is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((work, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="group-commit")
        return await future

    async def _write(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                works = [work for work, _ in batch]
                try:
                    outcomes = await run(self._db, partial(commit_group, works=works))
                except Exception as e:  # nothing of the batch is stored
                    outcomes = [(False, e)] * len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller stopped waiting; what it wrote stands
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._writer = None
