"""Databases for the benchmark: N registered answers, M historical votes, and pending
deliveries, written straight into a schema made by the bot's own migrations."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storage.sqlite.db import connect
from storage.sqlite.migrations import MIGRATIONS

CHANNELS = 50
AGENT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True, slots=True)
class BenchAnswer:
    channel: str
    ts: str
    message_id: str


def answer(i: int) -> BenchAnswer:
    """Answer number i (1-based), the same in every run."""
    return BenchAnswer(
        channel=f"C0BENCH{i % CHANNELS:03d}",
        ts=f"{1_600_000_000 + i}.{i % 1_000_000:06d}",
        message_id=str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4)),
    )


async def _schema(path: Path) -> None:
    db = await connect(path)
    await db.close()


def _answers(first: int, last: int) -> Iterator[tuple[object, ...]]:
    now = time.time()
    for i in range(first, last + 1):
        a = answer(i)
        yield (i, a.channel, a.ts, "contextual", AGENT, a.message_id, now)


def _votes(answers: int, count: int) -> Iterator[tuple[object, ...]]:
    """`count` votes spread over the answers; (answer, user) pairs are unique."""
    statuses = ("thumbs_up", "thumbs_up", "thumbs_down", "flagged")
    start = time.time() - 90 * 86400
    for k in range(count):
        answer_id = k % answers + 1
        user = f"U{k // answers:09d}"
        status = statuses[k % 4]
        origin = "reaction:+1" if status == "thumbs_up" else "button"
        yield (answer_id, user, origin, status, start + k * 0.5)


def build(path: Path, answers: int, votes: int, *, cache: bool = True) -> dict[str, float]:
    """Write the database (or copy it from the cache); return its sizes in MB."""
    cached = CACHE / f"answers-{answers}-votes-{votes}-schema-{len(MIGRATIONS)}.db"
    if cache and cached.exists():
        shutil.copyfile(cached, path)
        return {"answers_mb": _mb(cached.with_suffix(".answers-mb")), "total_mb": _size(path)}
    path.unlink(missing_ok=True)
    asyncio.run(_schema(path))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    batch = 100_000
    for first in range(1, answers + 1, batch):
        rows = list(_answers(first, min(answers, first + batch - 1)))
        db.executemany(
            "INSERT INTO answers (id, channel, ts, created_at) VALUES (?, ?, ?, ?)",
            [(i, channel, ts, now) for i, channel, ts, _, _, _, now in rows],
        )
        db.executemany(
            "INSERT INTO answer_targets (answer_id, position, provider, agent_id, message_id)"
            " VALUES (?, 0, ?, ?, ?)",
            [(i, provider, agent, message) for i, _, _, provider, agent, message, _ in rows],
        )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    answers_mb = _size(path)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO votes (answer_id, user_id, origin, status, cast_at) VALUES (?, ?, ?, ?, ?)",
        _votes(answers, votes),
    )
    # One delivered verdict per answer, as a store in use would hold.
    db.execute(
        "INSERT INTO deliveries (answer_id, status, state, attempts, next_attempt_at,"
        " created_at, updated_at) SELECT id, 'thumbs_up', 'delivered', 1, created_at,"
        " created_at, created_at FROM answers"
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    if cache:
        CACHE.mkdir(exist_ok=True)
        shutil.copyfile(path, cached)
        cached.with_suffix(".answers-mb").write_text(f"{answers_mb}")
    return {"answers_mb": answers_mb, "total_mb": _size(path)}


def add_answers(path: Path, first_answer: int, count: int, targets: int = 1) -> list[BenchAnswer]:
    """`count` fresh answers, numbered from `first_answer`, with no votes yet. With
    `targets=2`, each goes to Contextual and to Langfuse (its trace the hex of its message
    id, so that arrivals at either name the answer the same way)."""
    db = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    fresh = [answer(i) for i in range(first_answer, first_answer + count)]
    db.executemany(
        "INSERT INTO answers (id, channel, ts, created_at) VALUES (?, ?, ?, ?)",
        [(first_answer + n, a.channel, a.ts, now) for n, a in enumerate(fresh)],
    )
    db.executemany(
        "INSERT INTO answer_targets (answer_id, position, provider, agent_id, message_id)"
        " VALUES (?, 0, 'contextual', ?, ?)",
        [(first_answer + n, AGENT, a.message_id) for n, a in enumerate(fresh)],
    )
    if targets == 2:
        db.executemany(
            "INSERT INTO answer_targets (answer_id, position, provider, trace_id)"
            " VALUES (?, 1, 'langfuse', ?)",
            [(first_answer + n, uuid.UUID(a.message_id).hex) for n, a in enumerate(fresh)],
        )
    db.close()
    return fresh


def add_pending(path: Path, first_answer: int, count: int, targets: int = 1) -> list[BenchAnswer]:
    """`count` fresh answers, each with a pending thumbs_up delivery per target: an outage's
    backlog."""
    fresh = add_answers(path, first_answer, count, targets)
    db = sqlite3.connect(path, isolation_level=None)
    now = time.time()
    db.execute(
        "INSERT INTO deliveries (answer_id, target, status, next_attempt_at, created_at,"
        " updated_at) SELECT answer_id, position, 'thumbs_up', ?, ?, ? FROM answer_targets"
        " WHERE answer_id >= ? ORDER BY answer_id, position",
        (now, now, now, first_answer),
    )
    db.close()
    return fresh


def _size(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return round(total / 1e6, 1)


def _mb(marker: Path) -> float:
    return float(marker.read_text()) if marker.exists() else 0.0
