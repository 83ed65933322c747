"""What the Store facade needs of a database: the query modules of each aggregate, and how
to run one unit of work. One backend per kind: SQLite (storage/sqlite/backend.py) and
PostgreSQL (storage/postgres/backend.py); FEEDBACK_DB picks one (storage/backends.py).

The query contract. Every aggregate (answers, votes, outbox, config, keys, events, held,
questions, escalations, digests, composite) has one module per backend with the same
function names and parameters, the connection first: plain functions over a sqlite3
connection, coroutine functions over an asyncpg connection. storage/queries.py and
storage/async_queries.py type each module by a Protocol. Two classes hold a backend's
modules, SqliteQueries and PostgresQueries, each field typed by its
aggregate's Protocol for that backend; mypy accepts a module where a Protocol is expected
when its functions match, so it checks every module where a backend builds its set. One
generic class would not do: the two backends differ in the shape of every result (a value,
or an awaitable of it), which a type parameter cannot express. The facade sees either
(`Backend.queries`), and `Backend.run` returns the result of either kind, awaited where it
is a coroutine's, so mypy also checks the facade's arguments and results against them.

Which backend's set goes with which backend is beyond the types: each backend's `run`
casts the result to its own kind, and tests/test_backend_contract.py checks that the kinds
hold. mypy does not compare the names of positional parameters either, nor the two
Protocols of an aggregate with each other; that test does, and checks that no module
defines a public function over the database that the contract lacks (helpers over rows
and values need no twin). SQLite's one coroutine is events.health, which sends its probe
to the connection's thread itself; the few functions one backend alone has are named in
ONLY_SQLITE and ONLY_POSTGRES.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar

from storage.async_queries import (
    PostgresAnswers,
    PostgresComposite,
    PostgresConfig,
    PostgresDigests,
    PostgresEscalations,
    PostgresEvents,
    PostgresHeld,
    PostgresKeys,
    PostgresOutbox,
    PostgresQuestions,
    PostgresVotes,
)
from storage.queries import (
    SqliteAnswers,
    SqliteComposite,
    SqliteConfig,
    SqliteDigests,
    SqliteEscalations,
    SqliteEvents,
    SqliteHeld,
    SqliteKeys,
    SqliteOutbox,
    SqliteQuestions,
    SqliteVotes,
)

P = ParamSpec("P")
T = TypeVar("T")

# aggregate -> the functions that only that backend's module has, and why.
ONLY_SQLITE: Final[dict[str, frozenset[str]]] = {
    # PostgreSQL announces deliveries with NOTIFY instead (storage/postgres/backend.py).
    "events": frozenset({"data_version"}),
}
ONLY_POSTGRES: Final[dict[str, frozenset[str]]] = {
    # A lock on one message for replicas writing at once; SQLite's write lock does this.
    "held": frozenset({"lock_message"}),
}


@dataclass(frozen=True, slots=True)
class SqliteQueries:
    """SQLite's query modules: plain functions over a sqlite3 connection."""

    answers: SqliteAnswers
    votes: SqliteVotes
    outbox: SqliteOutbox
    config: SqliteConfig
    keys: SqliteKeys
    events: SqliteEvents
    held: SqliteHeld
    questions: SqliteQuestions
    escalations: SqliteEscalations
    digests: SqliteDigests
    composite: SqliteComposite


@dataclass(frozen=True, slots=True)
class PostgresQueries:
    """PostgreSQL's query modules: coroutine functions over an asyncpg connection."""

    answers: PostgresAnswers
    votes: PostgresVotes
    outbox: PostgresOutbox
    config: PostgresConfig
    keys: PostgresKeys
    events: PostgresEvents
    held: PostgresHeld
    questions: PostgresQuestions
    escalations: PostgresEscalations
    digests: PostgresDigests
    composite: PostgresComposite


Queries = SqliteQueries | PostgresQueries

# A unit of work as the facade passes it: a query of either backend, its connection first.
Work = Callable[Concatenate[Any, P], T | Awaitable[T]]


class Backend(Protocol):
    kind: str
    location: str  # for logs and errors: the file, or the URL without its password

    @property
    def queries(self) -> Queries: ...

    async def run(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one unit of work (a function of `queries`) in one transaction, and return
        its result."""
        ...

    async def run_grouped(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """The same, for votes: where the backend can, in a transaction shared with the
        votes that queue alongside."""
        ...

    async def health(self, by: str) -> list[str]: ...

    async def data_version(self) -> int: ...

    async def subscribe_deliveries(self, wake: Callable[[], None]) -> None: ...

    async def close(self) -> None: ...
