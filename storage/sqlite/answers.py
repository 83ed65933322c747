"""Answers: the Slack messages mapped to provider targets, with their sources, and the
reservations that make concurrent requests to post one answer post one message.

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py); the helpers without a transaction of their
own run inside their caller's.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from typing import Any

from bot.domain import Answer, Provenance, Registration
from storage.models import MetadataRegistration, PostReservation, PostState
from storage.rows import (
    ANSWER_FIELDS,
    ANSWER_INSERT,
    ANSWER_INSERT_COUNT,
    TARGET_COLUMNS,
    TARGET_INSERT,
    TARGET_INSERT_COUNT,
    answer_from_row,
    answer_values,
    metadata_registration_from_row,
    source_values,
    target_values,
)
from storage.sqlite.db import transaction

INSERT_PLACEHOLDERS = ", ".join("?" * ANSWER_INSERT_COUNT)
TARGET_PLACEHOLDERS = ", ".join("?" * TARGET_INSERT_COUNT)
# The columns answer_from_row reads, with the targets and the sources in JSON arrays; the
# outbox selects them with each delivery.
ANSWER_COLUMNS = f"""{ANSWER_FIELDS},
    (SELECT json_group_array(json_array({TARGET_COLUMNS}))
       FROM (SELECT {TARGET_COLUMNS} FROM answer_targets
              WHERE answer_id = a.id ORDER BY position)) AS targets,
    (SELECT json_group_array(json_array(s.content_id, s.label, s.target))
       FROM (SELECT content_id, label, target FROM answer_sources
              WHERE answer_id = a.id ORDER BY position) AS s) AS sources
"""


def find_answer(db: sqlite3.Connection, channel: str, ts: str) -> Answer | None:
    row = db.execute(
        f"SELECT {ANSWER_COLUMNS} FROM answers a"
        " WHERE a.channel = ? AND a.ts = ? AND a.removed_at IS NULL",
        (channel, ts),
    ).fetchone()
    return answer_from_row(row) if row else None


def find_answer_for_controls(db: sqlite3.Connection, channel: str, ts: str) -> Answer | None:
    """The answer whose feedback controls sit on message `ts`: the answer itself, or
    the bot's "Was this helpful?" reply under it."""
    # Two lookups, each on its own index: as one query with OR, SQLite would rather walk
    # the channel's answers.
    answer = find_answer(db, channel, ts)
    if answer is not None:
        return answer
    row = db.execute(
        f"SELECT {ANSWER_COLUMNS} FROM answers a"
        " WHERE a.channel = ? AND a.prompt_ts = ? AND a.removed_at IS NULL",
        (channel, ts),
    ).fetchone()
    return answer_from_row(row) if row else None


def add_answer(
    db: sqlite3.Connection, answer: Answer, provenance: Provenance | None = None
) -> tuple[Registration, Answer]:
    """Map a Slack message to a provider target; the same mapping twice is a no-op. Runs
    inside the caller's transaction (storage/store.py: _register)."""
    existing = find_answer(db, answer.channel, answer.ts)
    if existing is not None:
        same = existing.same_mapping(answer)
        return (Registration.UNCHANGED if same else Registration.CONFLICT), existing
    cur = db.execute(
        f"INSERT INTO answers ({ANSWER_INSERT}) VALUES ({INSERT_PLACEHOLDERS})",
        answer_values(answer, provenance, time.time()),
    )
    answer_id = int(cur.lastrowid or 0)
    db.executemany(
        f"INSERT INTO answer_targets ({TARGET_INSERT}) VALUES ({TARGET_PLACEHOLDERS})",
        target_values(answer_id, answer),
    )
    db.executemany(
        "INSERT INTO answer_sources (answer_id, position, content_id, label, target)"
        " VALUES (?, ?, ?, ?, ?)",
        source_values(answer_id, answer),
    )
    return Registration.CREATED, replace(answer, id=answer_id)


def last_via_metadata(db: sqlite3.Connection) -> MetadataRegistration | None:
    """The newest answer that registered itself through message metadata."""
    row = db.execute(
        "SELECT channel, ts, created_at, registered_via, registered_by_app FROM answers"
        " WHERE registered_via IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return metadata_registration_from_row(row) if row else None


def list_answers(
    db: sqlite3.Connection, channel: str | None, limit: int, before_id: int | None
) -> tuple[list[Answer], int | None]:
    """Registered answers, newest first, `limit` at most, older than `before_id` if given;
    and the id to continue before, when there are more."""
    where = ["a.removed_at IS NULL"]
    params: list[Any] = []
    if channel is not None:
        where.append("a.channel = ?")
        params.append(channel)
    if before_id is not None:
        where.append("a.id < ?")
        params.append(before_id)
    rows = db.execute(
        f"SELECT {ANSWER_COLUMNS} FROM answers a WHERE {' AND '.join(where)}"
        " ORDER BY a.id DESC LIMIT ?",
        (*params, limit + 1),
    ).fetchall()
    answers = [answer_from_row(r) for r in rows[:limit]]
    return answers, (answers[-1].id if len(rows) > limit else None)


def mark_removed(db: sqlite3.Connection, channel: str, ts: str, now: float) -> Answer | None:
    """Mark the answer on message (channel, ts) removed: the row stays, with its votes and
    delivery history, and the message may be registered afresh. None when there is none.
    Runs inside the caller's transaction (storage/store.py: remove_answer)."""
    answer = find_answer(db, channel, ts)
    if answer is not None:
        db.execute("UPDATE answers SET removed_at = ? WHERE id = ?", (now, answer.id))
    return answer


def metadata_ts(db: sqlite3.Connection, answer_id: int) -> float | None:
    """When the metadata the answer's mapping came from was posted or last updated."""
    row = db.execute("SELECT metadata_ts FROM answers WHERE id = ?", (answer_id,)).fetchone()
    return row[0] if row else None


def removed_answer(db: sqlite3.Connection, channel: str, ts: str) -> Answer | None:
    """The newest answer removed from message (channel, ts), if there is one."""
    row = db.execute(
        f"SELECT {ANSWER_COLUMNS} FROM answers a WHERE a.channel = ? AND a.ts = ?"
        " AND a.removed_at IS NOT NULL ORDER BY a.id DESC LIMIT 1",
        (channel, ts),
    ).fetchone()
    return answer_from_row(row) if row else None


def was_removed(db: sqlite3.Connection, channel: str, ts: str) -> bool:
    """An admin removed the answer on this message, and none is registered there now."""
    return find_answer(db, channel, ts) is None and removed_answer(db, channel, ts) is not None


def carry_prompt(db: sqlite3.Connection, old: Answer, new: Answer) -> Answer:
    """Give `new` the prompt `old` (now removed) had. Inside the caller's transaction."""
    if old.prompt_ts is None:
        return new
    db.execute("UPDATE answers SET prompt_ts = NULL WHERE id = ?", (old.id,))
    db.execute("UPDATE answers SET prompt_ts = ? WHERE id = ?", (old.prompt_ts, new.id))
    return replace(new, prompt_ts=old.prompt_ts)


def set_prompt_ts(db: sqlite3.Connection, answer_id: int, prompt_ts: str) -> None:
    with transaction(db):
        db.execute("UPDATE answers SET prompt_ts = ? WHERE id = ?", (prompt_ts, answer_id))


# ---------------------------------------------------------------- post reservations


def reserve_post(
    db: sqlite3.Connection, answer: Answer, holder: str, ttl: float
) -> PostReservation:
    """Reserve posting `answer` in its channel for `holder`, for `ttl` seconds at most.

    The reservation lives in the database, not in memory, so that two processes on one
    file (the bot and the CLI) post one message between them. One left by a crashed
    holder is taken over once it expires.
    """
    key = _post_key(answer)
    now = time.time()
    with transaction(db):
        posted = _find_posted(db, answer)
        if posted is not None:
            return PostReservation(PostState.POSTED, posted)
        # Rows exist only while a post is under way: clearing the expired ones
        # costs little, and a crashed holder's row goes with them.
        db.execute("DELETE FROM post_reservations WHERE expires_at <= ?", (now,))
        row = db.execute(
            "SELECT holder, expires_at FROM post_reservations"
            " WHERE channel = ? AND provider = ? AND target = ?",
            key,
        ).fetchone()
        if row is not None and row["holder"] != holder:
            return PostReservation(PostState.BUSY, expires_at=float(row["expires_at"]))
        db.execute(
            "INSERT INTO post_reservations (channel, provider, target, holder, expires_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, provider, target) DO UPDATE"
            " SET holder = excluded.holder, expires_at = excluded.expires_at",
            (*key, holder, now + ttl),
        )
        return PostReservation(PostState.RESERVED, expires_at=now + ttl)


def release_post(db: sqlite3.Connection, answer: Answer, holder: str) -> None:
    """Give up a reservation (the post failed), if `holder` still has it."""
    with transaction(db):
        drop_reservation(db, answer, holder)


def _find_posted(db: sqlite3.Connection, answer: Answer) -> Answer | None:
    """An answer the bot already posted in the channel for the same provider answer (message,
    request, run, trace and observation) as its first target."""
    first = answer.first
    row = db.execute(
        # `+a.channel`: look up by the provider's id (a handful of rows), not by walking
        # the channel's answers, which SQLite would otherwise choose.
        f"SELECT {ANSWER_COLUMNS} FROM answer_targets t JOIN answers a ON a.id = t.answer_id"
        f" WHERE t.{first.key_column} = ? AND t.position = 0 AND t.provider = ?"
        " AND t.observation_id IS ? AND +a.channel = ? AND a.posted_by_bot = 1"
        " AND a.removed_at IS NULL ORDER BY a.id LIMIT 1",
        (first.key, first.provider, first.observation_id, answer.channel),
    ).fetchone()
    return answer_from_row(row) if row else None


def _post_key(answer: Answer) -> tuple[str, str, str]:
    return answer.channel, answer.first.provider, answer.first.key


def drop_reservation(db: sqlite3.Connection, answer: Answer, holder: str) -> None:
    # Only the holder's own: an expired reservation may have been taken over meanwhile.
    db.execute(
        "DELETE FROM post_reservations WHERE channel = ? AND provider = ? AND target = ?"
        " AND holder = ?",
        (*_post_key(answer), holder),
    )
