"""The choice of backend from FEEDBACK_DB: a postgresql:// URL opens PostgreSQL (asyncpg, an
optional extra), anything else is an SQLite file. The one module that imports both."""

from __future__ import annotations

from storage.contract import Backend
from storage.errors import DatabaseOpenError
from storage.location import is_postgres


async def open_backend(location: str) -> Backend:
    if is_postgres(location):
        try:
            from storage.postgres.backend import PostgresBackend
        except ImportError:
            raise DatabaseOpenError(
                "FEEDBACK_DB is a PostgreSQL URL, which needs asyncpg:"
                " pip install 'feedback-bot[postgres]'"
            ) from None
        return await PostgresBackend.open(location)
    from storage.sqlite.backend import SqliteBackend

    return await SqliteBackend.open(location)
