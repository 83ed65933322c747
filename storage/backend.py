"""What the Store facade needs of a database: the query modules of each aggregate, and how
to run one unit of work. One backend per kind: SQLite (storage/sqlite_backend.py) and
PostgreSQL (storage/postgres/backend.py); FEEDBACK_DB picks one (`open_backend`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from storage.db import DatabaseOpenError


@dataclass(frozen=True, slots=True)
class Queries:
    """The query modules of a backend, one per aggregate, with the same functions."""

    answers: ModuleType
    votes: ModuleType
    outbox: ModuleType
    config: ModuleType
    keys: ModuleType
    events: ModuleType
    held: ModuleType
    composite: ModuleType


class Backend(Protocol):
    kind: str
    location: str  # for logs and errors: the file, or the URL without its password
    queries: Queries

    async def run(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one unit of work (a function of `queries`) in one transaction."""

    async def run_grouped(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The same, for votes: where the backend can, in a transaction shared with the
        votes that queue alongside."""

    async def health(self, by: str) -> list[str]: ...

    async def data_version(self) -> int: ...

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None: ...

    async def close(self) -> None: ...


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def displayed(location: str) -> str:
    """FEEDBACK_DB fit for a log or an error: a URL's password masked, however short."""
    if not is_postgres(location):
        return location
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
    from storage.sqlite_backend import SqliteBackend

    return await SqliteBackend.open(location)
