"""Provider keys on PostgreSQL: the units of storage/sqlite/keys.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction; the ciphertext
is BYTEA.

What differs: set_provider_key reads the old key with its row locked (FOR UPDATE), as
set_config does, so that the audit log names the key each change replaced.
"""

from __future__ import annotations

import time

import asyncpg

from storage.postgres.config import audit


async def provider_keys(conn: asyncpg.Connection) -> dict[str, tuple[bytes, str]]:
    rows = await conn.fetch("SELECT provider, ciphertext, last4 FROM provider_keys")
    return {r[0]: (bytes(r[1]), r[2]) for r in rows}


async def set_provider_key(
    conn: asyncpg.Connection, provider: str, ciphertext: bytes | None, last4: str, user: str
) -> None:
    """storage.sqlite.keys.set_provider_key. A key not stored yet has no row to lock: it is
    inserted with ON CONFLICT DO NOTHING, and when a replica inserted it first, we look
    again and lock that."""
    now = time.time()
    while True:
        old_last4 = await conn.fetchval(
            "SELECT last4 FROM provider_keys WHERE provider = $1 FOR UPDATE", provider
        )
        if ciphertext is None:
            if old_last4 is not None:
                await conn.execute("DELETE FROM provider_keys WHERE provider = $1", provider)
            break
        if old_last4 is not None:
            await conn.execute(
                "UPDATE provider_keys SET ciphertext = $2, last4 = $3, updated_at = $4,"
                " updated_by = $5 WHERE provider = $1",
                provider,
                ciphertext,
                last4,
                now,
                user,
            )
            break
        inserted = await conn.fetchval(
            "INSERT INTO provider_keys (provider, ciphertext, last4, updated_at, updated_by)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider) DO NOTHING RETURNING true",
            provider,
            ciphertext,
            last4,
            now,
            user,
        )
        if inserted:
            break
    old = f"set (…{old_last4})" if old_last4 is not None else None
    new = f"set (…{last4})" if ciphertext is not None else None
    await audit(conn, now, user, "*", f"{provider}_api_key", old, new)
