"""The PostgreSQL backend: an asyncpg pool; each unit of work one short transaction on a
connection of it; deliveries announced with NOTIFY, heard with LISTEN on a connection of
its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

import asyncpg

from storage.contract import PostgresQueries
from storage.postgres import (
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
from storage.postgres.db import DELIVERIES_CHANNEL, connect, transaction

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
# The facade's type for a unit of work covers both backends'; here it is always a coroutine
# function (PostgresQueries, checked by tests/test_backend_contract.py).
Work = Callable[Concatenate[asyncpg.Connection, P], T | Awaitable[T]]

QUERIES = PostgresQueries(
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


class PostgresBackend:
    kind = "postgresql"
    queries = QUERIES

    def __init__(self, pool: asyncpg.Pool, dsn: str, shown: str) -> None:
        self.pool = pool
        self.location = shown
        self._dsn = dsn
        self._listener: asyncpg.Connection | None = None
        self._wakes: list[Callable[[], None]] = []
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    async def open(cls, url: str) -> PostgresBackend:
        pool, target = await connect(url)
        return cls(pool, target.dsn, target.shown)

    async def run(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with transaction(self.pool) as conn:
            return await cast(Awaitable[T], work(conn, *args, **kwargs))

    # Each vote is its own short transaction: PostgreSQL takes concurrent writers, and the
    # group commit exists for SQLite's one writer at a time.
    run_grouped = run

    async def health(self, by: str) -> list[str]:
        return await events.health(self.pool, by)

    async def data_version(self) -> int:
        raise NotImplementedError("PostgreSQL announces deliveries with NOTIFY instead")

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection outside the pool (a pooled one goes back to others). If it
        drops (the server restarted, say), it is opened again; the workers poll meanwhile."""
        self._wakes.append(wake)
        if self._listener is None:
            await self._listen()
        else:
            await self._listener.add_listener(DELIVERIES_CHANNEL, self._heard)

    async def _listen(self) -> None:
        listener = await asyncpg.connect(self._dsn)
        await listener.add_listener(DELIVERIES_CHANNEL, self._heard)
        listener.add_termination_listener(self._lost)
        self._listener = listener

    def _heard(self, *_: object) -> None:
        for wake in self._wakes:
            wake()

    def _lost(self, _conn: object) -> None:
        if self._closing:
            return
        self._listener = None
        log.warning(
            "the PostgreSQL connection that hears new deliveries closed: reconnecting (the"
            " workers poll meanwhile)"
        )
        self._relisten = asyncio.create_task(self._reconnect(), name="postgres listen")

    async def _reconnect(self) -> None:
        pause = 0.5
        while not self._closing and self._listener is None:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.debug("cannot LISTEN yet (%s); trying again in %.1f s", e, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
        for wake in self._wakes:
            wake()  # whatever was queued while nobody listened

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.remove_termination_listener(self._lost)
            await listener.close()
        await self.pool.close()
