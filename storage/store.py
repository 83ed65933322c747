"""Every query the bot runs. SQL lives here and nowhere else."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.domain import REMOVED, Status, Verdict, Vote, next_standing, verdict
from storage.db import connect
from storage.models import (
    Answer,
    AuditEntry,
    Delivery,
    DeliveryCounts,
    DeliveryState,
    Registration,
    Source,
    StoredVote,
    VoteChange,
    VoteResult,
)

T = TypeVar("T")

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

# States in which a delivery row says what the provider holds or is about to hold.
_HELD = ("sending", "delivered", "skipped")


class Store:
    """The bot's SQLite database.

    One connection, and one asyncio lock so that a transaction never interleaves with another
    coroutine's statements. Writes are shielded from cancellation: a shutdown or a dropped
    request never leaves a transaction half-applied.
    """

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        return cls(await connect(path), str(path))

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            yield self._db

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    @staticmethod
    async def _shielded(work: Callable[[], Awaitable[T]]) -> T:
        return await asyncio.shield(asyncio.ensure_future(work()))

    async def ping(self) -> None:
        async with self._read() as db, db.execute("SELECT 1") as cur:
            await cur.fetchone()

    # ---------------------------------------------------------------- answers

    async def find_answer(self, channel: str, ts: str) -> Answer | None:
        async with self._read() as db:
            return await _find_answer(db, channel, ts)

    async def find_answer_by_id(self, answer_id: int) -> Answer | None:
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {_ANSWER_COLUMNS} FROM answers a WHERE a.id = ?", (answer_id,)
            ) as cur,
        ):
            row = await cur.fetchone()
        return _answer(row) if row else None

    async def register_answer(self, answer: Answer) -> tuple[Registration, Answer]:
        """Map a Slack message to a provider target; the same mapping twice is a no-op."""

        async def work() -> tuple[Registration, Answer]:
            async with self._transaction() as db:
                existing = await _find_answer(db, answer.channel, answer.ts)
                if existing is not None:
                    same = existing.same_mapping(answer)
                    return (Registration.UNCHANGED if same else Registration.CONFLICT), existing
                cur = await db.execute(
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
                await db.executemany(
                    "INSERT INTO answer_sources (answer_id, position, content_id, label)"
                    " VALUES (?, ?, ?, ?)",
                    [(answer_id, i, s.content_id, s.label) for i, s in enumerate(answer.sources)],
                )
                return Registration.CREATED, _with_id(answer, answer_id)

        return await self._shielded(work)

    async def find_answer_for_controls(self, channel: str, ts: str) -> Answer | None:
        """The answer whose feedback controls sit on message `ts`: the answer itself, or
        the bot's "Was this helpful?" reply under it."""
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {_ANSWER_COLUMNS} FROM answers a"
                " WHERE a.channel = ? AND (a.ts = ? OR a.prompt_ts = ?)",
                (channel, ts, ts),
            ) as cur,
        ):
            row = await cur.fetchone()
        return _answer(row) if row else None

    async def find_posted_answer(self, answer: Answer) -> Answer | None:
        """An answer the bot already posted for the same provider message in the channel."""
        column, value = (
            ("message_id", answer.message_id)
            if answer.provider == "contextual"
            else ("request_id", answer.request_id)
        )
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {_ANSWER_COLUMNS} FROM answers a WHERE a.{column} = ?"
                " AND a.channel = ? AND a.posted_by_bot = 1 ORDER BY a.id LIMIT 1",
                (value, answer.channel),
            ) as cur,
        ):
            row = await cur.fetchone()
        return _answer(row) if row else None

    async def set_prompt_ts(self, answer_id: int, prompt_ts: str) -> None:
        async def work() -> None:
            async with self._transaction() as db:
                await db.execute(
                    "UPDATE answers SET prompt_ts = ? WHERE id = ?", (prompt_ts, answer_id)
                )

        await self._shielded(work)

    # ---------------------------------------------------------------- votes

    async def get_vote(self, vote_id: int) -> StoredVote | None:
        async with (
            self._read() as db,
            db.execute(
                "SELECT id, answer_id, content_id, user_id, origin, status, explanation,"
                " category, withdrawn_at IS NULL AS standing FROM votes WHERE id = ?",
                (vote_id,),
            ) as cur,
        ):
            row = await cur.fetchone()
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

    async def explain_vote(
        self, vote_id: int, explanation: str | None, category: str | None
    ) -> VoteResult:
        """Attach the "what went wrong?" answers to a standing vote and re-settle its slot:
        when it is the vote that decides the verdict, the provider hears the explanation."""

        async def work() -> VoteResult:
            now = time.time()
            async with self._transaction() as db:
                cur = await db.execute(
                    "UPDATE votes SET explanation = ?, category = ?"
                    " WHERE id = ? AND withdrawn_at IS NULL"
                    " RETURNING answer_id, content_id, status",
                    (explanation, category, vote_id),
                )
                row = await cur.fetchone()
                await cur.close()
                if row is None:
                    return VoteResult()
                new, delivery_id = await _settle(db, row["answer_id"], row["content_id"], now)
                return VoteResult(
                    vote_id=vote_id,
                    standing=Status(row["status"]),
                    verdict=new,
                    delivery_id=delivery_id,
                )

        return await self._shielded(work)

    async def apply_vote(self, change: VoteChange, *, dedupe_key: str | None = None) -> VoteResult:
        """Apply one user's action and, in the same transaction, queue the new verdict.

        `dedupe_key` (a Slack event id) makes a redelivered event change nothing.
        """

        async def work() -> VoteResult:
            now = time.time()
            async with self._transaction() as db:
                if dedupe_key is not None:
                    cur = await db.execute(
                        "INSERT OR IGNORE INTO processed_events (event_id, received_at)"
                        " VALUES (?, ?)",
                        (dedupe_key, now),
                    )
                    if cur.rowcount == 0:
                        return VoteResult(duplicate=True)
                async with db.execute(
                    "SELECT id, status FROM votes WHERE answer_id = ? AND content_id = ?"
                    " AND user_id = ? AND origin = ? AND withdrawn_at IS NULL",
                    (change.answer_id, change.content_id, change.user, change.origin),
                ) as cur:
                    row = await cur.fetchone()
                current = Status(row["status"]) if row else None
                target = next_standing(change.action, current, change.status)
                if target == current:
                    return VoteResult(vote_id=row["id"] if row else None, standing=current)
                if row is not None:
                    await db.execute(
                        "UPDATE votes SET withdrawn_at = ? WHERE id = ?", (now, row["id"])
                    )
                vote_id = None
                if target is not None:
                    cur = await db.execute(
                        "INSERT INTO votes (answer_id, content_id, user_id, origin, status,"
                        " cast_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            change.answer_id,
                            change.content_id,
                            change.user,
                            change.origin,
                            target.value,
                            now,
                        ),
                    )
                    vote_id = cur.lastrowid
                new, delivery_id = await _settle(db, change.answer_id, change.content_id, now)
                return VoteResult(
                    vote_id=vote_id, standing=target, verdict=new, delivery_id=delivery_id
                )

        return await self._shielded(work)

    # ---------------------------------------------------------------- deliveries

    async def claim_due(self, now: float, limit: int) -> list[Delivery]:
        """Mark up to `limit` due rows as sending, never two of one slot at once."""

        async def work() -> list[Delivery]:
            async with self._transaction() as db:
                async with db.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
                    " JOIN answers a ON a.id = d.answer_id"
                    " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
                    " AND NOT EXISTS (SELECT 1 FROM deliveries s WHERE s.state = 'sending'"
                    "   AND s.answer_id = d.answer_id AND s.content_id = d.content_id)"
                    " ORDER BY d.next_attempt_at, d.id LIMIT ?",
                    (now, limit),
                ) as cur:
                    rows = await cur.fetchall()
                await db.executemany(
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,"
                    " updated_at = ? WHERE id = ?",
                    [(now, r["delivery_id"]) for r in rows],
                )
            return [_delivery(r, state=DeliveryState.SENDING, attempts_delta=1) for r in rows]

        return await self._shielded(work)

    async def next_due_at(self) -> float | None:
        async with (
            self._read() as db,
            db.execute(
                "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
            ) as cur,
        ):
            row = await cur.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def mark_delivered(self, delivery_id: int, provider_ref: str | None) -> None:
        await self._finish(delivery_id, DeliveryState.DELIVERED, None, provider_ref)

    async def mark_skipped(self, delivery_id: int, reason: str) -> None:
        await self._finish(delivery_id, DeliveryState.SKIPPED, reason, None)

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        await self._finish(delivery_id, DeliveryState.DEAD, error, None)

    async def _finish(
        self, delivery_id: int, state: DeliveryState, error: str | None, ref: str | None
    ) -> None:
        async def work() -> None:
            async with self._transaction() as db:
                await db.execute(
                    "UPDATE deliveries SET state = ?, last_error = ?, provider_ref = ?,"
                    " updated_at = ? WHERE id = ?",
                    (state.value, error, ref, time.time(), delivery_id),
                )

        await self._shielded(work)

    async def reschedule(self, delivery_id: int, at: float, error: str) -> DeliveryState:
        """Put a failed row back in the queue, unless a newer verdict for its slot exists:
        then it is superseded, so an older verdict never lands after a newer one."""

        async def work() -> DeliveryState:
            async with self._transaction() as db:
                newer = await _newer_row_exists(db, delivery_id)
                state = DeliveryState.SUPERSEDED if newer else DeliveryState.PENDING
                await db.execute(
                    "UPDATE deliveries SET state = ?, next_attempt_at = ?, last_error = ?,"
                    " updated_at = ? WHERE id = ?",
                    (state.value, at, error, time.time(), delivery_id),
                )
                return state

        return await self._shielded(work)

    async def recover_sending(self) -> int:
        """After a crash, rows caught mid-send go back to the queue (at-least-once)."""

        async def work() -> int:
            async with self._transaction() as db:
                cur = await db.execute(
                    "UPDATE deliveries SET state = 'pending', updated_at = ?"
                    " WHERE state = 'sending'",
                    (time.time(),),
                )
                return cur.rowcount

        return await self._shielded(work)

    async def list_deliveries(
        self, states: Sequence[DeliveryState] = (), limit: int = 50
    ) -> list[Delivery]:
        where = ""
        params: list[Any] = []
        if states:
            where = f"WHERE d.state IN ({','.join('?' * len(states))})"
            params = [s.value for s in states]
        async with (
            self._read() as db,
            db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d"
                f" JOIN answers a ON a.id = d.answer_id {where} ORDER BY d.id DESC LIMIT ?",
                (*params, limit),
            ) as cur,
        ):
            rows = await cur.fetchall()
        return [_delivery(r) for r in rows]

    async def retry_dead(self, ids: Sequence[int] = ()) -> tuple[int, int]:
        """Requeue dead rows (all, or those named). A dead row with a newer verdict for its
        slot is superseded instead. Returns (requeued, superseded)."""

        async def work() -> tuple[int, int]:
            now = time.time()
            async with self._transaction() as db:
                where = "state = 'dead'"
                params: list[Any] = []
                if ids:
                    where += f" AND id IN ({','.join('?' * len(ids))})"
                    params = list(ids)
                async with db.execute(
                    f"SELECT id FROM deliveries WHERE {where} ORDER BY id", params
                ) as cur:
                    dead = [int(r[0]) for r in await cur.fetchall()]
                requeued = superseded = 0
                for delivery_id in dead:
                    if await _newer_row_exists(db, delivery_id):
                        state, superseded = "superseded", superseded + 1
                    else:
                        state, requeued = "pending", requeued + 1
                    await db.execute(
                        "UPDATE deliveries SET state = ?, attempts = 0, next_attempt_at = ?,"
                        " updated_at = ? WHERE id = ?",
                        (state, now, now, delivery_id),
                    )
                return requeued, superseded

        return await self._shielded(work)

    async def delivery_counts(self) -> DeliveryCounts:
        async with self._read() as db:
            async with db.execute(
                "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),"
                " (SELECT count(*) FROM deliveries WHERE state = 'sending'),"
                " (SELECT count(*) FROM deliveries WHERE state = 'dead'),"
                " (SELECT min(created_at) FROM deliveries WHERE state = 'pending')"
            ) as cur:
                row = await cur.fetchone()
            async with db.execute(
                "SELECT last_error FROM ("
                " SELECT last_error, updated_at FROM (SELECT last_error, updated_at"
                "   FROM deliveries WHERE state = 'dead' ORDER BY id DESC LIMIT 1)"
                " UNION ALL"
                " SELECT last_error, updated_at FROM (SELECT last_error, updated_at"
                "   FROM deliveries WHERE state = 'pending' AND last_error IS NOT NULL"
                "   ORDER BY next_attempt_at DESC LIMIT 1)"
                ") ORDER BY updated_at DESC LIMIT 1"
            ) as cur:
                err = await cur.fetchone()
        assert row is not None
        return DeliveryCounts(
            pending=int(row[0]),
            sending=int(row[1]),
            dead=int(row[2]),
            oldest_pending_at=float(row[3]) if row[3] is not None else None,
            last_error=err[0] if err else None,
        )

    # ---------------------------------------------------------------- configuration

    async def config_values(self, scopes: Sequence[str]) -> list[tuple[str, str, Any]]:
        """(scope, key, value) for every setting stored in the given scopes."""
        async with (
            self._read() as db,
            db.execute(
                f"SELECT scope, key, value FROM config WHERE scope IN"
                f" ({','.join('?' * len(scopes))})",
                list(scopes),
            ) as cur,
        ):
            return [(r[0], r[1], json.loads(r[2])) for r in await cur.fetchall()]

    async def set_config(self, scope: str, key: str, value: Any, user: str) -> Any:
        """Set (or, with None, clear) one setting and log the change. Returns the old value."""

        async def work() -> Any:
            now = time.time()
            new = None if value is None else json.dumps(value, sort_keys=True)
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT value FROM config WHERE scope = ? AND key = ?", (scope, key)
                ) as cur:
                    row = await cur.fetchone()
                old = row[0] if row else None
                if new is None:
                    await db.execute("DELETE FROM config WHERE scope = ? AND key = ?", (scope, key))
                else:
                    await db.execute(
                        "INSERT INTO config (scope, key, value, updated_at, updated_by)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE"
                        " SET value = excluded.value, updated_at = excluded.updated_at,"
                        " updated_by = excluded.updated_by",
                        (scope, key, new, now, user),
                    )
                if old != new:
                    await db.execute(
                        "INSERT INTO audit_log (at, user_id, scope, key, old_value, new_value)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (now, user, scope, key, old, new),
                    )
            return json.loads(old) if old is not None else None

        return await self._shielded(work)

    async def provider_keys(self) -> dict[str, tuple[bytes, str]]:
        """provider -> (ciphertext, last four characters)."""
        async with (
            self._read() as db,
            db.execute("SELECT provider, ciphertext, last4 FROM provider_keys") as cur,
        ):
            return {r[0]: (bytes(r[1]), r[2]) for r in await cur.fetchall()}

    async def set_provider_key(
        self, provider: str, ciphertext: bytes | None, last4: str, user: str
    ) -> None:
        """Store (or, with None, delete) an encrypted key; the audit log shows only the
        last four characters."""

        async def work() -> None:
            now = time.time()
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT last4 FROM provider_keys WHERE provider = ?", (provider,)
                ) as cur:
                    row = await cur.fetchone()
                if ciphertext is None:
                    await db.execute("DELETE FROM provider_keys WHERE provider = ?", (provider,))
                else:
                    await db.execute(
                        "INSERT INTO provider_keys (provider, ciphertext, last4, updated_at,"
                        " updated_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE"
                        " SET ciphertext = excluded.ciphertext, last4 = excluded.last4,"
                        " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                        (provider, ciphertext, last4, now, user),
                    )
                old = f"set (…{row[0]})" if row else None
                new = f"set (…{last4})" if ciphertext is not None else None
                await db.execute(
                    "INSERT INTO audit_log (at, user_id, scope, key, old_value, new_value)"
                    " VALUES (?, ?, '*', ?, ?, ?)",
                    (now, user, f"{provider}_api_key", old, new),
                )

        await self._shielded(work)

    async def last_delivered_at(self, provider: str) -> float | None:
        """When the provider last accepted a delivery."""
        async with (
            self._read() as db,
            db.execute(
                "SELECT d.updated_at FROM deliveries d JOIN answers a ON a.id = d.answer_id"
                " WHERE d.state = 'delivered' AND a.provider = ? ORDER BY d.id DESC LIMIT 1",
                (provider,),
            ) as cur,
        ):
            row = await cur.fetchone()
        return float(row[0]) if row else None

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        async with (
            self._read() as db,
            db.execute(
                "SELECT at, user_id, scope, key, old_value, new_value FROM audit_log"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ) as cur,
        ):
            return [AuditEntry(*r) for r in await cur.fetchall()]

    async def vote_stats(self, channel: str | None, since: float) -> dict[str, dict[str, int]]:
        """Votes cast since `since`, per status: all of them, and those still standing."""
        where = "v.cast_at >= ?"
        params: list[Any] = [since]
        if channel is not None:
            where += " AND a.channel = ?"
            params.append(channel)
        async with (
            self._read() as db,
            db.execute(
                "SELECT v.status, count(*), sum(v.withdrawn_at IS NULL) FROM votes v"
                f" JOIN answers a ON a.id = v.answer_id WHERE {where} GROUP BY v.status",
                params,
            ) as cur,
        ):
            rows = await cur.fetchall()
        return {r[0]: {"cast": int(r[1]), "standing": int(r[2])} for r in rows}

    async def prune_events(self, older_than: float) -> int:
        async def work() -> int:
            async with self._transaction() as db:
                cur = await db.execute(
                    "DELETE FROM processed_events WHERE received_at < ?", (older_than,)
                )
                return cur.rowcount

        return await self._shielded(work)


# -------------------------------------------------------------------- helpers


async def _find_answer(db: aiosqlite.Connection, channel: str, ts: str) -> Answer | None:
    async with db.execute(
        f"SELECT {_ANSWER_COLUMNS} FROM answers a WHERE a.channel = ? AND a.ts = ?",
        (channel, ts),
    ) as cur:
        row = await cur.fetchone()
    return _answer(row) if row else None


async def _settle(
    db: aiosqlite.Connection, answer_id: int, content_id: str, now: float
) -> tuple[Verdict, int | None]:
    """Compute the slot's verdict and queue it if the provider would hold something else.

    Pending rows of the slot are superseded: they have not left yet, and the provider only
    ever needs the newest verdict.
    """
    async with db.execute(
        "SELECT id, user_id, status, explanation, category FROM votes"
        " WHERE answer_id = ? AND content_id = ? AND withdrawn_at IS NULL",
        (answer_id, content_id),
    ) as cur:
        standing = [
            Vote(r["id"], r["user_id"], Status(r["status"]), r["explanation"], r["category"])
            for r in await cur.fetchall()
        ]
    new = verdict(standing)
    async with db.execute(
        "SELECT id, state, status, explanation, category FROM deliveries"
        " WHERE answer_id = ? AND content_id = ?"
        " AND state IN ('pending', 'sending', 'delivered', 'skipped')"
        " ORDER BY id DESC LIMIT 3",
        (answer_id, content_id),
    ) as cur:
        recent = await cur.fetchall()
    pending = [r for r in recent if r["state"] == "pending"]
    held_row = next((r for r in recent if r["state"] in _HELD), None)
    held = _verdict(held_row) if held_row is not None else REMOVED
    keep = None
    if pending and _verdict(pending[0]) == new and new != held:
        keep = pending[0]["id"]
    stale = [(now, r["id"]) for r in pending if r["id"] != keep]
    if stale:
        await db.executemany(
            "UPDATE deliveries SET state = 'superseded', updated_at = ? WHERE id = ?", stale
        )
    if keep is not None or new == held:
        return new, None
    cur = await db.execute(
        "INSERT INTO deliveries (answer_id, content_id, status, explanation, category,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (answer_id, content_id, new.status.value, new.explanation, new.category, now, now, now),
    )
    return new, cur.lastrowid


async def _newer_row_exists(db: aiosqlite.Connection, delivery_id: int) -> bool:
    async with db.execute(
        "SELECT EXISTS (SELECT 1 FROM deliveries n, deliveries d WHERE d.id = ?"
        " AND n.answer_id = d.answer_id AND n.content_id = d.content_id AND n.id > d.id"
        " AND n.state != 'superseded')",
        (delivery_id,),
    ) as cur:
        row = await cur.fetchone()
    return bool(row and row[0])


def _verdict(row: aiosqlite.Row) -> Verdict:
    return Verdict(Status(row["status"]), row["explanation"], row["category"])


def _answer(row: aiosqlite.Row) -> Answer:
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


def _with_id(answer: Answer, answer_id: int) -> Answer:
    return replace(answer, id=answer_id)


def _delivery(
    row: aiosqlite.Row, state: DeliveryState | None = None, attempts_delta: int = 0
) -> Delivery:
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
