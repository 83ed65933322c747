"""Load: signed Events API bodies in Slack's shape, sent closed-loop (fixed concurrency) or
open-loop (fixed rate), with per-request latency."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bench.dataset import BenchAnswer

SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
USERS = 200
EMOJI = ("+1", "+1::skin-tone-2", "-1", "triangular_flag_on_post", "tada")


@dataclass(frozen=True, slots=True)
class Shot:
    body: bytes
    message_id: str  # of the answer it is about


def _envelope(n: int, event: dict[str, object]) -> dict[str, object]:
    return {
        "token": "unused",
        "team_id": "T0BENCH01",
        "api_app_id": "A0BENCH01",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{n:012d}{random.getrandbits(32):08x}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": "T0BENCH01",
                "user_id": "UBENCHBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def _reaction(user: str, emoji: str, a: BenchAnswer, added: bool) -> dict[str, object]:
    return {
        "type": "reaction_added" if added else "reaction_removed",
        "user": user,
        "reaction": emoji,
        "item_user": "U0AIBOT01",
        "item": {"type": "message", "channel": a.channel, "ts": a.ts},
        "event_ts": f"{time.time():.6f}",
    }


def mixed(answers: Sequence[BenchAnswer], count: int, seed: int = 1) -> list[Shot]:
    """Adds and removals by many users on many answers, always a valid sequence (a removal
    follows its add), some with emoji that mean nothing."""
    rng = random.Random(seed)
    standing: set[tuple[int, int, str]] = set()
    shots = []
    for n in range(count):
        i, u, emoji = rng.randrange(len(answers)), rng.randrange(USERS), rng.choice(EMOJI)
        key = (i, u, emoji)
        added = key not in standing or rng.random() < 0.1
        (standing.add if added else standing.discard)(key)
        event = _reaction(f"U{u:09d}", emoji, answers[i], added)
        shots.append(Shot(json.dumps(_envelope(n, event)).encode(), answers[i].message_id))
    return shots


def questions(count: int, first: int = 1) -> list[Shot]:
    """`count` mentions of the bot, each a new question in its own thread (keyed by its ts)."""
    shots = []
    for n in range(first, first + count):
        ts = f"{1_700_000_000 + n}.{n % 1_000_000:06d}"
        event = {
            "type": "app_mention",
            "user": "U0ASKER01",
            "text": f"<@UBENCHBOT> question {n}?",
            "ts": ts,
            "channel": "C0BENCHASK",
            "event_ts": ts,
        }
        shots.append(Shot(json.dumps(_envelope(n, event)).encode(), ts))
    return shots


def first_votes(answers: Sequence[BenchAnswer]) -> list[Shot]:
    """A 👍 on each answer: every one changes a verdict and makes one delivery."""
    return [
        Shot(json.dumps(_envelope(n, _reaction("U0BENCHER", "+1", a, True))).encode(), a.message_id)
        for n, a in enumerate(answers)
    ]


def _headers(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, per request
    sent_at: dict[str, float] = field(default_factory=dict)  # message_id -> time.time() sent
    wall: float = 0.0
    errors: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    async def send(
        self, http: aiohttp.ClientSession, url: str, shot: Shot, headers: dict[str, str]
    ) -> None:
        self.sent_at.setdefault(shot.message_id, time.time())
        started = time.perf_counter()
        async with http.post(url, data=shot.body, headers=headers) as r:
            await r.read()
            self.errors += r.status != 200
        self.latencies.append(time.perf_counter() - started)


async def closed_loop(url: str | Sequence[str], shots: Sequence[Shot], concurrency: int) -> Result:
    """`concurrency` requests always in flight, until every shot is sent. Several URLs (the
    replicas behind a load balancer): the requests in flight are spread evenly over them."""
    urls = [url] if isinstance(url, str) else list(url)
    queue = iter([(s, _headers(s.body)) for s in shots])  # signing is Slack's work: untimed
    result = Result()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker(target: str) -> None:
            for shot, headers in queue:
                await result.send(http, target, shot, headers)

        started = time.perf_counter()
        await asyncio.gather(*(worker(urls[n % len(urls)]) for n in range(concurrency)))
        result.wall = time.perf_counter() - started
    return result


async def open_loop(url: str, shots: Sequence[Shot], rate: float) -> Result:
    """One request every 1/rate seconds, whatever the server does."""
    signed = [(s, _headers(s.body)) for s in shots]
    result = Result()
    async with aiohttp.ClientSession() as http:
        begin = time.perf_counter()
        tasks = []
        for n, (shot, headers) in enumerate(signed):
            delay = begin + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(result.send(http, url, shot, headers)))
        await asyncio.gather(*tasks)
        result.wall = time.perf_counter() - begin
    return result


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
