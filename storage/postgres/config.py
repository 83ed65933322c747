"""Settings and the audit log on PostgreSQL: the units of storage/sqlite/config.py (the rules are in
its docstrings), async over an asyncpg connection in the facade's transaction.

What differs: set_config reads the old value with the row locked (FOR UPDATE), so that two
replicas changing one setting at once log each change with the value it replaced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.models import AuditEntry


async def config_values(
    conn: asyncpg.Connection, scopes: Sequence[str]
) -> list[tuple[str, str, Any]]:
    rows = await conn.fetch(
        "SELECT scope, key, value FROM config WHERE scope = ANY($1::text[])", list(scopes)
    )
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


async def settings_named(conn: asyncpg.Connection, key: str) -> list[tuple[str, Any]]:
    rows = await conn.fetch("SELECT scope, value FROM config WHERE key = $1", key)
    return [(r[0], json.loads(r[1])) for r in rows]


async def set_config(conn: asyncpg.Connection, scope: str, key: str, value: Any, user: str) -> Any:
    """storage.sqlite.config.set_config. A setting not stored yet has no row to lock: it is
    inserted with ON CONFLICT DO NOTHING, and when a replica inserted it first, we look
    again (its row is committed then) and lock that."""
    new = None if value is None else json.dumps(value, sort_keys=True)
    now = time.time()
    while True:
        old = await conn.fetchval(
            "SELECT value FROM config WHERE scope = $1 AND key = $2 FOR UPDATE", scope, key
        )
        if new is None:
            if old is not None:
                await conn.execute("DELETE FROM config WHERE scope = $1 AND key = $2", scope, key)
            break
        if old is not None:
            await conn.execute(
                "UPDATE config SET value = $3, updated_at = $4, updated_by = $5"
                " WHERE scope = $1 AND key = $2",
                scope,
                key,
                new,
                now,
                user,
            )
            break
        inserted = await conn.fetchval(
            "INSERT INTO config (scope, key, value, updated_at, updated_by)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING RETURNING true",
            scope,
            key,
            new,
            now,
            user,
        )
        if inserted:
            break
    if old != new:
        await audit(conn, now, user, scope, key, old, new)
    return json.loads(old) if old is not None else None


async def audit_log(conn: asyncpg.Connection, limit: int = 50) -> list[AuditEntry]:
    rows = await conn.fetch(
        "SELECT at, user_id, scope, key, old_value, new_value FROM audit_log"
        " ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [AuditEntry(*r) for r in rows]


async def audit(
    conn: asyncpg.Connection,
    at: float,
    user: str,
    scope: str,
    key: str,
    old: str | None,
    new: str | None,
) -> None:
    """storage.sqlite.config.audit, inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO audit_log (at, user_id, scope, key, old_value, new_value)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        at,
        user,
        scope,
        key,
        old,
        new,
    )
