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
    PostReservation,
    PostState,
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
    "PostReservation",
    "PostState",
    "Registration",
    "Source",
    "StorageError",
    "Store",
    "StoredVote",
    "VoteChange",
    "VoteResult",
]
