"""The query contract (storage/contract.py, storage/queries.py), checked against both
backends' modules: what mypy cannot see.

mypy checks each module against its Protocol but ignores the names of positional
parameters, and never compares the SQLite and PostgreSQL Protocols with each other. Here,
for every aggregate: both modules have every function of the contract, SQLite's a plain
function and PostgreSQL's a coroutine function (unless the Protocol says otherwise), with
the same parameters (names, kinds, defaults and, where given, annotations) apart from the
first, the connection; and neither module has a function that talks to the database and is
missing from the contract.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import typing
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from storage.contract import ONLY_POSTGRES, ONLY_SQLITE, PostgresQueries, SqliteQueries

KINDS = ("sqlite", "postgres")
CONTRACTS: dict[str, type[Any]] = {"sqlite": SqliteQueries, "postgres": PostgresQueries}
ONLY = {"sqlite": ONLY_SQLITE, "postgres": ONLY_POSTGRES}
AGGREGATES = [f.name for f in dataclasses.fields(SqliteQueries)]

# Each driver names its connection, its pool and its rows differently; the contract does not.
_DRIVER_TYPES = re.compile(
    r"\b(?:(?P<conn>(?:sqlite3|aiosqlite|asyncpg)\.Connection|asyncpg\.Pool)"
    r"|(?P<row>(?:sqlite3|aiosqlite)\.Row|asyncpg\.Record|Row))\b"
)
# A first parameter by one of these names (or typed as one of the above) is the database:
# the function is a query, and must be in the contract.
_DATABASE_NAMES = {"db", "conn", "connection", "pool"}
# SQLite's queries are plain functions, run whole on the connection's thread; the health
# probe alone is a coroutine (it sends its probe there itself).
SQLITE_COROUTINES = {("events", "health")}


def _normalised(annotation: Any) -> str | None:
    """An annotation as text (they are strings under `from __future__ import annotations`),
    driver types replaced by what they stand for; None where none is given."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return _DRIVER_TYPES.sub(lambda m: "Connection" if m["conn"] else "Row", text)


def _shape(fn: Callable[..., Any], *, method: bool) -> list[tuple[Any, ...]]:
    """The parameters after the connection (and after `self`, for a Protocol's member),
    then the return annotation."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[(2 if method else 1) :]
    return [
        *((p.name, p.kind.name, _default(p), _normalised(p.annotation)) for p in params),
        ("->", _normalised(signature.return_annotation)),
    ]


def _default(param: inspect.Parameter) -> str:
    return "required" if param.default is inspect.Parameter.empty else f"= {param.default!r}"


def _same_shape(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal, an annotation missing on one side matching any on the other."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x[:-1] != y[:-1]:
            return False
        if x[-1] is not None and y[-1] is not None and x[-1] != y[-1]:
            return False
    return True


def _protocol(kind: str, aggregate: str) -> type[Any]:
    return typing.get_type_hints(CONTRACTS[kind])[aggregate]  # type: ignore[no-any-return]


def _members(protocol: type[Any]) -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }


def _module(kind: str, aggregate: str) -> ModuleType:
    return importlib.import_module(f"storage.{kind}.{aggregate}")


def _queries(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The public functions `module` itself defines whose first parameter is the database.
    (Helpers over rows and values, which PostgreSQL's modules import from SQLite's, are not
    queries and need no twin.)"""
    found = {}
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != module.__name__:
            continue  # imported from another module, which is checked on its own
        params = list(inspect.signature(value).parameters.values())
        first = params[0] if params else None
        if first is not None and (
            first.name in _DATABASE_NAMES or _normalised(first.annotation) == "Connection"
        ):
            found[name] = value
    return found


def test_the_contract_covers_the_aggregates_the_backends_build() -> None:
    from storage.postgres.backend import QUERIES as POSTGRES
    from storage.sqlite.backend import QUERIES as SQLITE

    assert [f.name for f in dataclasses.fields(PostgresQueries)] == AGGREGATES
    for kind, built in (("sqlite", SQLITE), ("postgres", POSTGRES)):
        for aggregate in AGGREGATES:
            assert getattr(built, aggregate) is _module(kind, aggregate), (kind, aggregate)
    for kind in KINDS:
        for aggregate, names in ONLY[kind].items():
            stale = names - _members(_protocol(kind, aggregate)).keys()
            assert not stale, f"{kind}'s {aggregate} Protocol lacks {sorted(stale)}"


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_the_two_protocols_of_an_aggregate_agree(aggregate: str) -> None:
    lite = _members(_protocol("sqlite", aggregate))
    pg = _members(_protocol("postgres", aggregate))
    only_lite = ONLY_SQLITE.get(aggregate, frozenset())
    only_pg = ONLY_POSTGRES.get(aggregate, frozenset())
    assert lite.keys() - only_lite == pg.keys() - only_pg, aggregate
    for name in lite.keys() & pg.keys():
        assert _shape(lite[name], method=True) == _shape(pg[name], method=True), name
        assert inspect.iscoroutinefunction(pg[name]), f"postgres {aggregate}.{name} is not async"
    for name, fn in lite.items():
        if inspect.iscoroutinefunction(fn):
            assert (aggregate, name) in SQLITE_COROUTINES, f"sqlite {aggregate}.{name} is async"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_each_module_implements_its_protocol(kind: str, aggregate: str) -> None:
    module = _module(kind, aggregate)
    where = f"storage/{kind}/{aggregate}.py"
    for name, member in _members(_protocol(kind, aggregate)).items():
        fn = getattr(module, name, None)
        assert inspect.isfunction(fn), f"{where} has no function {name} (the contract has)"
        assert inspect.iscoroutinefunction(fn) == inspect.iscoroutinefunction(member), (
            f"{where}: {name} should{'' if inspect.iscoroutinefunction(member) else ' not'}"
            " be a coroutine function"
        )
        theirs, ours = _shape(fn, method=False), _shape(member, method=True)
        assert _same_shape(theirs, ours), f"{where}: {name}{theirs}\n  the contract: {ours}"


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_both_modules_of_an_aggregate_take_the_same_parameters(aggregate: str) -> None:
    lite, pg = _queries(_module("sqlite", aggregate)), _queries(_module("postgres", aggregate))
    shared = (
        _members(_protocol("sqlite", aggregate)).keys()
        & _members(_protocol("postgres", aggregate)).keys()
    )
    for name in sorted(shared & lite.keys() & pg.keys()):
        a, b = _shape(lite[name], method=False), _shape(pg[name], method=False)
        assert _same_shape(a, b), f"{aggregate}.{name}: sqlite {a}\n  postgres {b}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_no_query_is_missing_from_the_contract(kind: str, aggregate: str) -> None:
    extra = _queries(_module(kind, aggregate)).keys() - _members(_protocol(kind, aggregate)).keys()
    assert not extra, (
        f"storage/{kind}/{aggregate}.py has {sorted(extra)}, which the contract lacks: add"
        " them to both Protocols in storage/queries.py (or to ONLY_SQLITE / ONLY_POSTGRES in"
        " storage/contract.py), or make them private"
    )
