"""What the Store facade needs of a database: the query modules of each aggregate, and how
to run one unit of work. One backend per kind: SQLite (storage/sqlite_backend.py) and
PostgreSQL (storage/postgres/backend.py); FEEDBACK_DB picks one (`open_backend`)."""

from __future__ import annotations

import re
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


# user:password@ in any URL (the password may hold an unescaped @: up to the last one), and
# a password=… query parameter (asyncpg takes either).
URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)[^\s'\"]*@")
QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def displayed(location: str) -> str:
    """FEEDBACK_DB (or any URL) fit for a log or an error: a password masked, however short
    or odd, in the URL's user part or in a `password=` query parameter."""
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:  # a port that is not a number, say: mask the whole user part
        return QUERY_PASSWORD.sub(r"\1***", URL_PASSWORD.sub(r"\1***@", location))
    if password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    return QUERY_PASSWORD.sub(r"\1***", urlunsplit(parts))


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
