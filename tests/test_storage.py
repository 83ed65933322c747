"""The storage layer's own guarantees, on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from bot.domain import Answer, DeliveryState, Status, Target, VoteChange
from storage import Finished, Store
from storage.errors import SchemaTooNewError
from storage.sqlite.db import _statements
from storage.sqlite.migrations import MIGRATIONS
from tests.dbtools import AQUILAX, query


async def test_migrations_run_once_and_refuse_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    for _ in range(2):
        store = await Store.open(path)
        assert await query(store, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        await store.close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    raw.close()
    with pytest.raises(SchemaTooNewError, match="upgrade feedback-bot"):
        await Store.open(path)


async def test_concurrent_votes_never_interleave(tmp_path: Path) -> None:
    """Many users toggling at once: every transaction is whole, and one verdict row stands
    per change of verdict."""
    store = await Store.open(tmp_path / "f.db")
    try:
        _, answer, _ = await store.register_answer(
            Answer(
                channel="C0AAAAAAA",
                ts="1700000000.000100",
                targets=(AQUILAX,),
            )
        )
        changes = [
            VoteChange(answer.id, f"U{i:04d}", "button", "toggle", status)
            for i in range(50)
            for status in (Status.THUMBS_UP, Status.THUMBS_DOWN)
        ]
        results = await asyncio.gather(*(store.apply_vote(c) for c in changes))
        assert all(r.standing is not None for r in results)
        standing = await query(store, "SELECT count(*) FROM votes WHERE withdrawn_at IS NULL")
        assert standing == [(50,)]
        pending = await query(store, "SELECT count(*) FROM deliveries WHERE state = 'pending'")
        assert pending == [(1,)]  # older verdicts were superseded as newer ones came
    finally:
        await store.close()


async def _answer_with_vote(store: Store, status: Status, user: str = "U0001") -> Answer:
    _, answer, _ = await store.register_answer(
        Answer(
            channel="C0AAAAAAA",
            ts="1700000000.000200",
            targets=(AQUILAX,),
        )
    )
    await store.apply_vote(VoteChange(answer.id, user, "button", "toggle", status))
    return answer


async def test_a_stalled_owner_loses_its_claim_and_its_late_outcome_is_not_recorded(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "f.db")
    try:
        await _answer_with_vote(store, Status.THUMBS_UP)
        t = 1e10  # a clock of our own: leases are compared with the `now` given
        mine = await store.finish_and_claim([], t, 10, owner="a", lease=3.0)
        [d] = mine.deliveries
        # Before the lease expires, another process takes nothing over.
        other = await store.finish_and_claim([], t + 2.9, 10, owner="b", lease=3.0)
        assert (other.recovered, other.deliveries) == (0, [])
        # After it, b takes the send over and claims it.
        other = await store.finish_and_claim([], t + 3.1, 10, owner="b", lease=3.0)
        assert other.recovered == 1 and [x.id for x in other.deliveries] == [d.id]
        # a wakes up: its outcome is refused, b's claim stands.
        late = await store.finish_and_claim(
            [Finished(d.id, DeliveryState.DELIVERED)], t + 3.2, 0, owner="a", lease=3.0
        )
        assert late.lost == {d.id}
        rows = await query(store, "SELECT state, claimed_by FROM deliveries")
        assert rows == [("sending", "b")]
    finally:
        await store.close()


async def test_one_row_per_slot_in_flight_is_a_constraint(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "f.db")
    try:
        answer = await _answer_with_vote(store, Status.THUMBS_UP)
        claim = await store.finish_and_claim([], 1e10, 10, owner="a", lease=3.0)
        assert len(claim.deliveries) == 1
        with pytest.raises(sqlite3.IntegrityError):
            await query(
                store,
                "INSERT INTO deliveries (answer_id, status, state, next_attempt_at, created_at,"
                " updated_at) VALUES (?, 'thumbs_down', 'sending', 0, 0, 0)",
                (answer.id,),
            )
        # A newer verdict waits while the slot is in flight, whoever asks.
        await store.apply_vote(VoteChange(answer.id, "U0002", "button", "toggle", Status.FLAGGED))
        again = await store.finish_and_claim([], 1e10 + 1, 10, owner="b", lease=3.0)
        assert again.deliveries == []
    finally:
        await store.close()


def schema_at(path: Path, version: int) -> sqlite3.Connection:
    """An SQLite file as feedback-bot at schema `version` left it, open."""
    raw = sqlite3.connect(path, isolation_level=None)
    for n, script in enumerate(MIGRATIONS[:version], start=1):
        for statement in _statements(script):
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {n}")
    return raw


async def test_migration_7_keeps_every_row_and_frees_removed_messages(tmp_path: Path) -> None:
    """Schema 6 → 7 rebuilds the answers table others reference: every answer, vote and
    delivery survives with its links, foreign keys are on again, and afterwards a removed
    answer's message can be registered afresh while a live one cannot be twice."""
    path = tmp_path / "f.db"
    raw = schema_at(path, 6)
    raw.execute(
        "INSERT INTO answers (id, channel, ts, provider, request_id, org, grp, created_at)"
        " VALUES (7, 'C0AAAAAAA', '1700000000.000100', 'aquilax', 'r', 'o', 'g', 1)"
    )
    raw.execute(
        "INSERT INTO votes (answer_id, user_id, origin, status, cast_at)"
        " VALUES (7, 'U1', 'button', 'thumbs_up', 1)"
    )
    raw.execute(
        "INSERT INTO deliveries (answer_id, status, next_attempt_at, created_at, updated_at)"
        " VALUES (7, 'thumbs_up', 1, 1, 1)"
    )
    raw.close()
    store = await Store.open(path)
    try:
        assert await query(store, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        assert await query(store, "PRAGMA foreign_keys") == [(1,)]
        assert await query(store, "PRAGMA foreign_key_check") == []
        assert await query(store, "SELECT id, ts, removed_at FROM answers") == [
            (7, "1700000000.000100", None)
        ]
        assert await query(store, "SELECT answer_id FROM votes") == [(7,)]
        assert await query(store, "SELECT answer_id, state FROM deliveries") == [(7, "pending")]
        with pytest.raises(sqlite3.IntegrityError):  # still one live answer per message
            await query(
                store,
                "INSERT INTO answers (channel, ts, created_at)"
                " VALUES ('C0AAAAAAA', '1700000000.000100', 2)",
            )
        removal = await store.remove_answer("C0AAAAAAA", "1700000000.000100", "test")
        assert removal is not None and removal.votes_kept == 1
        outcome, fresh, _ = await store.register_answer(
            Answer(
                channel="C0AAAAAAA",
                ts="1700000000.000100",
                targets=(AQUILAX,),
            )
        )
        assert outcome.value == "created" and fresh.id != 7
    finally:
        await store.close()


# What schema 8 holds, for the migration to 9 to keep: an answer with a source, a vote on
# each slot, a delivery, a stored key.
SCHEMA_8_ROWS = (
    "INSERT INTO answers (id, channel, ts, provider, agent_id, message_id, created_at,"
    " registered_via, metadata_ts) VALUES (5, 'C0AAAAAAA', '1700000000.000100', 'contextual',"
    " 'ag', 'msg', 1, 'metadata', 2.5)",
    "INSERT INTO answer_sources (answer_id, position, content_id, label) VALUES (5, 0, 'c', 'Doc')",
    "INSERT INTO votes (answer_id, user_id, origin, status, cast_at) VALUES (5, 'U1', 'button',"
    " 'thumbs_up', 1)",
    "INSERT INTO votes (answer_id, content_id, user_id, origin, status, cast_at) VALUES (5, 'c',"
    " 'U1', 'button', 'flagged', 1)",
    "INSERT INTO deliveries (answer_id, status, next_attempt_at, created_at, updated_at)"
    " VALUES (5, 'thumbs_up', 1, 1, 1)",
    "INSERT INTO provider_keys (provider, ciphertext, last4, updated_at, updated_by)"
    " VALUES ('aquilax', 'x', 'ab12', 1, 'U1')",
)
SCHEMA_8_READ = (
    "SELECT a.id, t.provider, t.message_id, a.metadata_ts, s.label,"
    " (SELECT count(*) FROM votes v WHERE v.answer_id = a.id),"
    " (SELECT count(*) FROM deliveries d WHERE d.answer_id = a.id),"
    " (SELECT last4 FROM provider_keys) FROM answers a JOIN answer_sources s ON s.answer_id = a.id"
    " JOIN answer_targets t ON t.answer_id = a.id AND t.position = s.target"
)
SCHEMA_8_KEPT = [(5, "contextual", "msg", 2.5, "Doc", 2, 1, "ab12")]


async def langsmith_registers(store: Store) -> None:
    run = str(uuid.uuid4())
    answer = Answer(
        channel="C0AAAAAAA",
        ts="1700000000.000200",
        targets=(Target(provider="langsmith", run_id=run),),
    )
    outcome, stored, _ = await store.register_answer(answer)
    assert outcome.value == "created"
    assert (await store.find_answer("C0AAAAAAA", "1700000000.000200")) == stored
    assert stored.first.run_id == run


async def test_migrations_9_and_10_keep_every_row_and_take_langsmith_and_langfuse(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.db"
    raw = schema_at(path, 8)
    for statement in SCHEMA_8_ROWS:
        raw.execute(statement)
    raw.close()
    store = await Store.open(path)
    try:
        assert await query(store, "PRAGMA user_version") == [(len(MIGRATIONS),)]
        assert await query(store, "PRAGMA foreign_key_check") == []
        assert await query(store, SCHEMA_8_READ) == SCHEMA_8_KEPT
        await langsmith_registers(store)
        await store.set_provider_key("langfuse", b"y", "cd34", "U1")
    finally:
        await store.close()


@pytest.mark.postgresql_only
async def test_postgres_migrations_9_and_10_keep_every_row(database: str) -> None:
    import asyncpg

    from storage.postgres.migrations import MIGRATIONS as PG_MIGRATIONS

    # A database of its own at schema 8 (the test's own is a copy of one at the newest).
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for script in PG_MIGRATIONS[:8]:
            if script.strip():
                await conn.execute(script)
        await conn.execute("INSERT INTO schema_version VALUES (8)")
        for statement in SCHEMA_8_ROWS:
            await conn.execute(statement.replace("'x'", "'x'::bytea"))
    finally:
        await conn.close()
    store = await Store.open(database)
    try:
        assert await query(store, SCHEMA_8_READ) == SCHEMA_8_KEPT
        await langsmith_registers(store)
        await store.set_provider_key("langfuse", b"y", "cd34", "U1")
    finally:
        await store.close()
