"""Group commit (storage/sqlite/group_commit.py) on a real SQLite file: votes that queue together
share one COMMIT, a failing unit rolls back alone, a failed COMMIT (or a unit whose failure
takes the whole transaction with it) fails every unit and keeps none of their dedupe rows,
and a lone vote is not held back."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.domain import Answer, Status, VoteChange
from storage import StorageError, Store
from storage.errors import DatabaseMovedError
from storage.sqlite.db import transaction
from tests.dbtools import AQUILAX, on_connection, query, replace_under
from tests.harness import wait_until

CHANNEL = "C0GROUP001"
TS = "1700000000.000100"


async def _store_with_answer(path: Path) -> Store:
    store = await Store.open(path)
    await store.register_answer(
        Answer(
            channel=CHANNEL,
            ts=TS,
            targets=(AQUILAX,),
        )
    )
    return store


def _thumbs_up(user: str) -> VoteChange:
    return VoteChange(0, user, "reaction:+1", "add", Status.THUMBS_UP)


async def _count_commits(store: Store) -> list[str]:
    """Every COMMIT the store's connection runs from now on, as SQLite traces it."""
    commits: list[str] = []

    def trace(db: sqlite3.Connection) -> None:
        db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    await on_connection(store, trace)
    return commits


async def test_votes_that_queue_together_share_one_commit(tmp_path: Path) -> None:
    store = await _store_with_answer(tmp_path / "f.db")
    try:
        commits = await _count_commits(store)
        results = await asyncio.gather(
            *(
                store.apply_vote_to_message(
                    CHANNEL, TS, _thumbs_up(f"U{i:04d}"), dedupe_key=f"E{i}"
                )
                for i in range(40)
            )
        )
        assert all(answer is not None and r.standing is Status.THUMBS_UP for answer, r in results)
        assert await query(store, "SELECT count(*) FROM votes") == [(40,)]
        assert await query(store, "SELECT count(*) FROM processed_events") == [(40,)]
        # All forty queued before the first batch left: forty votes, one COMMIT (two if the
        # first had left alone).
        assert 1 <= len(commits) <= 2, commits
    finally:
        await store.close()


async def test_a_lone_vote_commits_alone_and_at_once(tmp_path: Path) -> None:
    store = await _store_with_answer(tmp_path / "f.db")
    try:
        commits = await _count_commits(store)
        started = time.perf_counter()
        _, result = await store.apply_vote_to_message(CHANNEL, TS, _thumbs_up("U0001"))
        assert time.perf_counter() - started < 0.5  # no timer waits for company
        assert result.standing is Status.THUMBS_UP
        assert commits == ["COMMIT"]
    finally:
        await store.close()


async def _one_batch(store: Store, *units: Awaitable[object]) -> list[object]:
    """Await `units` as one batch, each one's result or error in order. The database
    thread is held until every unit has queued behind it, so they leave together: no
    clock decides what shares a batch."""
    gate, holding = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        holding.set()
        gate.wait(30)  # only a safety net: the test releases it

    grouped = store._b._votes  # type: ignore[attr-defined]
    first = asyncio.ensure_future(grouped.run(hold))

    async def held() -> bool:
        return holding.is_set()

    async def queued() -> bool:
        return len(grouped._queued) == len(units)

    await wait_until(held)  # `hold` left alone, in a batch of its own
    batch = [asyncio.ensure_future(unit) for unit in units]
    await wait_until(queued)
    gate.set()
    await first
    return await asyncio.gather(*batch, return_exceptions=True)


def _insert(event_id: str, fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def work(db: sqlite3.Connection) -> str:
        with transaction(db):
            db.execute(
                "INSERT INTO processed_events (event_id, received_at) VALUES (?, 0)", (event_id,)
            )
            if fail:
                raise ValueError("a bug in this unit")
        return event_id

    return work


async def test_a_failing_unit_rolls_back_alone(tmp_path: Path) -> None:
    store = await _store_with_answer(tmp_path / "f.db")
    try:
        commits = await _count_commits(store)
        grouped = store._b._votes  # type: ignore[attr-defined]
        a, b, c = await _one_batch(
            store,
            grouped.run(_insert("A")),
            grouped.run(_insert("B", fail=True)),
            grouped.run(_insert("C")),
        )
        assert (a, c) == ("A", "C")
        assert isinstance(b, ValueError)
        rows = await query(store, "SELECT event_id FROM processed_events ORDER BY event_id")
        assert rows == [("A",), ("C",)]
        assert len(commits) == 1  # the three units were one transaction; `hold` wrote nothing
    finally:
        await store.close()


async def test_a_unit_that_loses_the_whole_transaction_fails_the_whole_batch(
    tmp_path: Path,
) -> None:
    """The disk fills up in the middle of a batch: SQLite then rolls back the whole
    transaction, not just the failing unit's savepoint, so the vote before it is lost too.
    Every caller of the batch gets StorageError (none is acknowledged for a write that is
    gone, and none after it commits on its own), nothing of the batch stands, and Slack's
    retries of the same events are processed once there is room again."""
    store = await _store_with_answer(tmp_path / "f.db")

    def room_for(pages: int) -> Callable[[sqlite3.Connection], None]:
        def limit(db: sqlite3.Connection) -> None:
            used = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {used + pages}")

        return limit

    try:
        # A vote fits in the pages the file already has; a megabyte does not.
        await on_connection(store, room_for(20))
        grouped = store._b._votes  # type: ignore[attr-defined]
        outcomes = await _one_batch(
            store,
            store.apply_vote_to_message(CHANNEL, TS, _thumbs_up("U0001"), dedupe_key="E1"),
            grouped.run(_insert("x" * 1_000_000)),  # the disk is full
            store.apply_vote_to_message(CHANNEL, TS, _thumbs_up("U0003"), dedupe_key="E3"),
        )
        assert all(isinstance(o, StorageError) for o in outcomes), outcomes
        assert all("database or disk is full" in str(o) for o in outcomes), outcomes
        stored = "SELECT (SELECT count(*) FROM votes), (SELECT count(*) FROM deliveries)," + (
            " (SELECT count(*) FROM processed_events)"
        )
        assert await query(store, stored) == [(0, 0, 0)]

        await on_connection(store, room_for(100_000))
        retried = [
            await store.apply_vote_to_message(CHANNEL, TS, _thumbs_up(user), dedupe_key=key)
            for user, key in (("U0001", "E1"), ("U0003", "E3"))
        ]
        assert [r.duplicate for _, r in retried] == [False, False]
        assert await query(store, "SELECT user_id FROM votes ORDER BY id") == [
            ("U0001",),
            ("U0003",),
        ]
    finally:
        await store.close()


async def test_a_failed_commit_fails_every_vote_and_keeps_no_dedupe_row(tmp_path: Path) -> None:
    """The file is replaced under the bot (the COMMIT is refused: writes would go to a file
    no one reads). Every vote of the batch fails with StorageError; once the file is back,
    the same events (Slack's retries) are processed, not dropped as duplicates."""
    path = tmp_path / "f.db"
    store = await _store_with_answer(path)
    aside = tmp_path / "aside.db"
    try:
        replace_under(path, aside)
        votes = [
            store.apply_vote_to_message(CHANNEL, TS, _thumbs_up(f"U{i:04d}"), dedupe_key=f"E{i}")
            for i in range(10)
        ]
        outcomes = await asyncio.gather(*votes, return_exceptions=True)
        assert all(isinstance(o, DatabaseMovedError) for o in outcomes), outcomes
        os.replace(aside, path)
        assert await query(store, "SELECT count(*) FROM processed_events") == [(0,)]
        retried = await asyncio.gather(
            *(
                store.apply_vote_to_message(
                    CHANNEL, TS, _thumbs_up(f"U{i:04d}"), dedupe_key=f"E{i}"
                )
                for i in range(10)
            )
        )
        assert [r.duplicate for _, r in retried] == [False] * 10
        assert await query(store, "SELECT count(*) FROM votes") == [(10,)]
    finally:
        await store.close()


async def test_a_batch_that_only_reads_takes_no_write_lock(tmp_path: Path) -> None:
    """Reactions on messages that are not answers read and write nothing: another process
    holding the write lock does not hold them up."""
    path = tmp_path / "f.db"
    store = await _store_with_answer(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the admin CLI, say, mid-write
        started = time.perf_counter()
        answer, result = await store.apply_vote_to_message(
            CHANNEL, "1700000000.999999", _thumbs_up("U0001"), dedupe_key="E1"
        )
        assert answer is None and result.vote_id is None
        # Not held until busy_timeout (5 s) gives up: half of it leaves a loaded machine room.
        assert time.perf_counter() - started < 2.5
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store.close()


async def test_the_batch_error_reaches_callers_as_storage_error(tmp_path: Path) -> None:
    """A database fault inside one unit (here: a write to a table that is not there) is a
    StorageError for that caller, as from a transaction of its own."""
    store = await _store_with_answer(tmp_path / "f.db")
    try:

        def broken(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(StorageError, match="no such table"):
            await store._b._votes.run(broken)
        _, result = await store.apply_vote_to_message(CHANNEL, TS, _thumbs_up("U0001"))
        assert result.standing is Status.THUMBS_UP  # and the next batch is fine
    finally:
        await store.close()
