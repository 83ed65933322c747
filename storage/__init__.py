"""SQLite storage through aiosqlite: schema, migrations and every query."""

from storage.db import StorageError
from storage.models import (
    Answer,
    AuditEntry,
    Claim,
    Delivery,
    DeliveryCounts,
    DeliveryState,
    Finished,
    Registration,
    Source,
    StoredVote,
    VoteChange,
    VoteResult,
)
from storage.store import Store

__all__ = [
    "Answer",
    "AuditEntry",
    "Claim",
    "Delivery",
    "DeliveryCounts",
    "DeliveryState",
    "Finished",
    "Registration",
    "Source",
    "StorageError",
    "Store",
    "StoredVote",
    "VoteChange",
    "VoteResult",
]
