"""Provider API keys entered with `/feedback setup`, stored encrypted (the caller encrypts:
no key in clear reaches the database).

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import sqlite3
import time

from storage.sqlite.config import audit
from storage.sqlite.db import transaction


def provider_keys(db: sqlite3.Connection) -> dict[str, tuple[bytes, str]]:
    """provider -> (ciphertext, last four characters)."""
    rows = db.execute("SELECT provider, ciphertext, last4 FROM provider_keys").fetchall()
    return {r[0]: (bytes(r[1]), r[2]) for r in rows}


def set_provider_key(
    db: sqlite3.Connection, provider: str, ciphertext: bytes | None, last4: str, user: str
) -> None:
    """Store (or, with None, delete) an encrypted key; the audit log shows only the
    last four characters."""
    now = time.time()
    with transaction(db):
        row = db.execute(
            "SELECT last4 FROM provider_keys WHERE provider = ?", (provider,)
        ).fetchone()
        if ciphertext is None:
            db.execute("DELETE FROM provider_keys WHERE provider = ?", (provider,))
        else:
            db.execute(
                "INSERT INTO provider_keys (provider, ciphertext, last4, updated_at,"
                " updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE"
                " SET ciphertext = excluded.ciphertext, last4 = excluded.last4,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (provider, ciphertext, last4, now, user),
            )
        old = f"set (…{row[0]})" if row else None
        new = f"set (…{last4})" if ciphertext is not None else None
        audit(db, now, user, "*", f"{provider}_api_key", old, new)
