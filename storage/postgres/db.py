"""Opening a PostgreSQL database (an asyncpg pool), migrating it once however many replicas
start together, and the short transactions every unit of work runs in.

How it is used, as well-run services use PostgreSQL: one pool per process; each unit of work
takes a connection for one short transaction and gives it back; every statement has a
timeout, and so has a transaction left idle, so that no replica can hold a lock for long.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from storage.errors import DatabaseOpenError, SchemaTooNewError, StorageError
from storage.location import displayed
from storage.postgres.migrations import MIGRATIONS

log = logging.getLogger(__name__)

# pg_advisory_lock keys (any two bigints nobody else uses): migrations, and claiming.
MIGRATE_LOCK = 0x66656564_0001
CLAIM_LOCK = 0x66656564_0002
# The channel a replica NOTIFYs when it queues a delivery (bot/delivery/worker.py listens).
DELIVERIES_CHANNEL = "feedback_deliveries"

# Options of ours in the URL, taken out before asyncpg sees it; the rest (sslmode,
# connect_timeout, …) are libpq's, which asyncpg understands.
POOL_SIZE = "pool_size"
DEFAULT_POOL_SIZE = 10
STATEMENT_TIMEOUT_MS = 5000
IDLE_IN_TRANSACTION_MS = 10000


@dataclass(frozen=True, slots=True)
class Target:
    dsn: str  # what asyncpg connects to
    pool_size: int
    shown: str  # the URL without its password, for logs and errors


def parse(url: str) -> Target:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    raw_size = query.pop(POOL_SIZE, str(DEFAULT_POOL_SIZE))
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= 100:
        raise DatabaseOpenError(f"{POOL_SIZE} in FEEDBACK_DB must be a number from 1 to 100")
    dsn = urlunsplit(parts._replace(query=urlencode(query)))
    shown = displayed(dsn)
    return Target(dsn, int(raw_size), shown)


async def connect(url: str) -> tuple[asyncpg.Pool, Target]:
    """A pool on the database at `url`, its schema brought up to date. Raises
    DatabaseOpenError, saying what is wrong, when it cannot be used."""
    target = parse(url)
    try:
        pool = await asyncpg.create_pool(
            target.dsn,
            min_size=1,
            max_size=target.pool_size,
            command_timeout=STATEMENT_TIMEOUT_MS / 1000 + 5,
            server_settings={
                "application_name": "feedback-bot",
                "statement_timeout": str(STATEMENT_TIMEOUT_MS),
                "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_MS),
            },
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise DatabaseOpenError(f"cannot open {target.shown}: {_reason(e)}") from None
    try:
        await migrate(pool)
    except BaseException:
        await pool.close()
        raise
    return pool, target


async def migrate(pool: asyncpg.Pool) -> int:
    """Run the migrations the database has not seen, under an advisory lock, so that
    replicas starting at once migrate it once; returns the schema version."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            while True:
                async with conn.transaction():
                    version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
                    if version > len(MIGRATIONS):
                        raise SchemaTooNewError(
                            f"the database is at schema version {version}, but this"
                            f" feedback-bot knows only {len(MIGRATIONS)}: upgrade feedback-bot"
                        )
                    if version == len(MIGRATIONS):
                        return int(version)
                    if MIGRATIONS[version].strip():
                        await conn.execute(MIGRATIONS[version])
                    await conn.execute("DELETE FROM schema_version")
                    await conn.execute("INSERT INTO schema_version VALUES ($1)", version + 1)
                log.info("database migrated to schema version %d", version + 1)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One short transaction on a connection of the pool. A failure of the database (down,
    timed out, out of space) becomes StorageError; a constraint we broke stays itself."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            yield conn
    except asyncpg.IntegrityConstraintViolationError:
        raise
    except (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        # A pooled connection the server closed under us can fail this way before the
        # pool notices; the pool drops it on release.
        asyncpg.exceptions.InternalClientError,
        TimeoutError,
    ) as e:
        raise StorageError(f"database error: {_reason(e)}") from None


def count(status: str) -> int:
    """The row count in a command tag: 'UPDATE 3' → 3."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
