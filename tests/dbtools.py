"""Raw SQL for tests: a look at the rows behind a running store, which the production `Store`
API deliberately does not offer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage import Store
from storage.db import run


async def query(store: Store, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run `sql` on the store's own connection (one call on its thread, in turn with the
    bot's transactions) and return its rows. Meant for reads; a test may also use it for a
    write it expects the schema to refuse."""
    return await run(store._db, lambda db: [tuple(r) for r in db.execute(sql, params)])
