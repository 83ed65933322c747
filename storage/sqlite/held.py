"""Held reactions: reactions on a message that is not a registered answer yet, kept while
the bot looks the message up in Slack (late lookup, bot/answers/late_lookup.py). Whatever then
registers the message applies them, in the order they came, in the registration's own
transaction (storage/store.py: _register); a message that turns out not to be an answer drops
them.

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade; `hold`, `take_held` and `drop` run inside their caller's
transaction.
"""

from __future__ import annotations

import sqlite3

from bot.domain import VoteChange
from storage.models import HeldMessage
from storage.rows import held_message_from_row, held_reaction_from_row, held_values
from storage.rules import arrival_order


def hold(
    db: sqlite3.Connection,
    channel: str,
    ts: str,
    change: VoteChange,
    event_id: str | None,
    now: float,
) -> None:
    db.execute(
        "INSERT INTO held_reactions (channel, ts, user_id, origin, action, status, event_id,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        held_values(channel, ts, change, event_id, now),
    )


def take_held(
    db: sqlite3.Connection, answer_id: int, channel: str, ts: str
) -> list[tuple[VoteChange, float]]:
    """The reactions held for message (channel, ts), in the order they apply
    (storage/rules.py: arrival_order), as changes to the answer now there, each with when it
    came; they are forgotten (the caller applies them in the same transaction)."""
    rows = db.execute(
        "SELECT id, user_id, origin, action, status, received_at FROM held_reactions"
        " WHERE channel = ? AND ts = ?",
        (channel, ts),
    ).fetchall()
    if rows:
        db.execute("DELETE FROM held_reactions WHERE channel = ? AND ts = ?", (channel, ts))
    return arrival_order(held_reaction_from_row(answer_id, r) for r in rows)


def held_messages(db: sqlite3.Connection) -> list[HeldMessage]:
    """Every message with reactions held, oldest first (what a restarted bot looks up)."""
    rows = db.execute(
        "SELECT channel, ts, count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " GROUP BY channel, ts ORDER BY first_at"
    ).fetchall()
    return [held_message_from_row(r) for r in rows]


def held_message(db: sqlite3.Connection, channel: str, ts: str) -> HeldMessage | None:
    """The reactions held for one message, if any (a retried lookup asks)."""
    row = db.execute(
        "SELECT channel, ts, count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " WHERE channel = ? AND ts = ? GROUP BY channel, ts",
        (channel, ts),
    ).fetchone()
    return held_message_from_row(row) if row is not None else None


def drop(db: sqlite3.Connection, channel: str, ts: str) -> int:
    """Forget the reactions held for a message; how many there were. Runs inside the
    caller's transaction (storage/sqlite/composite.py: drop_held)."""
    return db.execute(
        "DELETE FROM held_reactions WHERE channel = ? AND ts = ?", (channel, ts)
    ).rowcount
