"""Votes and settling: recording one user's action on a slot and, in the same transaction,
queueing the slot's new verdict in the outbox (`queue_verdict_change`).

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any

from bot.domain import (
    WHOLE_ANSWER,
    AnswerRef,
    SlotVerdict,
    Status,
    StoredVote,
    Verdict,
    VoteChange,
    VoteResult,
    verdict,
)
from storage.rows import (
    EXPORT_COLUMNS,
    EXPORT_FROM,
    TARGET_NAME,
    slot_row,
    slot_verdict,
    standing_vote,
    stored_vote_from_row,
    vote_from_row,
    vote_stats_from_rows,
)
from storage.rules import settle, vote_step
from storage.sqlite.db import transaction
from storage.sqlite.escalations import escalate_on_vote
from storage.sqlite.events import mark_processed
from storage.sqlite.held import hold as hold_reaction


def apply_vote(
    db: sqlite3.Connection, change: VoteChange, *, dedupe_key: str | None = None
) -> VoteResult:
    """Apply one user's action and, in the same transaction, queue the new verdict.

    `dedupe_key` (a Slack event id) makes a redelivered event change nothing.
    """
    now = time.time()
    with transaction(db):
        if dedupe_key is not None and not mark_processed(db, dedupe_key, now):
            return VoteResult(duplicate=True)
        return change_vote(db, change, now)


def change_vote(
    db: sqlite3.Connection, change: VoteChange, now: float, cast_at: float | None = None
) -> VoteResult:
    """`apply_vote` inside the caller's transaction (held reactions are applied so, with
    the registration that found their answer; `cast_at` is then when the reaction came).
    What the change supersedes is storage/rules.py's `vote_step`."""
    row = db.execute(
        "SELECT id, status FROM votes WHERE answer_id = ? AND content_id = ?"
        " AND user_id = ? AND origin = ? AND withdrawn_at IS NULL",
        (change.answer_id, change.content_id, change.user, change.origin),
    ).fetchone()
    step = vote_step(change, standing_vote(row), now, cast_at)
    if not step.changed:
        return VoteResult(vote_id=step.kept, standing=step.standing)
    if step.withdraw is not None:
        db.execute("UPDATE votes SET withdrawn_at = ? WHERE id = ?", (now, step.withdraw))
    vote_id = None
    if step.cast is not None:
        vote_id = db.execute(
            "INSERT INTO votes (answer_id, content_id, user_id, origin, status, cast_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                change.answer_id,
                change.content_id,
                change.user,
                change.origin,
                step.cast.value,
                step.cast_at,
            ),
        ).lastrowid
    new, delivery_id = queue_verdict_change(db, change.answer_id, change.content_id, now)
    if change.content_id == WHOLE_ANSWER:
        escalate_on_vote(db, change.answer_id, step.cast, new.status, now)
    return VoteResult(vote_id=vote_id, standing=step.standing, verdict=new, delivery_id=delivery_id)


def apply_vote_to_message(
    db: sqlite3.Connection,
    channel: str,
    ts: str,
    change: VoteChange,
    *,
    dedupe_key: str | None = None,
    hold: bool = False,
) -> tuple[AnswerRef | None, VoteResult]:
    """The reaction path in one call: find the answer on message (channel, ts) and apply
    `change` to it (its answer_id is filled in). No answer there: nothing is written,
    and no write lock is taken, which matters as most reactions are on other messages;
    unless `hold`, when the reaction is kept for the late lookup (storage/sqlite/held.py), with
    its event marked processed, in one transaction. Only the answer's id and thread are
    read: its sources cost more than the vote."""
    answer = _answer_on(db, channel, ts)
    if answer is None and hold:
        now = time.time()
        with transaction(db):
            if dedupe_key is not None and not mark_processed(db, dedupe_key, now):
                return None, VoteResult(duplicate=True)
            # Looked at again under the write lock: another process may have registered the
            # message meanwhile, and a reaction held for an answer would wait for nothing.
            answer = _answer_on(db, channel, ts)
            if answer is not None:
                return answer, change_vote(db, replace(change, answer_id=answer.id), now)
            if _is_a_prompt(db, channel, ts):
                return None, VoteResult()  # the bot's own "Was this helpful?" reply
            hold_reaction(db, channel, ts, change, dedupe_key, now)
        return None, VoteResult(held=True)
    if answer is None:
        return None, VoteResult()
    return answer, apply_vote(db, replace(change, answer_id=answer.id), dedupe_key=dedupe_key)


def _answer_on(db: sqlite3.Connection, channel: str, ts: str) -> AnswerRef | None:
    row = db.execute(
        "SELECT id, thread_ts FROM answers WHERE channel = ? AND ts = ? AND removed_at IS NULL",
        (channel, ts),
    ).fetchone()
    return AnswerRef(row["id"], row["thread_ts"]) if row else None


def _is_a_prompt(db: sqlite3.Connection, channel: str, ts: str) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM answers WHERE channel = ? AND prompt_ts = ? AND removed_at IS NULL",
            (channel, ts),
        ).fetchone()
        is not None
    )


def get_vote(db: sqlite3.Connection, vote_id: int) -> StoredVote | None:
    row = db.execute(
        "SELECT id, answer_id, content_id, user_id, origin, status, explanation,"
        " category, withdrawn_at IS NULL AS standing FROM votes WHERE id = ?",
        (vote_id,),
    ).fetchone()
    return stored_vote_from_row(row) if row else None


def explain_vote(
    db: sqlite3.Connection, vote_id: int, explanation: str | None, category: str | None
) -> VoteResult:
    """Attach the "what went wrong?" answers to a standing vote and re-settle its slot:
    when it is the vote that decides the verdict, the provider hears the explanation."""
    now = time.time()
    with transaction(db):
        row = db.execute(
            "UPDATE votes SET explanation = ?, category = ?"
            " WHERE id = ? AND withdrawn_at IS NULL"
            " RETURNING answer_id, content_id, status",
            (explanation, category, vote_id),
        ).fetchone()
        if row is None:
            return VoteResult()
        new, delivery_id = queue_verdict_change(db, row["answer_id"], row["content_id"], now)
        if row["content_id"] == WHOLE_ANSWER:
            status = Status(row["status"])
            escalate_on_vote(db, row["answer_id"], status, new.status, now, explained=True)
        return VoteResult(
            vote_id=vote_id,
            standing=Status(row["status"]),
            verdict=new,
            delivery_id=delivery_id,
        )


def export_page(
    db: sqlite3.Connection,
    after_id: int,
    since: float | None,
    until: float | None,
    channel: str | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Up to `limit` votes with an id above `after_id`, oldest first, with their answer's
    ids: one page of an export. Pages by id, so a million votes never sit in memory."""
    where = ["v.id > ?"]
    params: list[Any] = [after_id]
    if since is not None:
        where.append("v.cast_at >= ?")
        params.append(since)
    if until is not None:
        where.append("v.cast_at < ?")
        params.append(until)
    if channel is not None:
        where.append("a.channel = ?")
        params.append(channel)
    return [
        tuple(r)
        for r in db.execute(
            f"SELECT {EXPORT_COLUMNS}, (SELECT group_concat(name, ' ') FROM (SELECT"
            f" {TARGET_NAME} AS name FROM answer_targets t2 WHERE t2.answer_id = a.id"
            f" ORDER BY t2.position)) FROM {EXPORT_FROM}"
            f" WHERE {' AND '.join(where)} ORDER BY v.id LIMIT ?",
            (*params, limit),
        )
    ]


def votes_by(db: sqlite3.Connection, user: str) -> int:
    """How many votes of `user` stand (the App Home)."""
    (count,) = db.execute(
        "SELECT count(*) FROM votes WHERE user_id = ? AND withdrawn_at IS NULL", (user,)
    ).fetchone()
    return int(count)


def count_votes(db: sqlite3.Connection, answer_id: int) -> int:
    (count,) = db.execute("SELECT count(*) FROM votes WHERE answer_id = ?", (answer_id,)).fetchone()
    return int(count)


def slot_verdicts(db: sqlite3.Connection, answer_id: int) -> list[SlotVerdict]:
    """Each slot of the answer that has votes: its verdict (the newest standing vote's
    status, or removed) and how many votes stand there, the answer itself first."""
    rows = db.execute(
        "SELECT content_id, sum(withdrawn_at IS NULL) AS standing, max(CASE WHEN"
        " withdrawn_at IS NULL THEN id END) AS newest FROM votes WHERE answer_id = ?"
        " GROUP BY content_id ORDER BY content_id",
        (answer_id,),
    ).fetchall()
    out = []
    for r in rows:
        status = None
        if r["newest"] is not None:
            (status,) = db.execute(
                "SELECT status FROM votes WHERE id = ?", (r["newest"],)
            ).fetchone()
        out.append(slot_verdict(r["content_id"], status, r["standing"]))
    return out


def vote_stats(
    db: sqlite3.Connection, channel: str | None, since: float
) -> dict[str, dict[str, int]]:
    """Votes cast since `since`, per status: all of them, and those still standing."""
    where = "v.cast_at >= ?"
    params: list[Any] = [since]
    if channel is not None:
        where += " AND a.channel = ?"
        params.append(channel)
    rows = db.execute(
        "SELECT v.status, count(*), sum(v.withdrawn_at IS NULL) FROM votes v"
        f" JOIN answers a ON a.id = v.answer_id WHERE {where} GROUP BY v.status",
        params,
    ).fetchall()
    return vote_stats_from_rows(rows)


def queue_verdict_change(
    db: sqlite3.Connection, answer_id: int, content_id: str, now: float
) -> tuple[Verdict, int | None]:
    """Settle a slot after its votes changed: compute its verdict and put it in the outbox
    for each target the slot goes to (every target for the answer itself, the source's own
    for a source) if, and only if, something else would otherwise stay at that target (the
    outbox rules are storage/rules.py's `settle`, per target; `storage.sqlite.outbox.claim_due`
    sends a new row only after the target's send in flight for the slot).

    Runs inside the caller's transaction, with the vote change it settles. Returns the
    verdict, and the id of the first row queued for it (None when no row was added).
    """
    # Only the newest standing vote can decide (bot.domain.verdict), so only it is read:
    # a slot with thousands of votes costs one index step.
    newest = [
        vote_from_row(r)
        for r in db.execute(
            "SELECT id, user_id, status, explanation, category FROM votes"
            " WHERE answer_id = ? AND content_id = ? AND withdrawn_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (answer_id, content_id),
        )
    ]
    new = verdict(newest)
    if content_id == WHOLE_ANSWER:
        targets = db.execute(
            "SELECT position FROM answer_targets WHERE answer_id = ? ORDER BY position",
            (answer_id,),
        ).fetchall()
    else:
        targets = db.execute(
            "SELECT target FROM answer_sources WHERE answer_id = ? AND content_id = ?",
            (answer_id, content_id),
        ).fetchall()
    first: int | None = None
    for (target,) in targets:
        recent = db.execute(
            "SELECT id, state, status, explanation, category FROM deliveries"
            " WHERE answer_id = ? AND target = ? AND content_id = ?"
            " AND state IN ('pending', 'sending', 'delivered', 'skipped')"
            " ORDER BY id DESC LIMIT 3",
            (answer_id, target, content_id),
        ).fetchall()
        settlement = settle(new, [slot_row(r) for r in recent])
        if settlement.supersede:
            db.executemany(
                "UPDATE deliveries SET state = 'superseded', updated_at = ? WHERE id = ?",
                [(now, row_id) for row_id in settlement.supersede],
            )
        if not settlement.queue:
            continue
        cur = db.execute(
            "INSERT INTO deliveries (answer_id, target, content_id, status, explanation,"
            " category, next_attempt_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                answer_id,
                target,
                content_id,
                new.status.value,
                new.explanation,
                new.category,
                now,
                now,
                now,
            ),
        )
        if first is None:
            first = cur.lastrowid
    return new, first
