"""What the Store facade needs of a database: the query modules of each aggregate, and how
to run one unit of work. One backend per kind: SQLite (storage/sqlite/backend.py) and
PostgreSQL (storage/postgres/backend.py); FEEDBACK_DB picks one (storage/backends.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol


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
