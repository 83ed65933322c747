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
from dataclasses import dataclass
from typing import Any

from bot.domain import Status, VoteChange


@dataclass(frozen=True, slots=True)
class HeldMessage:
    channel: str
    ts: str
    reactions: int
    first_at: float


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


def held_values(
    channel: str, ts: str, change: VoteChange, event_id: str | None, now: float
) -> tuple[Any, ...]:
    """The columns `hold` inserts, in its order (both backends insert these)."""
    status = change.status.value if change.status else None
    return (channel, ts, change.user, change.origin, change.action, status, event_id, now)


def take_held(
    db: sqlite3.Connection, answer_id: int, channel: str, ts: str
) -> list[tuple[VoteChange, float]]:
    """The reactions held for message (channel, ts), oldest first, as changes to the answer
    now there, each with when it came; they are forgotten (the caller applies them in the
    same transaction)."""
    rows = db.execute(
        "SELECT user_id, origin, action, status, received_at FROM held_reactions"
        " WHERE channel = ? AND ts = ? ORDER BY id",
        (channel, ts),
    ).fetchall()
    if rows:
        db.execute("DELETE FROM held_reactions WHERE channel = ? AND ts = ?", (channel, ts))
    return [held_change_from_row(answer_id, r) for r in rows]


def held_change_from_row(answer_id: int, row: Any) -> tuple[VoteChange, float]:
    """A held reaction as a change to the answer now on its message, and when it came."""
    status = Status(row["status"]) if row["status"] else None
    change = VoteChange(answer_id, row["user_id"], row["origin"], row["action"], status)
    return change, float(row["received_at"])


def held_messages(db: sqlite3.Connection) -> list[HeldMessage]:
    """Every message with reactions held, oldest first (what a restarted bot looks up)."""
    rows = db.execute(
        "SELECT channel, ts, count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " GROUP BY channel, ts ORDER BY first_at"
    ).fetchall()
    return [HeldMessage(r["channel"], r["ts"], r["n"], r["first_at"]) for r in rows]


def held_message(db: sqlite3.Connection, channel: str, ts: str) -> HeldMessage | None:
    """The reactions held for one message, if any (a retried lookup asks)."""
    row = db.execute(
        "SELECT count(*) AS n, min(received_at) AS first_at FROM held_reactions"
        " WHERE channel = ? AND ts = ?",
        (channel, ts),
    ).fetchone()
    return HeldMessage(channel, ts, row["n"], row["first_at"]) if row["n"] else None


def drop(db: sqlite3.Connection, channel: str, ts: str) -> int:
    """Forget the reactions held for a message; how many there were. Runs inside the
    caller's transaction (storage/sqlite/composite.py: drop_held)."""
    return db.execute(
        "DELETE FROM held_reactions WHERE channel = ? AND ts = ?", (channel, ts)
    ).rowcount
