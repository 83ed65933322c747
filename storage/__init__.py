"""SQLite storage through aiosqlite: schema, migrations and every query."""

from storage.models import (
    Answer,
    Delivery,
    DeliveryCounts,
    DeliveryState,
    Registration,
    Source,
    VoteChange,
    VoteResult,
)
from storage.store import Store

__all__ = [
    "Answer",
    "Delivery",
    "DeliveryCounts",
    "DeliveryState",
    "Registration",
    "Source",
    "Store",
    "VoteChange",
    "VoteResult",
]
