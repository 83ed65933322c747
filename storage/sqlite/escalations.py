"""Escalations: an answer's 👎 and 🚩 brought to its channel's triage channel.

An escalation's messages are deliveries, through the outbox like verdicts: rows of
`deliveries` whose target is bot.domain.ESCALATION, for the answer itself. So a Slack outage
or a restart delays one and loses none, two replicas post one (the claim), and a failure
shows in `deliveries`. Every change of the answer's votes once it is escalated queues a new
row (superseding a queued one), and the sender (bot/escalation/) shows the state at the time
it sends: the `escalations` row (opened, resolved), the votes, and the triage message the
previous sends posted (their provider_ref).

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py); `escalate_on_vote` runs inside a vote's.
"""

from __future__ import annotations

import sqlite3
import time

from bot.domain import ESCALATION, WHOLE_ANSWER, Status, Triage
from storage.models import Ballot, EscalationState, EscalationView, Resolution
from storage.rules import (
    BALLOTS,
    ESCALATE_SETTING,
    ESCALATION_TRIED,
    WORKSPACE_SCOPE,
    EscalationStep,
    escalation_step,
    triage_setting,
)
from storage.sqlite.config import config_values
from storage.sqlite.db import transaction


def escalate_on_vote(
    db: sqlite3.Connection,
    answer_id: int,
    cast: Status | None,
    verdict: Status,
    now: float,
    explained: bool = False,
) -> int | None:
    """After the votes on an answer itself changed (inside that transaction): open, reopen
    or update its escalation as storage/rules.py's `escalation_step` says, queueing the
    message. Returns the delivery queued, if any. Most votes cost one primary-key probe."""
    row = db.execute(
        "SELECT resolved_at IS NOT NULL FROM escalations WHERE answer_id = ?", (answer_id,)
    ).fetchone()
    step = escalation_step(cast, None if row is None else bool(row[0]), explained=explained)
    if step is EscalationStep.NONE:
        return None
    if step is EscalationStep.OPEN:
        if _triage(db, answer_id) is None:
            return None
        db.execute("INSERT INTO escalations (answer_id, opened_at) VALUES (?, ?)", (answer_id, now))
    elif step is EscalationStep.REOPEN:
        db.execute(
            "UPDATE escalations SET resolved_by = NULL, resolved_at = NULL WHERE answer_id = ?",
            (answer_id,),
        )
    return _queue(db, answer_id, verdict, now)


def _triage(db: sqlite3.Connection, answer_id: int) -> Triage | None:
    (channel,) = db.execute("SELECT channel FROM answers WHERE id = ?", (answer_id,)).fetchone()
    return _triage_of(db, channel)


def _triage_of(db: sqlite3.Connection, channel: str) -> Triage | None:
    values = config_values(db, [channel, WORKSPACE_SCOPE])
    return triage_setting(
        [(scope, v) for scope, key, v in values if key == ESCALATE_SETTING], channel
    )


def _queue(db: sqlite3.Connection, answer_id: int, verdict: Status, now: float) -> int:
    """A new message for the escalation; a queued one has not left and never needs to."""
    db.execute(
        "UPDATE deliveries SET state = 'superseded', updated_at = ?"
        " WHERE answer_id = ? AND target = ? AND content_id = '' AND state = 'pending'",
        (now, answer_id, ESCALATION),
    )
    cur = db.execute(
        "INSERT INTO deliveries (answer_id, target, content_id, status, next_attempt_at,"
        " created_at, updated_at) VALUES (?, ?, '', ?, ?, ?, ?)",
        (answer_id, ESCALATION, verdict.value, now, now, now),
    )
    return int(cur.lastrowid or 0)


def resolve_escalation(
    db: sqlite3.Connection, channel: str, ts: str, user: str, message: str
) -> Resolution:
    """The "Resolved" button on the escalation of the answer (channel, ts): record who and
    when, and queue the message that says so. `message` ("channel:ts") is the message the
    click came from: it must be the escalation's own, so a click elsewhere resolves
    nothing."""
    now = time.time()
    with transaction(db):
        row = db.execute(
            "SELECT e.answer_id, e.resolved_at FROM escalations e JOIN answers a"
            " ON a.id = e.answer_id AND a.removed_at IS NULL"
            " WHERE a.channel = ? AND a.ts = ?",
            (channel, ts),
        ).fetchone()
        if row is None or _posted(db, int(row[0])) != message:
            return Resolution.NOT_ESCALATED
        if row[1] is not None:
            return Resolution.ALREADY
        answer_id = int(row[0])
        db.execute(
            "UPDATE escalations SET resolved_by = ?, resolved_at = ? WHERE answer_id = ?",
            (user, now, answer_id),
        )
        _queue(db, answer_id, _verdict(db, answer_id), now)
        return Resolution.RESOLVED


def _verdict(db: sqlite3.Connection, answer_id: int) -> Status:
    row = db.execute(
        "SELECT status FROM votes WHERE answer_id = ? AND content_id = ''"
        " AND withdrawn_at IS NULL ORDER BY id DESC LIMIT 1",
        (answer_id,),
    ).fetchone()
    return Status(row[0]) if row else Status.REMOVED


def _posted(db: sqlite3.Connection, answer_id: int) -> str | None:
    """ "channel:ts" of the escalation's message, as its newest delivered send recorded."""
    row = db.execute(
        "SELECT provider_ref FROM deliveries WHERE answer_id = ? AND target = ?"
        " AND state = 'delivered' AND provider_ref IS NOT NULL ORDER BY id DESC LIMIT 1",
        (answer_id, ESCALATION),
    ).fetchone()
    return str(row[0]) if row else None


def escalation_view(db: sqlite3.Connection, answer_id: int) -> EscalationView:
    """Everything the escalation's message shows, as it is now, for the send in flight."""
    channel = db.execute("SELECT channel FROM answers WHERE id = ?", (answer_id,)).fetchone()
    state = db.execute(
        "SELECT opened_at, resolved_by, resolved_at FROM escalations WHERE answer_id = ?",
        (answer_id,),
    ).fetchone()
    posted = _posted(db, answer_id)
    # A send that was cut off (a crash) or failed after it began may have posted.
    unsure = db.execute(
        f"SELECT 1 FROM deliveries WHERE answer_id = ? AND target = ? AND {ESCALATION_TRIED}"
        " LIMIT 1",
        (answer_id, ESCALATION),
    ).fetchone()
    counts = {
        Status(r[0]): int(r[1])
        for r in db.execute(
            "SELECT status, count(*) FROM votes WHERE answer_id = ? AND content_id = ?"
            " AND withdrawn_at IS NULL GROUP BY status",
            (answer_id, WHOLE_ANSWER),
        )
    }
    ballots = tuple(
        Ballot(r[0], Status(r[1]), r[2], r[3], r[4])
        for r in db.execute(
            "SELECT user_id, status, explanation, category, cast_at FROM votes"
            " WHERE answer_id = ? AND content_id = ? AND withdrawn_at IS NULL"
            " AND status IN ('thumbs_down', 'flagged') ORDER BY id DESC LIMIT ?",
            (answer_id, WHOLE_ANSWER, BALLOTS),
        )
    )
    return EscalationView(
        triage=_triage_of(db, channel[0]),
        message=posted,
        maybe_posted=posted is None and unsure is not None,
        opened_at=state[0] if state else None,
        resolved_by=state[1] if state else None,
        resolved_at=state[2] if state else None,
        counts=counts,
        ballots=ballots,
    )


def escalation_of(db: sqlite3.Connection, answer_id: int) -> EscalationState | None:
    """The answer's escalation, if it has one (`answers show`)."""
    row = db.execute(
        "SELECT opened_at, resolved_by, resolved_at, (SELECT provider_ref FROM deliveries"
        "   WHERE answer_id = e.answer_id AND target = ? AND state = 'delivered'"
        "   ORDER BY id DESC LIMIT 1) FROM escalations e WHERE answer_id = ?",
        (ESCALATION, answer_id),
    ).fetchone()
    return EscalationState(row[0], row[1], row[2], row[3]) if row else None
