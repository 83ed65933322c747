"""The units of work that span aggregates (SQLite): each calls the query modules of the
aggregates it touches inside one transaction. storage/postgres/composite.py is the same for
PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import time

from bot.domain import Answer, Provenance, Registration
from storage.models import Removal
from storage.rules import provenance_newer
from storage.sqlite import answers, held, outbox, votes
from storage.sqlite.db import transaction


def remove_answer(db: sqlite3.Connection, channel: str, ts: str, reason: str) -> Removal | None:
    """One unit across three aggregates: the mapping goes, its votes stay (for statistics),
    its queued deliveries are cancelled, all in one transaction."""
    now = time.time()
    with transaction(db):
        answer = answers.mark_removed(db, channel, ts, now)
        if answer is None:
            return None
        cancelled = outbox.cancel_pending(db, answer.id, reason, now)
        return Removal(answer, votes.count_votes(db, answer.id), cancelled)


def register(
    db: sqlite3.Connection,
    answer: Answer,
    provenance: Provenance | None = None,
    *,
    holder: str | None = None,
    replace_unvoted: bool = False,
) -> tuple[Registration, Answer, bool]:
    """One unit across three aggregates: map the message (dropping the bot's post
    reservation, `holder`, so that anyone waiting finds the message, never a gap) and apply
    the reactions held for it (storage/sqlite/held.py), oldest first; True when that queued a
    delivery.

    An answer that registers itself (`provenance`) never brings back one an admin removed
    from the same message (ANSWER_REMOVED). `replace_unvoted` (message metadata updated): a
    different mapping there is replaced only if no vote has touched it and the update is
    newer than the metadata it came from (REPLACED); otherwise it stays (CONFLICT): votes
    are history, and an update that arrives late must not undo a newer one."""
    now = time.time()
    with transaction(db):
        if holder is not None:
            answers.drop_reservation(db, answer, holder)
        if provenance is not None and answers.was_removed(db, answer.channel, answer.ts):
            removed = answers.removed_answer(db, answer.channel, answer.ts)
            if removed is not None:  # it is: was_removed has just read it
                return Registration.ANSWER_REMOVED, removed, False
        outcome, stored = answers.add_answer(db, answer, provenance)
        if (
            outcome is Registration.CONFLICT
            and replace_unvoted
            and provenance_newer(provenance, answers.metadata_ts(db, stored.id))
            and votes.count_votes(db, stored.id) == 0
        ):
            answers.mark_removed(db, answer.channel, answer.ts, now)
            _, new = answers.add_answer(db, answer, provenance)
            # The bot's "Was this helpful?" reply under the message now serves the new one.
            stored = answers.carry_prompt(db, stored, new)
            outcome = Registration.REPLACED
        return outcome, stored, _apply_held(db, stored, now)


def drop_held(db: sqlite3.Connection, channel: str, ts: str) -> tuple[int, bool]:
    """The late lookup found no answer on the message: forget its held reactions. Unless
    it was registered meanwhile (by another process, say): then they are applied to it, as
    the registration would have. Returns (reactions dropped, a delivery queued)."""
    now = time.time()
    with transaction(db):
        live = answers.find_answer(db, channel, ts)
        if live is not None:
            return 0, _apply_held(db, live, now)
        return held.drop(db, channel, ts), False


def _apply_held(db: sqlite3.Connection, answer: Answer, now: float) -> bool:
    """Apply the reactions held for the answer's message, in the order take_held gives them
    (storage/rules.py: arrival_order), each counting from when it came; True when one of
    them queued a delivery."""
    results = [
        votes.change_vote(db, change, now, cast_at=came_at)
        for change, came_at in held.take_held(db, answer.id, answer.channel, answer.ts)
    ]
    return any(r.delivery_id is not None for r in results)
