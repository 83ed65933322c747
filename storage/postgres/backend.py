"""The PostgreSQL backend: an asyncpg pool; each unit of work one short transaction on a
connection of it; deliveries announced with NOTIFY, heard with LISTEN on a connection of
its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from storage.backend import Queries
from storage.postgres import answers, composite, config, events, held, keys, outbox, votes
from storage.postgres.db import DELIVERIES_CHANNEL, connect, transaction

log = logging.getLogger(__name__)

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


class PostgresBackend:
    kind = "postgresql"
    queries = QUERIES

    def __init__(self, pool: asyncpg.Pool, dsn: str, shown: str) -> None:
        self.pool = pool
        self.location = shown
        self._dsn = dsn
        self._listener: asyncpg.Connection | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresBackend:
        pool, target = await connect(url)
        return cls(pool, target.dsn, target.shown)

    async def run(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with transaction(self.pool) as conn:
            return await work(conn, *args, **kwargs)

    # Each vote is its own short transaction: PostgreSQL takes concurrent writers, and the
    # group commit exists for SQLite's one writer at a time.
    run_grouped = run

    async def health(self, by: str) -> list[str]:
        return await events.health(self.pool, by)

    async def data_version(self) -> int:
        raise NotImplementedError("PostgreSQL announces deliveries with NOTIFY instead")

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None:
        """LISTEN on a connection outside the pool (a pooled one goes back to others). If it
        drops, the workers still poll; the next start listens again."""
        if self._listener is None:
            self._listener = await asyncpg.connect(self._dsn)
            self._listener.add_termination_listener(self._lost)
        await self._listener.add_listener(DELIVERIES_CHANNEL, lambda *_: wake())

    def _lost(self, _conn: object) -> None:
        log.warning(
            "the PostgreSQL connection that hears new deliveries closed: workers fall back to"
            " polling until feedback-bot restarts"
        )

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.remove_termination_listener(self._lost)
            await listener.close()
        await self.pool.close()
