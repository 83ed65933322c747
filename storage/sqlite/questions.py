"""Questions the bot answers through a Contextual agent (bot/ask/), and the conversation each
Slack thread continues.

A question is claimed once: the holder answers it, then records how (`finish_question`).
Slack sending the event again, or to a second process, finds it claimed or done; a claim
whose holder died runs out at `expires_at` and may be taken again. While one of a user's
questions in a thread is being answered, another from them there is busy: one answer, not
two. Each public function is one unit of work with its own transaction.
"""

from __future__ import annotations

import sqlite3
import time

from storage.models import Asking, Question, QuestionClaim, QuestionEnd
from storage.sqlite.db import transaction


def claim_question(db: sqlite3.Connection, asking: Asking, holder: str, ttl: float) -> Question:
    channel, ts, thread_ts, user = asking.channel, asking.ts, asking.thread_ts, asking.user
    now = time.time()
    with transaction(db):
        row = db.execute(
            "SELECT state, holder, expires_at FROM ask_questions WHERE channel = ? AND ts = ?",
            (channel, ts),
        ).fetchone()
        if row is not None and row["state"] != "asking":
            return Question(QuestionClaim.DONE)
        if row is not None and row["holder"] != holder and row["expires_at"] > now:
            return Question(QuestionClaim.BUSY)
        open_one = db.execute(
            "SELECT 1 FROM ask_questions WHERE channel = ? AND thread_ts = ? AND user_id = ?"
            " AND state = 'asking' AND ts != ? AND expires_at > ? LIMIT 1",
            (channel, thread_ts, user, ts, now),
        ).fetchone()
        if open_one is not None:
            return Question(QuestionClaim.BUSY)
        db.execute(
            "INSERT INTO ask_questions (channel, ts, thread_ts, user_id, state, holder,"
            " expires_at, asked_at) VALUES (?, ?, ?, ?, 'asking', ?, ?, ?)"
            " ON CONFLICT (channel, ts) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at",
            (channel, ts, thread_ts, user, holder, now + ttl, now),
        )
        return _with_conversation(db, channel, thread_ts)


def _with_conversation(db: sqlite3.Connection, channel: str, thread_ts: str) -> Question:
    row = db.execute(
        "SELECT agent_id, conversation_id FROM ask_threads WHERE channel = ? AND thread_ts = ?",
        (channel, thread_ts),
    ).fetchone()
    if row is None:
        return Question(QuestionClaim.CLAIMED)
    return Question(QuestionClaim.CLAIMED, row["agent_id"], row["conversation_id"])


def finish_question(
    db: sqlite3.Connection, channel: str, ts: str, holder: str, end: QuestionEnd
) -> bool:
    """Record how the question ended, and the thread's conversation when there is one;
    False when the claim was no longer the holder's (it expired and another took it), and
    nothing was written."""
    answered, answer_ts, conversation = end.answered, end.answer_ts, end.conversation
    now = time.time()
    with transaction(db):
        cur = db.execute(
            "UPDATE ask_questions SET state = ?, answer_ts = ? WHERE channel = ? AND ts = ?"
            " AND holder = ? AND state = 'asking'",
            ("answered" if answered else "failed", answer_ts, channel, ts, holder),
        )
        if cur.rowcount == 0:
            return False
        if conversation is not None:
            (thread_ts,) = db.execute(
                "SELECT thread_ts FROM ask_questions WHERE channel = ? AND ts = ?", (channel, ts)
            ).fetchone()
            agent_id, conversation_id = conversation
            db.execute(
                "INSERT INTO ask_threads (channel, thread_ts, agent_id, conversation_id,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, thread_ts)"
                " DO UPDATE SET agent_id = excluded.agent_id,"
                " conversation_id = excluded.conversation_id, updated_at = excluded.updated_at",
                (channel, thread_ts, agent_id, conversation_id, now),
            )
        return True


def thread_conversation(
    db: sqlite3.Connection, channel: str, thread_ts: str
) -> tuple[str, str] | None:
    """The agent and conversation a thread the bot answered in continues, if any."""
    row = db.execute(
        "SELECT agent_id, conversation_id FROM ask_threads WHERE channel = ? AND thread_ts = ?",
        (channel, thread_ts),
    ).fetchone()
    return (row["agent_id"], row["conversation_id"]) if row else None
