"""SQLite storage through aiosqlite: schema, migrations, and one module of queries per
aggregate behind the `Store` facade."""

from storage.db import StorageError
from storage.models import (
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    PostReservation,
    PostState,
)
from storage.store import Removal, Store

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
