"""Questions on PostgreSQL: the units of storage/sqlite/questions.py (the rules are in its
docstrings), async over an asyncpg connection in the facade's transaction.

What differs: SQLite's writers take turns, PostgreSQL's replicas do not. A claim first takes
the lock of the question's thread (`THREAD_LOCK`), so that two replicas given the same
question, or one user's two questions, decide one after the other.
"""

from __future__ import annotations

import time

import asyncpg

from storage.models import Asking, Question, QuestionClaim, QuestionEnd

# The first key of the advisory lock of one thread; the second is a hash of the thread.
THREAD_LOCK = 0x61736B71


async def claim_question(
    conn: asyncpg.Connection, asking: Asking, holder: str, ttl: float
) -> Question:
    channel, ts, thread_ts, user = asking.channel, asking.ts, asking.thread_ts, asking.user
    now = time.time()
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2 || ' ' || $3))",
        THREAD_LOCK,
        channel,
        thread_ts,
    )
    row = await conn.fetchrow(
        "SELECT state, holder, expires_at FROM ask_questions WHERE channel = $1 AND ts = $2",
        channel,
        ts,
    )
    if row is not None and row["state"] != "asking":
        return Question(QuestionClaim.DONE)
    if row is not None and row["holder"] != holder and row["expires_at"] > now:
        return Question(QuestionClaim.BUSY)
    open_one = await conn.fetchval(
        "SELECT 1 FROM ask_questions WHERE channel = $1 AND thread_ts = $2 AND user_id = $3"
        " AND state = 'asking' AND ts != $4 AND expires_at > $5 LIMIT 1",
        channel,
        thread_ts,
        user,
        ts,
        now,
    )
    if open_one is not None:
        return Question(QuestionClaim.BUSY)
    await conn.execute(
        "INSERT INTO ask_questions (channel, ts, thread_ts, user_id, state, holder,"
        " expires_at, asked_at) VALUES ($1, $2, $3, $4, 'asking', $5, $6, $7)"
        " ON CONFLICT (channel, ts) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at",
        channel,
        ts,
        thread_ts,
        user,
        holder,
        now + ttl,
        now,
    )
    conversation = await thread_conversation(conn, channel, thread_ts)
    if conversation is None:
        return Question(QuestionClaim.CLAIMED)
    return Question(QuestionClaim.CLAIMED, *conversation)


async def finish_question(
    conn: asyncpg.Connection, channel: str, ts: str, holder: str, end: QuestionEnd
) -> bool:
    answered, answer_ts, conversation = end.answered, end.answer_ts, end.conversation
    thread_ts = await conn.fetchval(
        "UPDATE ask_questions SET state = $1, answer_ts = $2 WHERE channel = $3 AND ts = $4"
        " AND holder = $5 AND state = 'asking' RETURNING thread_ts",
        "answered" if answered else "failed",
        answer_ts,
        channel,
        ts,
        holder,
    )
    if thread_ts is None:
        return False
    if conversation is not None:
        agent_id, conversation_id = conversation
        await conn.execute(
            "INSERT INTO ask_threads (channel, thread_ts, agent_id, conversation_id, updated_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel, thread_ts)"
            " DO UPDATE SET agent_id = excluded.agent_id,"
            " conversation_id = excluded.conversation_id, updated_at = excluded.updated_at",
            channel,
            thread_ts,
            agent_id,
            conversation_id,
            time.time(),
        )
    return True


async def thread_conversation(
    conn: asyncpg.Connection, channel: str, thread_ts: str
) -> tuple[str, str] | None:
    row = await conn.fetchrow(
        "SELECT agent_id, conversation_id FROM ask_threads WHERE channel = $1 AND thread_ts = $2",
        channel,
        thread_ts,
    )
    return (row["agent_id"], row["conversation_id"]) if row else None
