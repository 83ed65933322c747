"""SQLite storage through aiosqlite: schema, migrations and every query."""

from storage.models import (
    Answer,
    AuditEntry,
    Delivery,
    DeliveryCounts,
    DeliveryState,
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
    "Delivery",
    "DeliveryCounts",
    "DeliveryState",
    "Registration",
    "Source",
    "Store",
    "StoredVote",
    "VoteChange",
    "VoteResult",
]
