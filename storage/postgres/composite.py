"""The units that span aggregates, on PostgreSQL: storage/sqlite/composite.py's `register`,
`remove_answer` and `drop_held` (the rules are in their docstrings), async over an asyncpg
connection in the facade's transaction.

What differs: SQLite's write lock serialises them; here each first takes the lock of its
message (storage/postgres/held.py: lock_message), so that two of them, or one and a
reaction being held, on one message take turns; and the answer row is locked (FOR NO KEY UPDATE)
before its votes are counted or changed, or its deliveries cancelled, so that votes cast on
it by id (buttons) take turns with them too.
"""

from __future__ import annotations

import time

import asyncpg

from bot.domain import Answer, Provenance, Registration
from storage.models import Removal
from storage.postgres import answers, held, outbox, votes
from storage.rules import provenance_newer


async def remove_answer(
    conn: asyncpg.Connection, channel: str, ts: str, reason: str
) -> Removal | None:
    """storage.sqlite.composite.remove_answer. mark_removed locks the answer row as it reads it."""
    now = time.time()
    await held.lock_message(conn, channel, ts)
    answer = await answers.mark_removed(conn, channel, ts, now)
    if answer is None:
        return None
    cancelled = await outbox.cancel_pending(conn, answer.id, reason, now)
    return Removal(answer, await votes.count_votes(conn, answer.id), cancelled)


async def register(
    conn: asyncpg.Connection,
    answer: Answer,
    provenance: Provenance | None = None,
    *,
    holder: str | None = None,
    replace_unvoted: bool = False,
) -> tuple[Registration, Answer, bool]:
    """storage.sqlite.composite.register. Under the message's lock, the answer found there stays
    as found until we commit (only these units register or remove it)."""
    now = time.time()
    await held.lock_message(conn, answer.channel, answer.ts)
    if holder is not None:
        await answers.drop_reservation(conn, answer, holder)
    if provenance is not None and await answers.was_removed(conn, answer.channel, answer.ts):
        removed = await answers.removed_answer(conn, answer.channel, answer.ts)
        if removed is not None:  # it is: was_removed has just read it
            return Registration.ANSWER_REMOVED, removed, False
    outcome, stored = await answers.add_answer(conn, answer, provenance)
    if (
        outcome is Registration.CONFLICT
        and replace_unvoted
        and provenance_newer(provenance, await answers.metadata_ts(conn, stored.id))
    ):
        await _lock_answer(conn, stored.id)  # no vote lands on it while we count
        if await votes.count_votes(conn, stored.id) == 0:
            await answers.mark_removed(conn, answer.channel, answer.ts, now)
            _, new = await answers.add_answer(conn, answer, provenance)
            stored = await answers.carry_prompt(conn, stored, new)
            outcome = Registration.REPLACED
    return outcome, stored, await _apply_held(conn, stored, now)


async def drop_held(conn: asyncpg.Connection, channel: str, ts: str) -> tuple[int, bool]:
    """storage.sqlite.composite.drop_held."""
    now = time.time()
    await held.lock_message(conn, channel, ts)
    live = await answers.find_answer(conn, channel, ts)
    if live is not None:
        return 0, await _apply_held(conn, live, now)
    return await held.drop(conn, channel, ts), False


async def _apply_held(conn: asyncpg.Connection, answer: Answer, now: float) -> bool:
    """storage.sqlite.composite._apply_held, with the answer locked before its votes change."""
    taken = await held.take_held(conn, answer.id, answer.channel, answer.ts)
    if taken:
        await _lock_answer(conn, answer.id)
    results = [
        await votes.change_vote(conn, change, now, cast_at=came_at) for change, came_at in taken
    ]
    return any(r.delivery_id is not None for r in results)


async def _lock_answer(conn: asyncpg.Connection, answer_id: int) -> None:
    # NO KEY UPDATE, as storage/postgres/votes.py takes it: it excludes every other locker
    # of the answer, yet lets a delivery row's foreign-key check through (FOR UPDATE would
    # make a claim turn that rewrites a row wait on us, and deadlock with a vote).
    await conn.execute("SELECT id FROM answers WHERE id = $1 FOR NO KEY UPDATE", answer_id)
