"""The delivery outbox: verdicts waiting for, or on their way to, the providers.

The rules that keep every slot in order, whichever process sends, are in `claim_due` and
`finish_and_claim`; what gets queued, and what a new verdict supersedes, is decided when a
vote is settled (`storage.sqlite.votes.queue_verdict_change`).

Each public function is one unit of work over the sqlite3 connection, run as one call on its
thread by the `Store` facade (storage/store.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from bot.domain import Delivery, DeliveryState, Status, Verdict
from storage.models import Claim, DeliveryCounts, Finished
from storage.sqlite.answers import ANSWER_COLUMNS, answer_from_row
from storage.sqlite.db import transaction

Row = sqlite3.Row

_DELIVERY_COLUMNS = f"""
    d.id AS delivery_id, d.content_id, d.status, d.explanation, d.category, d.state,
    d.attempts, d.next_attempt_at, d.created_at, d.last_error, d.provider_ref, {ANSWER_COLUMNS}
"""


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
    yet). Only those are renewed. Any other row still `sending` for `owner` is one the
    worker never got: a turn whose transaction committed while the worker was told it
    failed (a connection lost at COMMIT). Nothing sends it, so it goes back to the queue
    at once (`orphaned`), rather than being renewed for as long as the worker lives."""
    with transaction(db):
        superseded, lost = _record_finished(db, finished, now, owner)
        mine = {int(r[0]) for r in db.execute(_OWNED, (owner,))}
        db.executemany(
            "UPDATE deliveries SET lease_until = ? WHERE id = ? AND lease_until < ?",
            # Renewed once a third of the lease has run, not on every turn.
            [(now + lease, i, now + lease * 2 / 3) for i in sorted(mine & set(in_flight))],
        )
        orphans = sorted(mine - set(in_flight) - {f.delivery_id for f in finished})
        orphaned = _requeue(db, orphans, now, NEVER_SENT)
        expired = [
            int(r[0])
            for r in db.execute(
                "SELECT id FROM deliveries WHERE state = 'sending' AND lease_until <= ?"
                " ORDER BY id",
                (now,),
            )
        ]
        recovered = _requeue(db, expired, now, CUT_OFF)
        rows = claim_due(db, now, limit, owner, now + lease) if limit > 0 else []
        later = db.execute(
            "SELECT min(next_attempt_at) FROM deliveries"
            " WHERE state = 'pending' AND next_attempt_at > ?",
            (now,),
        ).fetchone()[0]
    claimed = [_delivery(r, state=DeliveryState.SENDING, attempts_delta=1) for r in rows]
    return Claim(
        claimed, later, frozenset(superseded), recovered, frozenset(lost), orphaned=orphaned
    )


_OWNED = "SELECT id FROM deliveries WHERE state = 'sending' AND claimed_by = ?"
# Why a row in flight went back to the queue (its last_error, unless it has one already).
CUT_OFF = "cut off mid-send (its sender stopped)"
NEVER_SENT = "claimed, but the claim never reached its sender (a database failure)"
REMOVED_WHILE_SENT = "the answer was removed while it was sent"
REMOVED_BEFORE_RETRY = "the answer was removed: not retried"


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
        "   AND s.content_id = d.content_id AND (s.state = 'sending'"
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
    """Record the outcome of the owner's sends. A failed row goes back to the queue unless a
    newer verdict for its slot exists; then it is superseded, so an older verdict never lands
    after a newer one. A row whose lease was taken over (this process stalled past it) is
    left to its new owner: returned as lost. An outcome offered again because the turn that
    recorded it committed while its caller was told it failed is already there: neither
    written again nor lost."""
    superseded: set[int] = set()
    lost: set[int] = set()
    for f in finished:
        state, at, error = f.state, f.retry_at, f.error
        if state is DeliveryState.PENDING and _answer_removed(db, f.delivery_id):
            # It was in flight when its answer was removed: not sent again.
            state, error = DeliveryState.SKIPPED, REMOVED_WHILE_SENT
        elif state is DeliveryState.PENDING and _newer_row_exists(db, f.delivery_id):
            state = DeliveryState.SUPERSEDED
            superseded.add(f.delivery_id)
        cur = db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, provider_ref = ?,"
            " next_attempt_at = CASE WHEN ? > 0 THEN ? ELSE next_attempt_at END,"
            " claimed_by = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (state.value, error, f.ref, at, at, now, f.delivery_id, owner),
        )
        if cur.rowcount == 0 and not _recorded(db, f.delivery_id, state, error, f.ref):
            lost.add(f.delivery_id)
            superseded.discard(f.delivery_id)
    return superseded, lost


def _recorded(
    db: sqlite3.Connection,
    delivery_id: int,
    state: DeliveryState,
    error: str | None,
    ref: str | None,
) -> bool:
    """The row already holds this outcome (and is no longer in flight)."""
    row = db.execute(
        "SELECT 1 FROM deliveries WHERE id = ? AND state = ? AND last_error IS ?"
        " AND provider_ref IS ?",
        (delivery_id, state.value, error, ref),
    ).fetchone()
    return row is not None


def _answer_removed(db: sqlite3.Connection, delivery_id: int) -> bool:
    row = db.execute(
        "SELECT a.removed_at IS NOT NULL FROM deliveries d JOIN answers a ON a.id = d.answer_id"
        " WHERE d.id = ?",
        (delivery_id,),
    ).fetchone()
    return bool(row and row[0])


def _requeue(db: sqlite3.Connection, ids: Sequence[int], now: float, why: str) -> int:
    """Rows in flight that nobody is sending any more go back to the queue: at least once,
    so the verdict is sent again. Where a newer verdict for the slot is queued, the old one
    is superseded instead; a removed answer's is skipped."""
    for delivery_id in ids:
        state, reason = "pending", why
        if _answer_removed(db, delivery_id):
            state, reason = "skipped", REMOVED_WHILE_SENT
        elif _newer_row_exists(db, delivery_id):
            state = "superseded"
        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, claimed_by = NULL,"
            " lease_until = NULL, updated_at = ?,"
            " last_error = CASE WHEN ? = 'skipped' THEN ? ELSE coalesce(last_error, ?) END"
            " WHERE id = ?",
            (state, now, now, state, reason, reason, delivery_id),
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
    return [_delivery(r) for r in rows]


def cancel_pending(db: sqlite3.Connection, answer_id: int, reason: str, now: float) -> int:
    """The answer's queued deliveries will not be sent: recorded as skipped, with
    `reason`. Sends in flight finish. Runs inside the caller's transaction."""
    return db.execute(
        "UPDATE deliveries SET state = 'skipped', last_error = ?, updated_at = ?"
        " WHERE answer_id = ? AND state = 'pending'",
        (reason, now, answer_id),
    ).rowcount


def retry_dead(db: sqlite3.Connection, ids: Sequence[int] = ()) -> tuple[int, int]:
    """Requeue dead rows (all, or those named). A dead row with a newer verdict for its
    slot is superseded instead; one of a removed answer is skipped (nothing would ever
    claim it: it would wait in the queue for good). Returns (requeued, superseded)."""
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
            if _answer_removed(db, delivery_id):
                db.execute(
                    "UPDATE deliveries SET state = 'skipped', last_error = ?, updated_at = ?"
                    " WHERE id = ?",
                    (REMOVED_BEFORE_RETRY, now, delivery_id),
                )
                continue
            if _newer_row_exists(db, delivery_id):
                state, superseded = "superseded", superseded + 1
            else:
                state, requeued = "pending", requeued + 1
            db.execute(
                "UPDATE deliveries SET state = ?, attempts = 0, next_attempt_at = ?,"
                " updated_at = ? WHERE id = ?",
                (state, now, now, delivery_id),
            )
        return requeued, superseded


def _newer_row_exists(db: sqlite3.Connection, delivery_id: int) -> bool:
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM deliveries n, deliveries d WHERE d.id = ?"
        " AND n.answer_id = d.answer_id AND n.content_id = d.content_id AND n.id > d.id"
        " AND n.state != 'superseded')",
        (delivery_id,),
    ).fetchone()
    return bool(row and row[0])


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
    return DeliveryCounts(
        pending=int(row[0]),
        sending=int(row[1]),
        dead=int(row[2]),
        oldest_pending_at=float(row[3]) if row[3] is not None else None,
        last_error=err[0] if err else None,
    )


def last_delivered_at(db: sqlite3.Connection, provider: str) -> float | None:
    """When the provider last accepted a delivery."""
    row = db.execute(
        "SELECT d.updated_at FROM deliveries d JOIN answers a ON a.id = d.answer_id"
        " WHERE d.state = 'delivered' AND a.provider = ? ORDER BY d.id DESC LIMIT 1",
        (provider,),
    ).fetchone()
    return float(row[0]) if row else None


def verdict_from_row(row: Row) -> Verdict:
    return Verdict(Status(row["status"]), row["explanation"], row["category"])


def _delivery(row: Row, state: DeliveryState | None = None, attempts_delta: int = 0) -> Delivery:
    return Delivery(
        id=row["delivery_id"],
        answer=answer_from_row(row),
        content_id=row["content_id"],
        verdict=verdict_from_row(row),
        state=state or DeliveryState(row["state"]),
        attempts=row["attempts"] + attempts_delta,
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        provider_ref=row["provider_ref"],
    )
