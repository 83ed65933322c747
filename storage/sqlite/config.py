"""Channel and workspace settings (the `config` table) and the audit log of every change to
them and to the provider keys.

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from storage.models import AuditEntry
from storage.sqlite.db import transaction


def config_values(db: sqlite3.Connection, scopes: Sequence[str]) -> list[tuple[str, str, Any]]:
    """(scope, key, value) for every setting stored in the given scopes."""
    rows = db.execute(
        f"SELECT scope, key, value FROM config WHERE scope IN ({','.join('?' * len(scopes))})",
        list(scopes),
    ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def settings_named(db: sqlite3.Connection, key: str) -> list[tuple[str, Any]]:
    """(scope, value) of every scope that sets `key`."""
    rows = db.execute("SELECT scope, value FROM config WHERE key = ?", (key,)).fetchall()
    return [(r[0], json.loads(r[1])) for r in rows]


def set_config(db: sqlite3.Connection, scope: str, key: str, value: Any, user: str) -> Any:
    """Set (or, with None, clear) one setting and log the change. Returns the old value."""
    new = None if value is None else json.dumps(value, sort_keys=True)
    now = time.time()
    with transaction(db):
        row = db.execute(
            "SELECT value FROM config WHERE scope = ? AND key = ?", (scope, key)
        ).fetchone()
        old = row[0] if row else None
        if new is None:
            db.execute("DELETE FROM config WHERE scope = ? AND key = ?", (scope, key))
        else:
            db.execute(
                "INSERT INTO config (scope, key, value, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at,"
                " updated_by = excluded.updated_by",
                (scope, key, new, now, user),
            )
        if old != new:
            audit(db, now, user, scope, key, old, new)
    return json.loads(old) if old is not None else None


def audit_log(db: sqlite3.Connection, limit: int = 50) -> list[AuditEntry]:
    rows = db.execute(
        "SELECT at, user_id, scope, key, old_value, new_value FROM audit_log"
        " ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [AuditEntry(*r) for r in rows]


def audit(
    db: sqlite3.Connection,
    at: float,
    user: str,
    scope: str,
    key: str,
    old: str | None,
    new: str | None,
) -> None:
    """Log one change, inside the caller's transaction (keys: only their last four)."""
    db.execute(
        "INSERT INTO audit_log (at, user_id, scope, key, old_value, new_value)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (at, user, scope, key, old, new),
    )
