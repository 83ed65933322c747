"""The delivery outbox: verdicts waiting for, or on their way to, the providers.

The rules that keep every slot in order, whichever process sends, are in `claim_due` and
storage/rules.py (what a turn does with the sends it owns, what a row sent back to the queue
becomes, whose outcome counts); what gets queued, and what a new verdict supersedes, is
decided when a vote is settled (`storage.sqlite.votes.queue_verdict_change`).

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from bot.domain import Delivery, DeliveryState
from storage.models import Claim, DeliveryCounts, Finished
from storage.rows import (
    COUNTS_BY_PROVIDER,
    DELIVERY_FIELDS,
    claimed_from_row,
    delivery_counts_from_rows,
    delivery_from_row,
)
from storage.rules import (
    CUT_OFF,
    NEVER_SENT,
    REMOVED_BEFORE_RETRY,
    Outcome,
    QueueFacts,
    StoredOutcome,
    already_recorded,
    goes_back,
    lease_end,
    outcome,
    owned_sends,
    renewal_due_before,
    requeue_outcome,
    requeue_state,
    tally,
)
from storage.sqlite.answers import ANSWER_COLUMNS
from storage.sqlite.db import transaction

Row = sqlite3.Row

_DELIVERY_COLUMNS = f"{DELIVERY_FIELDS}, {ANSWER_COLUMNS}"


def finish_and_claim(
    db: sqlite3.Connection,
    finished: Sequence[Finished],
    now: float,
    limit: int,
    *,
    owner: str,
    lease: float,
    in_flight: Collection[int] = (),
) -> Claim:
    """The worker's one call per turn: record how its last sends went, renew the leases
    of its sends in flight, take over sends whose owner is gone, and claim up to `limit`
    due rows for `owner`. See `claim_due` for the rules that keep a slot in order.

    `in_flight` names the sends the worker really has under way (claimed, no outcome
    yet): storage/rules.py's `owned_sends` says which of its rows in flight are renewed,
    and which it never got and go back to the queue at once (`orphaned`)."""
    with transaction(db):
        superseded, lost = _record_finished(db, finished, now, owner)
        mine = [int(r[0]) for r in db.execute(_OWNED, (owner,))]
        owned = owned_sends(mine, in_flight, (f.delivery_id for f in finished))
        renew_before = renewal_due_before(now, lease)
        db.executemany(
            "UPDATE deliveries SET lease_until = ? WHERE id = ? AND lease_until < ?",
            [(lease_end(now, lease), i, renew_before) for i in owned.renew],
        )
        orphaned = _requeue(db, owned.orphans, now, NEVER_SENT)
        expired = [
            int(r[0])
            for r in db.execute(
                "SELECT id FROM deliveries WHERE state = 'sending' AND lease_until <= ?"
                " ORDER BY id",
                (now,),
            )
        ]
        recovered = _requeue(db, expired, now, CUT_OFF)
        rows = claim_due(db, now, limit, owner, lease_end(now, lease)) if limit > 0 else []
        later = db.execute(
            "SELECT min(next_attempt_at) FROM deliveries"
            " WHERE state = 'pending' AND next_attempt_at > ?",
            (now,),
        ).fetchone()[0]
    claimed = [claimed_from_row(r) for r in rows]
    return Claim(
        claimed, later, frozenset(superseded), recovered, frozenset(lost), orphaned=orphaned
    )


_OWNED = "SELECT id FROM deliveries WHERE state = 'sending' AND claimed_by = ?"


def claim_due(
    db: sqlite3.Connection, now: float, limit: int, owner: str, lease_until: float
) -> list[Row]:
    """Mark up to `limit` due rows as sending, owned by `owner` until `lease_until`.

    The rules that keep every slot in order, whichever process claims:
    - a row is claimed only while no row of its slot is in flight (the unique index
      deliveries_in_flight makes a second one impossible, not merely unlikely);
    - only the newest live row of a slot can be claimed: an older one is superseded by it;
    - a slot's row in flight stays in flight until its owner records the outcome or its
      lease expires, and a lease never expires before the send's timeout has passed, so a
      send cut off by a crash cannot be overtaken by the next.
    Runs inside the caller's transaction (BEGIN IMMEDIATE: one claimer at a time).
    """
    rows = db.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
        " JOIN answers a ON a.id = d.answer_id AND a.removed_at IS NULL"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
        " AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.answer_id = d.answer_id"
        "   AND s.target = d.target AND s.content_id = d.content_id AND (s.state = 'sending'"
        "   OR (s.id > d.id AND s.state != 'superseded')))"
        " ORDER BY d.next_attempt_at, d.id LIMIT ?",
        (now, limit),
    ).fetchall()
    db.executemany(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, claimed_by = ?,"
        " lease_until = ?, sent_at = ?, updated_at = ? WHERE id = ?",
        [(owner, lease_until, now, now, r["delivery_id"]) for r in rows],
    )
    return rows


def _record_finished(
    db: sqlite3.Connection, finished: Sequence[Finished], now: float, owner: str
) -> tuple[set[int], set[int]]:
    """Record the outcome of the owner's sends, as storage/rules.py's `outcome` says, where
    it counts (`already_recorded`, `tally`): returns those superseded and those lost."""
    results: list[tuple[int, Outcome, bool]] = []
    for f in finished:
        facts = _queue_facts(db, f.delivery_id) if goes_back(f) else None
        recorded = outcome(f, facts)
        cur = db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, provider_ref = ?,"
            " next_attempt_at = CASE WHEN ? > 0 THEN ? ELSE next_attempt_at END,"
            " claimed_by = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (
                recorded.state.value,
                recorded.error,
                f.ref,
                f.retry_at,
                f.retry_at,
                now,
                f.delivery_id,
                owner,
            ),
        )
        counts = cur.rowcount > 0 or already_recorded(_stored(db, f.delivery_id), recorded, f.ref)
        results.append((f.delivery_id, recorded, counts))
    return tally(results)


def _stored(db: sqlite3.Connection, delivery_id: int) -> StoredOutcome | None:
    row = db.execute(
        "SELECT state, last_error, provider_ref FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def _queue_facts(db: sqlite3.Connection, delivery_id: int) -> QueueFacts:
    """What decides the fate of the row if it goes back to the queue (rules.requeue_state)."""
    row = db.execute(
        "SELECT a.removed_at IS NOT NULL, EXISTS (SELECT 1 FROM deliveries n"
        "   WHERE n.answer_id = d.answer_id AND n.target = d.target"
        "   AND n.content_id = d.content_id AND n.id > d.id"
        "   AND n.state != 'superseded')"
        " FROM deliveries d JOIN answers a ON a.id = d.answer_id WHERE d.id = ?",
        (delivery_id,),
    ).fetchone()
    return QueueFacts(bool(row[0]), bool(row[1])) if row else QueueFacts(False, False)


def _requeue(db: sqlite3.Connection, ids: Sequence[int], now: float, why: str) -> int:
    """Rows in flight that nobody is sending any more go back to the queue
    (rules.requeue_outcome): at least once, so the verdict is sent again."""
    for delivery_id in ids:
        state, reason = requeue_outcome(_queue_facts(db, delivery_id), why)
        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, claimed_by = NULL,"
            " lease_until = NULL, updated_at = ?,"
            " last_error = CASE WHEN ? = 'skipped' THEN ? ELSE coalesce(last_error, ?) END"
            " WHERE id = ?",
            (state.value, now, now, state.value, reason, reason, delivery_id),
        )
    return len(ids)


def release(db: sqlite3.Connection, owner: str, lease: float) -> int:
    """At shutdown, for sends cut off mid-flight: their leases end `lease` after each send
    began (the provider may still apply a cut-off request until its timeout), rather than
    a full lease after the last renewal. Whoever runs next sends them again then."""
    with transaction(db):
        return db.execute(
            "UPDATE deliveries SET lease_until = min(lease_until, sent_at + ?)"
            " WHERE state = 'sending' AND claimed_by = ?",
            (lease, owner),
        ).rowcount


def list_deliveries(
    db: sqlite3.Connection,
    states: Sequence[DeliveryState] = (),
    limit: int = 50,
    answer_id: int | None = None,
) -> list[Delivery]:
    conditions = []
    params: list[Any] = []
    if states:
        conditions.append(f"d.state IN ({','.join('?' * len(states))})")
        params = [s.value for s in states]
    if answer_id is not None:
        conditions.append("d.answer_id = ?")
        params.append(answer_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = db.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
        f" JOIN answers a ON a.id = d.answer_id {where} ORDER BY d.id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [delivery_from_row(r) for r in rows]


def cancel_pending(db: sqlite3.Connection, answer_id: int, reason: str, now: float) -> int:
    """The answer's queued deliveries will not be sent: recorded as skipped, with
    `reason`. Sends in flight finish. Runs inside the caller's transaction."""
    return db.execute(
        "UPDATE deliveries SET state = 'skipped', last_error = ?, updated_at = ?"
        " WHERE answer_id = ? AND state = 'pending'",
        (reason, now, answer_id),
    ).rowcount


def retry_dead(db: sqlite3.Connection, ids: Sequence[int] = ()) -> tuple[int, int]:
    """Requeue dead rows (all, or those named), each as rules.requeue_state says: pending,
    superseded by a newer verdict for its slot, or skipped when its answer was removed.
    Returns (requeued, superseded)."""
    now = time.time()
    where = "state = 'dead'"
    params: list[Any] = []
    if ids:
        where += f" AND id IN ({','.join('?' * len(ids))})"
        params = list(ids)
    with transaction(db):
        dead = [
            int(r[0])
            for r in db.execute(f"SELECT id FROM deliveries WHERE {where} ORDER BY id", params)
        ]
        requeued = superseded = 0
        for delivery_id in dead:
            state = requeue_state(_queue_facts(db, delivery_id))
            if state is DeliveryState.SKIPPED:
                db.execute(
                    "UPDATE deliveries SET state = 'skipped', last_error = ?, updated_at = ?"
                    " WHERE id = ?",
                    (REMOVED_BEFORE_RETRY, now, delivery_id),
                )
                continue
            if state is DeliveryState.SUPERSEDED:
                superseded += 1
            else:
                requeued += 1
            db.execute(
                "UPDATE deliveries SET state = ?, attempts = 0, next_attempt_at = ?,"
                " updated_at = ? WHERE id = ?",
                (state.value, now, now, delivery_id),
            )
        return requeued, superseded


def delivery_counts(db: sqlite3.Connection) -> DeliveryCounts:
    row = db.execute(
        "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),"
        " (SELECT count(*) FROM deliveries WHERE state = 'sending'),"
        " (SELECT count(*) FROM deliveries WHERE state = 'dead'),"
        " (SELECT min(created_at) FROM deliveries WHERE state = 'pending')"
    ).fetchone()
    err = db.execute(
        "SELECT last_error FROM ("
        " SELECT last_error, updated_at FROM (SELECT last_error, updated_at"
        "   FROM deliveries WHERE state = 'dead' ORDER BY id DESC LIMIT 1)"
        " UNION ALL"
        " SELECT last_error, updated_at FROM (SELECT last_error, updated_at"
        "   FROM deliveries WHERE state = 'pending' AND last_error IS NOT NULL"
        "   ORDER BY next_attempt_at DESC LIMIT 1)"
        ") ORDER BY updated_at DESC LIMIT 1"
    ).fetchone()
    return delivery_counts_from_rows(row, err, db.execute(COUNTS_BY_PROVIDER).fetchall())


def last_delivered_at(db: sqlite3.Connection, provider: str) -> float | None:
    """When the provider last accepted a delivery."""
    row = db.execute(
        "SELECT d.updated_at FROM deliveries d JOIN answer_targets t"
        " ON t.answer_id = d.answer_id AND t.position = d.target"
        " WHERE d.state = 'delivered' AND t.provider = ? ORDER BY d.id DESC LIMIT 1",
        (provider,),
    ).fetchone()
    return float(row[0]) if row else None
