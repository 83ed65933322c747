"""Storage: SQLite through aiosqlite (the default) or PostgreSQL through asyncpg; schema,
migrations, and one module of queries per aggregate and backend behind the `Store` facade."""

from storage.errors import StorageError
from storage.models import (
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    PostReservation,
    PostState,
    Removal,
)
from storage.store import Store

__all__ = [
    "AuditEntry",
    "Claim",
    "DeliveryCounts",
    "Finished",
    "PostReservation",
    "PostState",
    "Removal",
    "StorageError",
    "Store",
]
