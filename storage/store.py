"""Every query the bot runs. SQL lives here and nowhere else.

Each public method is one unit of work: a plain function over the sqlite3 connection, run as
a single call on aiosqlite's connection thread (see `storage.db.run`). A transaction is
therefore one hop to that thread, not one per statement; calls queue up there in order, so
two transactions never interleave, and a cancelled caller cannot leave one half-applied.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.domain import (
    REMOVED,
    Answer,
    Delivery,
    DeliveryState,
    Registration,
    Source,
    Status,
    StoredVote,
    Verdict,
    Vote,
    VoteChange,
    VoteResult,
    next_standing,
    verdict,
)
from storage.db import BoundConnection, StorageError, connect, run, transaction
from storage.models import (
    AuditEntry,
    Claim,
    DeliveryCounts,
    Finished,
    PostReservation,
    PostState,
)

T = TypeVar("T")
Row = sqlite3.Row

_ANSWER_COLUMNS = """
    a.id, a.channel, a.ts, a.provider, a.agent_id, a.message_id, a.request_id, a.org, a.grp,
    a.posted_by_bot, a.thread_ts, a.prompt_ts,
    (SELECT json_group_array(json_array(s.content_id, s.label))
       FROM (SELECT content_id, label FROM answer_sources
              WHERE answer_id = a.id ORDER BY position) AS s) AS sources
"""

_DELIVERY_COLUMNS = f"""
    d.id AS delivery_id, d.content_id, d.status, d.explanation, d.category, d.state,
    d.attempts, d.next_attempt_at, d.created_at, d.last_error, d.provider_ref, {_ANSWER_COLUMNS}
"""

# How long a failed write keeps /healthz at 503 when no write has succeeded since.
WRITE_FAILURE_MEMORY = 60.0
# Less free space than this on the database's disk is reported as a problem.
MIN_FREE_BYTES = 1024 * 1024

# States in which a delivery row says what the provider holds or is about to hold.
_HELD = ("sending", "delivered", "skipped")


class Store:
    """The bot's SQLite database."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        return cls(await connect(path), str(path))

    async def close(self) -> None:
        await self._db.close()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await run(self._db, work)

    async def health(self, by: str) -> list[str]:
        """What keeps the database from doing its job, as one line each; [] when healthy.

        Checks that the file at FEEDBACK_DB is still the one opened, that its disk has room,
        that a write commits now, and that the last real write did not fail: a small probe
        can slip through where a vote does not (SQLite reuses free pages), so a failed write
        counts for a minute unless a write has changed something since.
        """
        conn = self._db._conn
        assert isinstance(conn, BoundConnection)
        try:
            conn.check_file()
        except StorageError as e:
            return [str(e)]
        problems = []
        if conn.identity is not None:
            fs = os.statvfs(conn.directory)
            free = fs.f_bavail * fs.f_frsize
            if free < MIN_FREE_BYTES:
                problems.append(
                    f"the disk holding {conn.path} (FEEDBACK_DB) has {free // 1024} KB free:"
                    " votes cannot be stored; free some space"
                )

        def probe(db: sqlite3.Connection) -> None:
            with transaction(db, probe=True):
                db.execute(
                    "INSERT INTO health_probe (id, written_at, written_by) VALUES (1, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at,"
                    " written_by = excluded.written_by",
                    (time.time(), by),
                )

        try:
            await self._run(probe)
        except StorageError as e:
            problems.append(f"the database refuses writes: {e}")
        failure = conn.last_failure
        if failure is not None and failure[0] > conn.last_write_at:
            age = time.time() - failure[0]
            if age < WRITE_FAILURE_MEMORY or problems:
                problems.append(f"a write failed {age:.0f} s ago: {failure[1]}")
        return problems

    # ---------------------------------------------------------------- answers

    async def find_answer(self, channel: str, ts: str) -> Answer | None:
        return await self._run(lambda db: _find_answer(db, channel, ts))

    async def find_answer_for_controls(self, channel: str, ts: str) -> Answer | None:
        """The answer whose feedback controls sit on message `ts`: the answer itself, or
        the bot's "Was this helpful?" reply under it."""

        def work(db: sqlite3.Connection) -> Answer | None:
            row = db.execute(
                f"SELECT {_ANSWER_COLUMNS} FROM answers a"
                " WHERE a.channel = ? AND (a.ts = ? OR a.prompt_ts = ?)",
                (channel, ts, ts),
            ).fetchone()
            return _answer(row) if row else None

        return await self._run(work)

    async def reserve_post(self, answer: Answer, holder: str, ttl: float) -> PostReservation:
        """Reserve posting `answer` in its channel for `holder`, for `ttl` seconds at most.

        The reservation lives in the database, not in memory, so that two processes on one
        file (the bot and the CLI) post one message between them. One left by a crashed
        holder is taken over once it expires.
        """
        key = _post_key(answer)

        def work(db: sqlite3.Connection) -> PostReservation:
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

        return await self._run(work)

    async def release_post(self, answer: Answer, holder: str) -> None:
        """Give up a reservation (the post failed), if `holder` still has it."""

        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                _drop_reservation(db, answer, holder)

        await self._run(work)

    async def register_posted_answer(
        self, answer: Answer, holder: str
    ) -> tuple[Registration, Answer]:
        """Register the message the bot just posted and, in the same transaction, drop the
        reservation: anyone waiting on it then finds the message, never a gap."""

        def work(db: sqlite3.Connection) -> tuple[Registration, Answer]:
            with transaction(db):
                _drop_reservation(db, answer, holder)
                return _register_answer(db, answer)

        return await self._run(work)

    async def register_answer(self, answer: Answer) -> tuple[Registration, Answer]:
        """Map a Slack message to a provider target; the same mapping twice is a no-op."""

        def work(db: sqlite3.Connection) -> tuple[Registration, Answer]:
            with transaction(db):
                return _register_answer(db, answer)

        return await self._run(work)

    async def set_prompt_ts(self, answer_id: int, prompt_ts: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            with transaction(db):
                db.execute("UPDATE answers SET prompt_ts = ? WHERE id = ?", (prompt_ts, answer_id))

        await self._run(work)

    # ---------------------------------------------------------------- votes

    async def apply_vote(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        """Apply one user's action and, in the same transaction, queue the new verdict.

        `dedupe_key` (a Slack event id) makes a redelivered event change nothing.
        """
        return await self._run(lambda db: _apply_vote(db, change, dedupe_key))

    async def apply_vote_to_message(
        self, channel: str, ts: str, change: VoteChange, *, dedupe_key: str | None = None
    ) -> tuple[Answer | None, VoteResult]:
        """The reaction path in one call: find the answer on message (channel, ts) and apply
        `change` to it (its answer_id is filled in). No answer there: nothing is written,
        and no write lock is taken, which matters as most reactions are on other messages."""

        def work(db: sqlite3.Connection) -> tuple[Answer | None, VoteResult]:
            answer = _find_answer(db, channel, ts)
            if answer is None:
                return None, VoteResult()
            return answer, _apply_vote(db, replace(change, answer_id=answer.id), dedupe_key)

        return await self._run(work)

    async def get_vote(self, vote_id: int) -> StoredVote | None:
        def work(db: sqlite3.Connection) -> StoredVote | None:
            row = db.execute(
                "SELECT id, answer_id, content_id, user_id, origin, status, explanation,"
                " category, withdrawn_at IS NULL AS standing FROM votes WHERE id = ?",
                (vote_id,),
            ).fetchone()
            if row is None:
                return None
            return StoredVote(
                id=row["id"],
                answer_id=row["answer_id"],
                content_id=row["content_id"],
                user=row["user_id"],
                origin=row["origin"],
                status=Status(row["status"]),
                explanation=row["explanation"],
                category=row["category"],
                standing=bool(row["standing"]),
            )

        return await self._run(work)

    async def explain_vote(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        """Attach the "what went wrong?" answers to a standing vote and re-settle its slot:
        when it is the vote that decides the verdict, the provider hears the explanation."""

        def work(db: sqlite3.Connection) -> VoteResult:
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
                new, delivery_id = _settle(db, row["answer_id"], row["content_id"], now)
                return VoteResult(
                    vote_id=vote_id,
                    standing=Status(row["status"]),
                    verdict=new,
                    delivery_id=delivery_id,
                )

        return await self._run(work)

    async def vote_stats(self, channel: str | None, since: float) -> dict[str, dict[str, int]]:
        """Votes cast since `since`, per status: all of them, and those still standing."""
        where = "v.cast_at >= ?"
        params: list[Any] = [since]
        if channel is not None:
            where += " AND a.channel = ?"
            params.append(channel)

        def work(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
            rows = db.execute(
                "SELECT v.status, count(*), sum(v.withdrawn_at IS NULL) FROM votes v"
                f" JOIN answers a ON a.id = v.answer_id WHERE {where} GROUP BY v.status",
                params,
            ).fetchall()
            return {r[0]: {"cast": int(r[1]), "standing": int(r[2])} for r in rows}

        return await self._run(work)

    # ---------------------------------------------------------------- deliveries

    async def finish_and_claim(
        self,
        finished: Sequence[Finished],
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
    ) -> Claim:
        """The worker's one call per turn: record how its last sends went, renew the leases
        of its sends in flight, take over sends whose owner is gone, and claim up to `limit`
        due rows for `owner`. See `claim_due` for the rules that keep a slot in order."""

        def work(db: sqlite3.Connection) -> Claim:
            with transaction(db):
                superseded, lost = _record_finished(db, finished, now, owner)
                db.execute(
                    "UPDATE deliveries SET lease_until = ? WHERE state = 'sending'"
                    " AND claimed_by = ? AND lease_until < ?",
                    # Renewed once a third of the lease has run, not on every turn.
                    (now + lease, owner, now + lease * 2 / 3),
                )
                recovered = _recover_expired(db, now)
                rows = claim_due(db, now, limit, owner, now + lease) if limit > 0 else []
                later = db.execute(
                    "SELECT min(next_attempt_at) FROM deliveries"
                    " WHERE state = 'pending' AND next_attempt_at > ?",
                    (now,),
                ).fetchone()[0]
            claimed = [_delivery(r, state=DeliveryState.SENDING, attempts_delta=1) for r in rows]
            return Claim(claimed, later, frozenset(superseded), recovered, frozenset(lost))

        return await self._run(work)

    async def release(self, owner: str, lease: float) -> int:
        """At shutdown, for sends cut off mid-flight: their leases end `lease` after each send
        began (the provider may still apply a cut-off request until its timeout), rather than
        a full lease after the last renewal. Whoever runs next sends them again then."""

        def work(db: sqlite3.Connection) -> int:
            with transaction(db):
                return db.execute(
                    "UPDATE deliveries SET lease_until = min(lease_until, sent_at + ?)"
                    " WHERE state = 'sending' AND claimed_by = ?",
                    (lease, owner),
                ).rowcount

        return await self._run(work)

    async def list_deliveries(
        self, states: Sequence[DeliveryState] = (), limit: int = 50
    ) -> list[Delivery]:
        where = ""
        params: list[Any] = []
        if states:
            where = f"WHERE d.state IN ({','.join('?' * len(states))})"
            params = [s.value for s in states]

        def work(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
                f" JOIN answers a ON a.id = d.answer_id {where} ORDER BY d.id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            return [_delivery(r) for r in rows]

        return await self._run(work)

    async def retry_dead(self, ids: Sequence[int] = ()) -> tuple[int, int]:
        """Requeue dead rows (all, or those named). A dead row with a newer verdict for its
        slot is superseded instead. Returns (requeued, superseded)."""

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            now = time.time()
            where = "state = 'dead'"
            params: list[Any] = []
            if ids:
                where += f" AND id IN ({','.join('?' * len(ids))})"
                params = list(ids)
            with transaction(db):
                dead = [
                    int(r[0])
                    for r in db.execute(
                        f"SELECT id FROM deliveries WHERE {where} ORDER BY id", params
                    )
                ]
                requeued = superseded = 0
                for delivery_id in dead:
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

        return await self._run(work)

    async def delivery_counts(self) -> DeliveryCounts:
        def work(db: sqlite3.Connection) -> DeliveryCounts:
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

        return await self._run(work)

    async def last_delivered_at(self, provider: str) -> float | None:
        """When the provider last accepted a delivery."""

        def work(db: sqlite3.Connection) -> float | None:
            row = db.execute(
                "SELECT d.updated_at FROM deliveries d JOIN answers a ON a.id = d.answer_id"
                " WHERE d.state = 'delivered' AND a.provider = ? ORDER BY d.id DESC LIMIT 1",
                (provider,),
            ).fetchone()
            return float(row[0]) if row else None

        return await self._run(work)

    async def prune_events(self, older_than: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            with transaction(db):
                return db.execute(
                    "DELETE FROM processed_events WHERE received_at < ?", (older_than,)
                ).rowcount

        return await self._run(work)

    # ---------------------------------------------------------------- configuration

    async def config_values(self, scopes: Sequence[str]) -> list[tuple[str, str, Any]]:
        """(scope, key, value) for every setting stored in the given scopes."""

        def work(db: sqlite3.Connection) -> list[tuple[str, str, Any]]:
            rows = db.execute(
                f"SELECT scope, key, value FROM config WHERE scope IN"
                f" ({','.join('?' * len(scopes))})",
                list(scopes),
            ).fetchall()
            return [(r[0], r[1], json.loads(r[2])) for r in rows]

        return await self._run(work)

    async def set_config(self, scope: str, key: str, value: Any, user: str) -> Any:
        """Set (or, with None, clear) one setting and log the change. Returns the old value."""
        new = None if value is None else json.dumps(value, sort_keys=True)

        def work(db: sqlite3.Connection) -> Any:
            now = time.time()
            with transaction(db):
                row = db.execute(
                    "SELECT value FROM config WHERE scope = ? AND key = ?", (scope, key)
                ).fetchone()
                old = row[0] if row else None
                if new is None:
                    db.execute("DELETE FROM config WHERE scope = ? AND key = ?", (scope, key))
                else:
                    db.execute(
                        "INSERT INTO config (scope, key, value, updated_at, updated_by)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE"
                        " SET value = excluded.value, updated_at = excluded.updated_at,"
                        " updated_by = excluded.updated_by",
                        (scope, key, new, now, user),
                    )
                if old != new:
                    _audit(db, now, user, scope, key, old, new)
            return json.loads(old) if old is not None else None

        return await self._run(work)

    async def provider_keys(self) -> dict[str, tuple[bytes, str]]:
        """provider -> (ciphertext, last four characters)."""

        def work(db: sqlite3.Connection) -> dict[str, tuple[bytes, str]]:
            rows = db.execute("SELECT provider, ciphertext, last4 FROM provider_keys").fetchall()
            return {r[0]: (bytes(r[1]), r[2]) for r in rows}

        return await self._run(work)

    async def set_provider_key(
        self, provider: str, ciphertext: bytes | None, last4: str, user: str
    ) -> None:
        """Store (or, with None, delete) an encrypted key; the audit log shows only the
        last four characters."""

        def work(db: sqlite3.Connection) -> None:
            now = time.time()
            with transaction(db):
                row = db.execute(
                    "SELECT last4 FROM provider_keys WHERE provider = ?", (provider,)
                ).fetchone()
                if ciphertext is None:
                    db.execute("DELETE FROM provider_keys WHERE provider = ?", (provider,))
                else:
                    db.execute(
                        "INSERT INTO provider_keys (provider, ciphertext, last4, updated_at,"
                        " updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE"
                        " SET ciphertext = excluded.ciphertext, last4 = excluded.last4,"
                        " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                        (provider, ciphertext, last4, now, user),
                    )
                old = f"set (…{row[0]})" if row else None
                new = f"set (…{last4})" if ciphertext is not None else None
                _audit(db, now, user, "*", f"{provider}_api_key", old, new)

        await self._run(work)

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        def work(db: sqlite3.Connection) -> list[AuditEntry]:
            rows = db.execute(
                "SELECT at, user_id, scope, key, old_value, new_value FROM audit_log"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [AuditEntry(*r) for r in rows]

        return await self._run(work)


# -------------------------------------------------------------------- helpers


def _find_answer(db: sqlite3.Connection, channel: str, ts: str) -> Answer | None:
    row = db.execute(
        f"SELECT {_ANSWER_COLUMNS} FROM answers a WHERE a.channel = ? AND a.ts = ?",
        (channel, ts),
    ).fetchone()
    return _answer(row) if row else None


def _register_answer(db: sqlite3.Connection, answer: Answer) -> tuple[Registration, Answer]:
    existing = _find_answer(db, answer.channel, answer.ts)
    if existing is not None:
        same = existing.same_mapping(answer)
        return (Registration.UNCHANGED if same else Registration.CONFLICT), existing
    cur = db.execute(
        "INSERT INTO answers (channel, ts, provider, agent_id, message_id,"
        " request_id, org, grp, posted_by_bot, thread_ts, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            answer.channel,
            answer.ts,
            answer.provider,
            answer.agent_id,
            answer.message_id,
            answer.request_id,
            answer.org,
            answer.group,
            int(answer.posted_by_bot),
            answer.thread_ts,
            time.time(),
        ),
    )
    answer_id = int(cur.lastrowid or 0)
    db.executemany(
        "INSERT INTO answer_sources (answer_id, position, content_id, label) VALUES (?, ?, ?, ?)",
        [(answer_id, i, s.content_id, s.label) for i, s in enumerate(answer.sources)],
    )
    return Registration.CREATED, replace(answer, id=answer_id)


def _find_posted(db: sqlite3.Connection, answer: Answer) -> Answer | None:
    """An answer the bot already posted for the same provider message in the channel."""
    column = "message_id" if answer.provider == "contextual" else "request_id"
    row = db.execute(
        f"SELECT {_ANSWER_COLUMNS} FROM answers a WHERE a.{column} = ?"
        " AND a.channel = ? AND a.posted_by_bot = 1 ORDER BY a.id LIMIT 1",
        (answer.target, answer.channel),
    ).fetchone()
    return _answer(row) if row else None


def _post_key(answer: Answer) -> tuple[str, str, str]:
    return answer.channel, answer.provider, answer.target


def _drop_reservation(db: sqlite3.Connection, answer: Answer, holder: str) -> None:
    # Only the holder's own: an expired reservation may have been taken over meanwhile.
    db.execute(
        "DELETE FROM post_reservations WHERE channel = ? AND provider = ? AND target = ?"
        " AND holder = ?",
        (*_post_key(answer), holder),
    )


def _apply_vote(db: sqlite3.Connection, change: VoteChange, dedupe_key: str | None) -> VoteResult:
    now = time.time()
    with transaction(db):
        if dedupe_key is not None:
            cur = db.execute(
                "INSERT OR IGNORE INTO processed_events (event_id, received_at) VALUES (?, ?)",
                (dedupe_key, now),
            )
            if cur.rowcount == 0:
                return VoteResult(duplicate=True)
        row = db.execute(
            "SELECT id, status FROM votes WHERE answer_id = ? AND content_id = ?"
            " AND user_id = ? AND origin = ? AND withdrawn_at IS NULL",
            (change.answer_id, change.content_id, change.user, change.origin),
        ).fetchone()
        current = Status(row["status"]) if row else None
        target = next_standing(change.action, current, change.status)
        if target == current:
            return VoteResult(vote_id=row["id"] if row else None, standing=current)
        if row is not None:
            db.execute("UPDATE votes SET withdrawn_at = ? WHERE id = ?", (now, row["id"]))
        vote_id = None
        if target is not None:
            vote_id = db.execute(
                "INSERT INTO votes (answer_id, content_id, user_id, origin, status, cast_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    change.answer_id,
                    change.content_id,
                    change.user,
                    change.origin,
                    target.value,
                    now,
                ),
            ).lastrowid
        new, delivery_id = _settle(db, change.answer_id, change.content_id, now)
        return VoteResult(vote_id=vote_id, standing=target, verdict=new, delivery_id=delivery_id)


def _settle(
    db: sqlite3.Connection, answer_id: int, content_id: str, now: float
) -> tuple[Verdict, int | None]:
    """Compute the slot's verdict and queue it if the provider would hold something else.

    Pending rows of the slot are superseded: they have not left yet, and the provider only
    ever needs the newest verdict.
    """
    # Only the newest standing vote can decide (bot.domain.verdict), so only it is read:
    # a slot with thousands of votes costs one index step.
    newest = [
        Vote(r["id"], r["user_id"], Status(r["status"]), r["explanation"], r["category"])
        for r in db.execute(
            "SELECT id, user_id, status, explanation, category FROM votes"
            " WHERE answer_id = ? AND content_id = ? AND withdrawn_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (answer_id, content_id),
        )
    ]
    new = verdict(newest)
    recent = db.execute(
        "SELECT id, state, status, explanation, category FROM deliveries"
        " WHERE answer_id = ? AND content_id = ?"
        " AND state IN ('pending', 'sending', 'delivered', 'skipped')"
        " ORDER BY id DESC LIMIT 3",
        (answer_id, content_id),
    ).fetchall()
    pending = [r for r in recent if r["state"] == "pending"]
    held_row = next((r for r in recent if r["state"] in _HELD), None)
    held = _verdict(held_row) if held_row is not None else REMOVED
    keep = None
    if pending and _verdict(pending[0]) == new and new != held:
        keep = pending[0]["id"]
    stale = [(now, r["id"]) for r in pending if r["id"] != keep]
    if stale:
        db.executemany(
            "UPDATE deliveries SET state = 'superseded', updated_at = ? WHERE id = ?", stale
        )
    if keep is not None or new == held:
        return new, None
    cur = db.execute(
        "INSERT INTO deliveries (answer_id, content_id, status, explanation, category,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (answer_id, content_id, new.status.value, new.explanation, new.category, now, now, now),
    )
    return new, cur.lastrowid


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
        " JOIN answers a ON a.id = d.answer_id"
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
    left to its new owner: returned as lost."""
    superseded: set[int] = set()
    lost: set[int] = set()
    for f in finished:
        state, at = f.state, f.retry_at
        if state is DeliveryState.PENDING and _newer_row_exists(db, f.delivery_id):
            state = DeliveryState.SUPERSEDED
            superseded.add(f.delivery_id)
        cur = db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, provider_ref = ?,"
            " next_attempt_at = CASE WHEN ? > 0 THEN ? ELSE next_attempt_at END,"
            " claimed_by = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            (state.value, f.error, f.ref, at, at, now, f.delivery_id, owner),
        )
        if cur.rowcount == 0:
            lost.add(f.delivery_id)
            superseded.discard(f.delivery_id)
    return superseded, lost


def _recover_expired(db: sqlite3.Connection, now: float) -> int:
    """Sends whose owner stopped renewing its lease (it crashed, or was cut off at
    shutdown) go back to the queue; at least once, so the verdict is sent again. Where a
    newer verdict for the slot is queued, the old one is superseded instead."""
    expired = db.execute(
        "SELECT id FROM deliveries WHERE state = 'sending' AND lease_until <= ?", (now,)
    ).fetchall()
    for (delivery_id,) in expired:
        state = "superseded" if _newer_row_exists(db, delivery_id) else "pending"
        db.execute(
            "UPDATE deliveries SET state = ?, next_attempt_at = ?, claimed_by = NULL,"
            " lease_until = NULL, updated_at = ?,"
            " last_error = coalesce(last_error, 'cut off mid-send (its sender stopped)')"
            " WHERE id = ?",
            (state, now, now, delivery_id),
        )
    return len(expired)


def _newer_row_exists(db: sqlite3.Connection, delivery_id: int) -> bool:
    row = db.execute(
        "SELECT EXISTS (SELECT 1 FROM deliveries n, deliveries d WHERE d.id = ?"
        " AND n.answer_id = d.answer_id AND n.content_id = d.content_id AND n.id > d.id"
        " AND n.state != 'superseded')",
        (delivery_id,),
    ).fetchone()
    return bool(row and row[0])


def _audit(
    db: sqlite3.Connection,
    at: float,
    user: str,
    scope: str,
    key: str,
    old: str | None,
    new: str | None,
) -> None:
    db.execute(
        "INSERT INTO audit_log (at, user_id, scope, key, old_value, new_value)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (at, user, scope, key, old, new),
    )


def _verdict(row: Row) -> Verdict:
    return Verdict(Status(row["status"]), row["explanation"], row["category"])


def _answer(row: Row) -> Answer:
    sources = tuple(Source(cid, label) for cid, label in json.loads(row["sources"] or "[]"))
    return Answer(
        id=row["id"],
        channel=row["channel"],
        ts=row["ts"],
        provider=row["provider"],
        agent_id=row["agent_id"],
        message_id=row["message_id"],
        request_id=row["request_id"],
        org=row["org"],
        group=row["grp"],
        sources=sources,
        posted_by_bot=bool(row["posted_by_bot"]),
        thread_ts=row["thread_ts"],
        prompt_ts=row["prompt_ts"],
    )


def _delivery(row: Row, state: DeliveryState | None = None, attempts_delta: int = 0) -> Delivery:
    return Delivery(
        id=row["delivery_id"],
        answer=_answer(row),
        content_id=row["content_id"],
        verdict=_verdict(row),
        state=state or DeliveryState(row["state"]),
        attempts=row["attempts"] + attempts_delta,
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        provider_ref=row["provider_ref"],
    )
