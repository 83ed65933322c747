"""PostgreSQL gone under a running bot: every reaction is a 503 (Slack retries it), never a
200 for a vote that was not stored, /healthz says so, and all is well once it is back. The
SQLite counterparts (a full disk, a deleted file) are in tests/test_health.py."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import Store
from storage.errors import SchemaTooNewError
from storage.sqlite.migrations import MIGRATIONS
from tests import postgres
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.slack_payloads import reaction_event

ALICE = "U0ALICE001"


@pytest.mark.postgresql_only
async def test_a_database_that_refuses_connections_gets_503s_and_recovers(
    harness: Harness, database: str, postgres_server: postgres.Server
) -> None:
    h = harness
    a = await h.contextual_answer()
    name = database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres_server.url)
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        event = reaction_event(ALICE, "+1", a["ts"])
        r = await h.slack.event(event, event_id="EvPgDown0001")
        assert r.status_code == 503, r.text
        health = await h.http.get(f"{h.base_url}/healthz")
        assert health.status_code == 503
        assert "database" in health.text
        assert "Traceback" not in r.text
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    finally:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await admin.close()
    # Slack's retry of the same event is stored, once.
    r = await h.slack.event(event, event_id="EvPgDown0001", retry=1)
    assert r.status_code == 200, r.text

    async def healthy() -> bool:
        return (await h.http.get(f"{h.base_url}/healthz")).status_code == 200

    await wait_until(healthy)
    await h.contextual.wait_for(1)
    assert await query(h.store, "SELECT user_id FROM votes") == [(ALICE,)]


async def test_replicas_starting_together_migrate_once(
    postgres_server: postgres.Server | None,
) -> None:
    if postgres_server is None:
        pytest.skip("no PostgreSQL server")
    name = postgres.new_database_name()
    admin = await asyncpg.connect(postgres_server.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")  # empty: nothing migrated yet
    finally:
        await admin.close()
    url = postgres_server.database_url(name)
    stores = await asyncio.gather(*(Store.open(url) for _ in range(4)))
    try:
        [(versions, version)] = await query(
            stores[0], "SELECT count(*), max(version) FROM schema_version"
        )
        assert (versions, version) == (1, len(MIGRATIONS))
        # A database newer than this feedback-bot is refused, in words.
        await query(stores[0], "UPDATE schema_version SET version = version + 1")
    finally:
        for store in stores:
            await store.close()
    with pytest.raises(SchemaTooNewError, match="upgrade feedback-bot"):
        await Store.open(url)
