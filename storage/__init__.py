"""Storage: SQLite through aiosqlite (the default) or PostgreSQL through asyncpg; schema,
migrations, and one module of queries per aggregate and backend behind the `Store` facade."""

from storage.errors import StorageError
from storage.models import (
    Asking,
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    PostReservation,
    PostState,
    Question,
    QuestionClaim,
    QuestionEnd,
    Removal,
)
from storage.store import Store

__all__ = [
    "Asking",
    "AuditEntry",
    "Claim",
    "DeliveryCounts",
    "Finished",
    "PostReservation",
    "PostState",
    "Question",
    "QuestionClaim",
    "QuestionEnd",
    "Removal",
    "StorageError",
    "Store",
]
