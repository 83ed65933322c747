"""SQLite storage through aiosqlite: schema, migrations, and one module of queries per
aggregate behind the `Store` facade."""

# Delivery, DeliveryState and Registration live in bot.domain; they are re-exported here
# only for bot/admin.py and bot/cli.py, which still import them from storage.
from bot.domain import Delivery, DeliveryState, Registration
from storage.db import StorageError
from storage.models import (
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    PostReservation,
    PostState,
)
from storage.store import Store

__all__ = [
    "AuditEntry",
    "Claim",
    "Delivery",
    "DeliveryCounts",
    "DeliveryState",
    "Finished",
    "PostReservation",
    "PostState",
    "Registration",
    "StorageError",
    "Store",
]
