"""Digests: the runs of each scope's schedule, claimed once across processes, and the figures
of a period that a digest and the App Home show.

A run is one period of one scope (a channel, or "*" for the workspace). Its row is the
claim: bot/digest/schedule.py says which runs are due, `claim_digest` inserts those not
there yet (the unique (scope, period, period_end) makes a second insert a no-op, whichever
process tries) and hands one due run to one process for a lease. The sender records how it
went (`finish_digest`): posted, dead (Slack refused for good), or pending again after a
backoff, as a delivery would.

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from bot.domain import DeliveryState
from storage.models import DigestRecord, DigestRun, PeriodFigures
from storage.rows import (
    FIRST_AGENT,
    digest_record_from_row,
    digest_run_values,
    period_figures_from_rows,
)
from storage.sqlite.db import transaction

DAY = 86400.0
_INSERT = (
    "INSERT INTO digest_runs (scope, period, period_start, period_end, channel, state,"
    " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
    " ON CONFLICT (scope, period, period_end) DO NOTHING"
)


def claim_digest(
    db: sqlite3.Connection, due: Sequence[DigestRun], now: float, owner: str, lease: float
) -> DigestRun | None:
    """Record the runs the schedule says are due (each once), and claim the first due one
    for `owner` until `now + lease`: pending and due, or sending with its lease run out
    (its sender stopped). None: nothing to post now."""
    with transaction(db):
        db.executemany(
            _INSERT,
            [(*digest_run_values(r), now, now, now) for r in due],
        )
        row = db.execute(
            "SELECT id, scope, period, period_start, period_end, channel, attempts"
            " FROM digest_runs WHERE (state = 'pending' AND next_attempt_at <= ?)"
            " OR (state = 'sending' AND lease_until <= ?) ORDER BY next_attempt_at, id LIMIT 1",
            (now, now),
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE digest_runs SET state = 'sending', attempts = attempts + 1, claimed_by = ?,"
            " lease_until = ?, updated_at = ? WHERE id = ?",
            (owner, now + lease, now, row[0]),
        )
    return DigestRun(row[1], row[2], row[3], row[4], row[5], id=row[0], attempts=row[6] + 1)


def finish_digest(
    db: sqlite3.Connection,
    run_id: int,
    owner: str,
    state: DeliveryState,
    error: str | None,
    retry_at: float,
    ref: str | None,
) -> bool:
    """How the owner's send of a run went: DELIVERED, DEAD, or PENDING (again at
    `retry_at`). False: the run was taken over meanwhile (the lease ran out), and the
    outcome does not count."""
    now = time.time()
    with transaction(db):
        return (
            db.execute(
                "UPDATE digest_runs SET state = ?, last_error = ?, ref = ?,"
                " next_attempt_at = ?, claimed_by = NULL, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
                (state.value, error, ref, retry_at or now, now, run_id, owner),
            ).rowcount
            > 0
        )


def queue_digest(db: sqlite3.Connection, run: DigestRun) -> bool:
    """A run to post as soon as a process can (/feedback digest now). False: that very
    run is already there."""
    now = time.time()
    with transaction(db):
        return db.execute(_INSERT, (*digest_run_values(run), now, now, now)).rowcount > 0


def list_digests(db: sqlite3.Connection, limit: int = 10) -> list[DigestRecord]:
    """The newest runs, newest first."""
    rows = db.execute(
        "SELECT id, scope, period, period_start, period_end, channel, attempts, state,"
        " last_error, updated_at FROM digest_runs ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [digest_record_from_row(r) for r in rows]


def period_figures(
    db: sqlite3.Connection, channel: str | None, start: float, end: float, previous: float
) -> PeriodFigures:
    """The figures of [start, end) for one channel (None: all), with the verdicts of
    [previous, start) for the change. An answer's verdict is its newest standing vote on
    the answer itself; it counts in the period, and on the day, that vote was cast."""
    where, params = _scope("a", channel)
    verdicts = db.execute(
        f"SELECT a.channel, {FIRST_AGENT}, CAST((v.cast_at - ?) / {DAY} AS INTEGER),"
        " count(*), sum(v.status = 'thumbs_up') FROM votes v JOIN answers a ON a.id = v.answer_id"
        " WHERE v.content_id = '' AND v.withdrawn_at IS NULL AND v.cast_at >= ? AND v.cast_at < ?"
        " AND v.id = (SELECT max(w.id) FROM votes w WHERE w.answer_id = v.answer_id"
        f"   AND w.content_id = '' AND w.withdrawn_at IS NULL){where} GROUP BY 1, 2, 3",
        (previous, previous, end, *params),
    ).fetchall()
    cast = db.execute(
        f"SELECT a.channel, {FIRST_AGENT}, count(*), count(DISTINCT v.answer_id) FROM votes v"
        " JOIN answers a ON a.id = v.answer_id WHERE v.cast_at >= ? AND v.cast_at < ?"
        f"{where} GROUP BY 1, 2",
        (start, end, *params),
    ).fetchall()
    categories = db.execute(
        "SELECT v.category, count(*) FROM votes v JOIN answers a ON a.id = v.answer_id"
        " WHERE v.status IN ('thumbs_down', 'flagged') AND v.withdrawn_at IS NULL"
        f" AND v.category IS NOT NULL AND v.cast_at >= ? AND v.cast_at < ?{where}"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        (start, end, *params),
    ).fetchall()
    sources = db.execute(
        "SELECT s.label, sum(v.status = 'thumbs_up'), sum(v.status != 'thumbs_up')"
        " FROM votes v JOIN answers a ON a.id = v.answer_id JOIN answer_sources s"
        " ON s.answer_id = v.answer_id AND s.content_id = v.content_id"
        " WHERE v.content_id != '' AND v.withdrawn_at IS NULL AND v.cast_at >= ?"
        f" AND v.cast_at < ?{where} GROUP BY 1 HAVING sum(v.status != 'thumbs_up') > 0"
        " ORDER BY 1.0 * sum(v.status = 'thumbs_up') / count(*), 3 DESC, 1 LIMIT 5",
        (start, end, *params),
    ).fetchall()
    (open_escalations,) = db.execute(
        "SELECT count(*) FROM escalations e JOIN answers a ON a.id = e.answer_id"
        f" WHERE e.resolved_at IS NULL AND a.removed_at IS NULL{where}",
        params,
    ).fetchone()
    resolved = db.execute(
        "SELECT a.channel, a.ts, e.resolved_by, e.resolved_at FROM escalations e"
        " JOIN answers a ON a.id = e.answer_id WHERE e.resolved_at >= ? AND e.resolved_at < ?"
        f"{where} ORDER BY e.resolved_at DESC LIMIT 10",
        (start, end, *params),
    ).fetchall()
    (dead,) = db.execute(
        "SELECT count(*) FROM deliveries d JOIN answers a ON a.id = d.answer_id"
        f" WHERE d.state = 'dead'{where}",
        params,
    ).fetchone()
    return period_figures_from_rows(
        verdicts,
        cast,
        categories,
        _downvotes(db, where, params, start, end, explained=True),
        _downvotes(db, where, params, start, end, explained=False),
        sources,
        int(open_escalations),
        resolved,
        int(dead),
        days=round((start - previous) / DAY),
    )


def _scope(alias: str, channel: str | None) -> tuple[str, tuple[Any, ...]]:
    return ("", ()) if channel is None else (f" AND {alias}.channel = ?", (channel,))


def _downvotes(
    db: sqlite3.Connection,
    where: str,
    params: tuple[Any, ...],
    start: float,
    end: float,
    *,
    explained: bool,
) -> list[Any]:
    return db.execute(
        "SELECT a.channel, a.ts, v.user_id, v.status, v.category, v.explanation, v.cast_at"
        " FROM votes v JOIN answers a ON a.id = v.answer_id WHERE v.content_id = ''"
        " AND v.status IN ('thumbs_down', 'flagged') AND v.withdrawn_at IS NULL"
        f" AND v.cast_at >= ? AND v.cast_at < ?{where}"
        f"{' AND v.explanation IS NOT NULL' if explained else ''} ORDER BY v.id DESC LIMIT 5",
        (start, end, *params),
    ).fetchall()
