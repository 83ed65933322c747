"""Run every benchmark, print a table, write the same figures as JSON.

    python -m bench            # the full run (several minutes; builds a 1M-answer database once)
    python -m bench --quick    # seconds: small sizes, so that the benchmark never rots (CI)

Each figure is measured side by side in the same run: the bot and the bare Bolt app take
turns on the same load, so a noisy machine hits both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import dataset, load
from bench.socket_standin import SocketModeStandIn
from storage.postgres import transfer
from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "xoxb-0000000000-0000000000-benchbenchbenchbenchbench"
APP_TOKEN = "xapp-1-A0BENCH01-0000000000-benchbenchbenchbenchbench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    events: int  # per throughput round
    rounds: int
    concurrency: int
    steady_rate: float
    steady_events: int
    saturation_events: int
    saturation_concurrency: int
    small_answers: int
    large_answers: int
    votes_per_answer: int
    scale_events: int
    drain: int
    ask_questions: int = 400
    ask_rate: float = 20.0


FULL = Sizes(
    events=20_000,
    rounds=3,
    concurrency=32,
    steady_rate=100.0,
    steady_events=2_000,
    saturation_events=5_000,
    saturation_concurrency=64,
    small_answers=1_000,
    large_answers=1_000_000,
    votes_per_answer=10,
    scale_events=10_000,
    drain=10_000,
)
QUICK = Sizes(
    events=400,
    rounds=1,
    concurrency=16,
    steady_rate=50.0,
    steady_events=50,
    saturation_events=200,
    saturation_concurrency=32,
    small_answers=1_000,
    large_answers=20_000,
    votes_per_answer=10,
    scale_events=300,
    drain=500,
    ask_questions=40,
)


# ------------------------------------------------------------------ processes

RUNNING: list[Proc] = []  # stopped at the end, whatever happens


@dataclass
class Proc:
    """A server in a subprocess; `ready` matches the line that carries its port."""

    args: list[str]
    env: dict[str, str]
    log: Path
    ready: str
    port: int = 0
    process: asyncio.subprocess.Process | None = None
    _drain: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> Proc:
        RUNNING.append(self)
        self.process = await asyncio.create_subprocess_exec(
            *self.args,
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        out = self.log.open("ab")
        async with asyncio.timeout(60):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.args} exited; see {self.log}")
                out.write(line)
                if m := re.search(self.ready, line.decode(errors="replace")):
                    self.port = int(m.group(1) or 0)
                    break
        self._drain = asyncio.create_task(self._copy(self.process.stdout, out))
        return self

    @staticmethod
    async def _copy(stream: asyncio.StreamReader, out: Any) -> None:
        while chunk := await stream.read(65536):
            out.write(chunk)
        out.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return float("nan")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)
        if self._drain is not None:
            await self._drain


@dataclass(frozen=True)
class Side:
    """One process's share of a round: its load result, CPU seconds, peak RSS."""

    result: load.Result
    cpu: float
    rss_mb: float
    ack_cpu: float | None = None  # the process that acks, when another one sends

    def cpu_ms_per_event(self, events: int) -> float:
        return self.cpu / events * 1e3


def summarise(rounds: list[tuple[Side, Side]], s: Sizes, events: int) -> dict[str, Any]:
    """Medians over the rounds; each ratio is the median of the rounds' own ratios, so that
    the bot is only ever compared with the bare app of its own round."""

    def side(pick: int) -> dict[str, Any]:
        sides = [r[pick] for r in rounds]
        return {
            "events_per_s": statistics.median(x.result.rate for x in sides),
            "ack_p50_ms": statistics.median(load.percentile(x.result.latencies, 50) for x in sides)
            * 1e3,
            "ack_p99_ms": statistics.median(load.percentile(x.result.latencies, 99) for x in sides)
            * 1e3,
            "cpu_ms_per_event": statistics.median(x.cpu_ms_per_event(events) for x in sides),
            "errors": sum(x.result.errors for x in sides),
            "peak_rss_mb": max(x.rss_mb for x in sides),
        }

    per_round = [
        {
            "bot_events_per_s": m.result.rate,
            "bare_events_per_s": t.result.rate,
            "bot_p99_ms": load.percentile(m.result.latencies, 99) * 1e3,
            "bare_p99_ms": load.percentile(t.result.latencies, 99) * 1e3,
            "bot_cpu_ms_per_event": m.cpu_ms_per_event(events),
            "bare_cpu_ms_per_event": t.cpu_ms_per_event(events),
        }
        | (
            {"bot_ack_process_cpu_ms_per_event": m.ack_cpu / events * 1e3}
            if m.ack_cpu is not None
            else {}
        )
        for m, t in rounds
    ]
    ack_process = {}
    if all(m.ack_cpu is not None for m, _ in rounds):
        ack_process = {
            "ack_process_cpu_ratio": statistics.median(
                r["bot_ack_process_cpu_ms_per_event"] / r["bare_cpu_ms_per_event"]
                for r in per_round
            )
        }
    return {
        "events": events,
        "rounds": s.rounds,
        "concurrency": s.concurrency,
        "bot": side(0),
        "bare_bolt": side(1),
        "throughput_ratio": statistics.median(
            r["bot_events_per_s"] / r["bare_events_per_s"] for r in per_round
        ),
        "p99_ratio": statistics.median(r["bot_p99_ms"] / r["bare_p99_ms"] for r in per_round),
        "cpu_ratio": statistics.median(
            r["bot_cpu_ms_per_event"] / r["bare_cpu_ms_per_event"] for r in per_round
        ),
        **ack_process,
        "per_round": per_round,
    }


class Bench:
    def __init__(self, sizes: Sizes, work: Path) -> None:
        self.sizes = sizes
        self.work = work
        self.standin: Proc | None = None
        self.http: aiohttp.ClientSession | None = None
        self.built: dict[str, dict[str, float]] = {}

    @property
    def standin_url(self) -> str:
        assert self.standin is not None
        return f"http://127.0.0.1:{self.standin.port}"

    def env(self, db: Path | str) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": load.SIGNING_SECRET,
            "SLACK_API_URL": f"{self.standin_url}/api/",
            "CONTEXTUAL_API_KEY": "bench-contextual-key-0000",
            "CONTEXTUAL_BASE_URL": f"{self.standin_url}/v1",
            "AQUILAX_API_KEY": "bench-aquilax-key-0000",
            "AQUILAX_BASE_URL": self.standin_url,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench-0000",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench-0000",
            "LANGFUSE_BASE_URL": self.standin_url,
            "FEEDBACK_ASK_AGENT": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "FEEDBACK_DB": str(db),
            "FEEDBACK_HOST": "127.0.0.1",
            "FEEDBACK_PORT": "0",
        }

    async def bot(
        self,
        db: Path | str,
        name: str,
        socket: SocketModeStandIn | None = None,
        worker: str = "inline",
    ) -> Proc:
        env = self.env(db) | {"FEEDBACK_WORKER": worker}
        if socket is not None:
            env |= {"SLACK_API_URL": socket.api_url, "SLACK_APP_TOKEN": APP_TOKEN}
        bot = await Proc(
            [sys.executable, "-m", "bot", "run"],
            env,
            self.work / f"{name}.log",
            r"listening on http://[\d.]+:(\d+)",
        ).start()
        if socket is not None:
            await socket.connected()
        return bot

    async def worker(self, db: Path, name: str) -> Proc:
        """`feedback-bot worker` on the bot's database."""
        return await Proc(
            [sys.executable, "-m", "bot", "worker"],
            self.env(db),
            self.work / f"{name}-worker.log",
            r"()feedback-bot worker is up",
        ).start()

    async def bare(self, socket: SocketModeStandIn | None = None) -> Proc:
        env = self.env(self.work / "unused.db")
        if socket is None:
            return await Proc(
                [sys.executable, "-m", "bench.bare_bolt", f"{self.standin_url}/api/"],
                env,
                self.work / "bare-bolt.log",
                r"listening on http://[\d.]+:(\d+)",
            ).start()
        env["SLACK_APP_TOKEN"] = APP_TOKEN
        bare = await Proc(
            [sys.executable, "-m", "bench.bare_bolt", socket.api_url, "--socket"],
            env,
            self.work / "bare-bolt-socket.log",
            r"()connected",
        ).start()
        await socket.connected()
        return bare

    async def arrivals(self) -> list[tuple[str, str, float]]:
        assert self.http is not None
        async with self.http.get(f"{self.standin_url}/_arrivals") as r:
            return [tuple(a) for a in await r.json()]  # type: ignore[misc]

    async def reset_arrivals(self) -> None:
        assert self.http is not None
        async with self.http.post(f"{self.standin_url}/_reset") as r:
            await r.read()

    async def wait_arrivals(self, count: int, timeout: float = 300) -> list[tuple[str, str, float]]:
        async with asyncio.timeout(timeout):
            while len(got := await self.arrivals()) < count:  # noqa: ASYNC110 - polls another process
                await asyncio.sleep(0.05)
        return got

    async def database(self, answers: int, name: str) -> tuple[Path, dict[str, float]]:
        path = self.work / f"{name}.db"
        if not path.exists():
            self.built[name] = await asyncio.to_thread(
                dataset.build, path, answers, answers * self.sizes.votes_per_answer
            )
        return path, self.built[name]

    # -------------------------------------------------------------- the figures

    async def outbox_empty(self, db: Path | str, timeout: float = 300) -> None:
        """Until every delivery has left (read from this process: the bot's CPU is not spent
        on it)."""
        if str(db).startswith("postgresql://"):
            conn_pg = await asyncpg.connect(str(db))
            try:
                async with asyncio.timeout(timeout):
                    while await conn_pg.fetchval(  # noqa: ASYNC110 - polls another process
                        "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending')"
                    ):
                        await asyncio.sleep(0.02)
            finally:
                await conn_pg.close()
            return
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            async with asyncio.timeout(timeout):
                while conn.execute(  # noqa: ASYNC110 - polls another process
                    "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'sending')"
                ).fetchone()[0]:
                    await asyncio.sleep(0.02)
        finally:
            conn.close()

    async def pairs(
        self,
        kind: str,
        shots: list[load.Shot],
        socket: SocketModeStandIn | None = None,
        separate_worker: bool = False,
    ) -> dict[str, Any]:
        """The bot and the bare Bolt app in turn on the same load, `rounds` times, the order
        swapped every round. The bot's CPU is counted until its outbox is empty: a vote's
        cost includes its delivery (with a separate worker, both processes' CPU)."""
        s = self.sizes
        base, _ = await self.database(s.small_answers, "small")
        frames = socket.frames(shots) if socket is not None else []

        async def send(proc: Proc) -> load.Result:
            if socket is not None:
                return await socket.closed_loop(frames, s.concurrency)
            url = f"http://127.0.0.1:{proc.port}/slack/events"
            return await load.closed_loop(url, shots, s.concurrency)

        async def run_bot(n: int) -> Side:
            db = self.work / f"{kind}-{n}.db"
            shutil.copyfile(base, db)
            bot = await self.bot(
                db, f"{kind}-{n}", socket, "separate" if separate_worker else "inline"
            )
            procs = [bot]
            if separate_worker:
                procs.append(await self.worker(db, f"{kind}-{n}"))
            cpu = [p.cpu_seconds() for p in procs]
            result = await send(bot)
            await self.outbox_empty(db)
            spent = [p.cpu_seconds() - c for p, c in zip(procs, cpu, strict=True)]
            ack = spent[0] if separate_worker else None
            side = Side(result, sum(spent), max(p.peak_rss_mb() for p in procs), ack)
            for p in procs:
                await p.stop()
            if socket is not None:
                await socket.disconnected()
            return side

        async def run_bare() -> Side:
            bare = await self.bare(socket)
            cpu = bare.cpu_seconds()
            result = await send(bare)
            side = Side(result, bare.cpu_seconds() - cpu, bare.peak_rss_mb())
            await bare.stop()
            if socket is not None:
                await socket.disconnected()
            return side

        rounds: list[tuple[Side, Side]] = []
        for n in range(s.rounds):
            if n % 2 == 0:
                mine = await run_bot(n)
                theirs = await run_bare()
            else:
                theirs = await run_bare()
                mine = await run_bot(n)
            rounds.append((mine, theirs))
        return summarise(rounds, s, len(shots))

    async def throughput(self) -> dict[str, Any]:
        """1. Event throughput, ack latency and CPU per event over HTTP, the bot against a
        bare Bolt app."""
        s = self.sizes
        answers = [dataset.answer(i) for i in range(1, s.small_answers + 1)]
        return await self.pairs("throughput", load.mixed(answers, s.events))

    async def separate_worker(self) -> dict[str, Any]:
        """1c. HTTP again, with deliveries sent by `feedback-bot worker` in a second process."""
        s = self.sizes
        answers = [dataset.answer(i) for i in range(1, s.small_answers + 1)]
        return await self.pairs("separate", load.mixed(answers, s.events), separate_worker=True)

    async def socket_mode(self) -> dict[str, Any]:
        """1b. The same over Socket Mode, against a bare Bolt Socket Mode app."""
        s = self.sizes
        answers = [dataset.answer(i) for i in range(1, s.small_answers + 1)]
        socket = SocketModeStandIn()
        await socket.start()
        try:
            return await self.pairs("socket", load.mixed(answers, s.events), socket)
        finally:
            await socket.stop()

    async def reaction_to_provider(self) -> dict[str, Any]:
        """2. Time from sending a reaction to its feedback arriving at the provider."""
        s = self.sizes
        db = self.work / "latency.db"
        base, _ = await self.database(s.small_answers, "small")
        shutil.copyfile(base, db)
        first = s.small_answers + 1
        steady = dataset.add_answers(db, first, s.steady_events)
        first += s.steady_events
        saturated = dataset.add_answers(db, first, s.saturation_events)
        first += s.saturation_events
        # Answers fanned out to Contextual and Langfuse: one reaction, two deliveries.
        two = dataset.add_answers(db, first, s.steady_events, targets=2)
        bot = await self.bot(db, "latency")
        url = f"http://127.0.0.1:{bot.port}/slack/events"
        out: dict[str, Any] = {}
        for name, answers, targets, send in (
            ("steady", steady, 1, lambda shots: load.open_loop(url, shots, s.steady_rate)),
            (
                "saturation",
                saturated,
                1,
                lambda shots: load.closed_loop(url, shots, s.saturation_concurrency),
            ),
            ("two_targets", two, 2, lambda shots: load.open_loop(url, shots, s.steady_rate)),
        ):
            await self.reset_arrivals()
            result = await send(load.first_votes(answers))
            # Each arrival at either provider against the reaction it came from.
            arrived = await self.wait_arrivals(len(answers) * targets)
            latencies = [at - result.sent_at[mid] for mid, _, at in arrived]
            out[name] = {
                "events": len(answers),
                "deliveries": len(arrived),
                "offered_per_s": None if name == "saturation" else s.steady_rate,
                "achieved_per_s": result.rate,
                "p50_ms": load.percentile(latencies, 50) * 1e3,
                "p99_ms": load.percentile(latencies, 99) * 1e3,
                "max_ms": max(latencies) * 1e3,
                "errors": result.errors,
            }
        out["peak_rss_mb"] = bot.peak_rss_mb()
        await bot.stop()
        return out

    async def scale(self) -> dict[str, Any]:
        """3. Per-event cost with a small and a large store, in turn, `rounds` times (the
        order swapped every round); the ratio is the median of the rounds' own ratios."""
        s = self.sizes
        sizes = {"small": s.small_answers, "large": s.large_answers}
        built: dict[str, float] = {}
        for label, count in sizes.items():
            started = time.perf_counter()
            await self.database(count, label)
            built[label] = round(time.perf_counter() - started, 1)

        async def one(label: str, n: int) -> dict[str, Any]:
            count = sizes[label]
            base, db_sizes = await self.database(count, label)
            db = self.work / f"scale-{label}.db"
            shutil.copyfile(base, db)
            rng = random.Random(7)
            picked = [dataset.answer(rng.randint(1, count)) for _ in range(min(count, 5_000))]
            shots = load.mixed(picked, s.scale_events, seed=3 + n)
            bot = await self.bot(db, f"scale-{label}-{n}")
            cpu_before = bot.cpu_seconds()
            result = await load.closed_loop(
                f"http://127.0.0.1:{bot.port}/slack/events", shots, s.concurrency
            )
            cpu = bot.cpu_seconds() - cpu_before
            figures = {
                "answers": count,
                "votes": count * s.votes_per_answer,
                "events": len(shots),
                "events_per_s": result.rate,
                "cpu_ms_per_event": cpu / len(shots) * 1e3,
                "ack_p99_ms": load.percentile(result.latencies, 99) * 1e3,
                "db_answers_mb": db_sizes["answers_mb"],
                "db_total_mb": db_sizes["total_mb"],
                "build_s": built[label],
                "peak_rss_mb": bot.peak_rss_mb(),
                "errors": result.errors,
            }
            await bot.stop()
            db.unlink()
            return figures

        rounds: list[dict[str, dict[str, Any]]] = []
        for n in range(s.rounds):
            order = ("small", "large") if n % 2 == 0 else ("large", "small")
            rounds.append({label: await one(label, n) for label in order})

        def median(label: str, key: str) -> float:
            return statistics.median(r[label][key] for r in rounds)

        out: dict[str, Any] = {}
        for label in sizes:
            out[label] = rounds[0][label] | {
                key: median(label, key)
                for key in ("events_per_s", "cpu_ms_per_event", "ack_p99_ms")
            }
            out[label]["peak_rss_mb"] = max(r[label]["peak_rss_mb"] for r in rounds)
            out[label]["errors"] = sum(r[label]["errors"] for r in rounds)
        large = out["large"]
        out["rounds"] = s.rounds
        out["cpu_ratio_large_to_small"] = statistics.median(
            r["large"]["cpu_ms_per_event"] / r["small"]["cpu_ms_per_event"] for r in rounds
        )
        out["time_ratio_large_to_small"] = statistics.median(
            r["small"]["events_per_s"] / r["large"]["events_per_s"] for r in rounds
        )
        out["per_round_cpu_ratio"] = [
            r["large"]["cpu_ms_per_event"] / r["small"]["cpu_ms_per_event"] for r in rounds
        ]
        out["db_mb_per_million_answers"] = large["db_answers_mb"] * 1e6 / large["answers"]
        out["db_mb_per_million_answers_with_votes"] = large["db_total_mb"] * 1e6 / large["answers"]
        return out

    async def drain(self) -> dict[str, Any]:
        """4. A backlog of pending deliveries after an outage, against a healthy provider."""
        s = self.sizes
        base, _ = await self.database(s.small_answers, "small")
        db = self.work / "drain.db"
        shutil.copyfile(base, db)
        dataset.add_pending(db, s.small_answers + 1, s.drain)
        out = await self._drain_once(db, "drain", s.drain)
        # The same number of deliveries, half as many answers, each to two targets.
        two = self.work / "drain-two.db"
        shutil.copyfile(base, two)
        dataset.add_pending(two, s.small_answers + 1, s.drain // 2, targets=2)
        out["two_targets"] = await self._drain_once(two, "drain-two", s.drain // 2 * 2)
        return out

    async def _drain_once(self, db: Path, name: str, deliveries: int) -> dict[str, Any]:
        await self.reset_arrivals()
        started = time.time()
        bot = await self.bot(db, name)
        arrived = await self.wait_arrivals(deliveries)
        times = sorted(at for *_, at in arrived)
        window = times[-1] - times[0]
        rss = bot.peak_rss_mb()
        await bot.stop()
        return {
            "deliveries": deliveries,
            "concurrency": 16,
            "per_s": deliveries / window if window else float("inf"),
            "seconds": window,
            "seconds_from_start": times[-1] - started,
            "peak_rss_mb": rss,
        }

    async def ask(self) -> dict[str, Any]:
        """6. Ask the AI: from a question's event to the answer's post in its thread, less
        the agent's own time, with an agent that answers at once and one that takes 500 ms;
        and the bot's CPU per question."""
        s = self.sizes
        db = self.work / "ask.db"
        db.unlink(missing_ok=True)
        bot = await self.bot(db, "ask")
        url = f"http://127.0.0.1:{bot.port}/slack/events"
        out: dict[str, Any] = {"rate_per_s": s.ask_rate}
        first = 1
        for name, delay in (("instant_agent", 0.0), ("agent_500ms", 0.5)):
            await self.reset_arrivals()
            assert self.http is not None
            async with self.http.post(f"{self.standin_url}/_agent_delay", json={"seconds": delay}):
                pass
            shots = load.questions(s.ask_questions, first)
            first += s.ask_questions
            cpu_before = bot.cpu_seconds()
            result = await load.open_loop(url, shots, s.ask_rate)
            posts = await self._wait_posts(len(shots))
            cpu = bot.cpu_seconds() - cpu_before
            overheads = [at - result.sent_at[thread] - delay for thread, at in posts]
            out[name] = {
                "questions": len(shots),
                "p50_ms": load.percentile(overheads, 50) * 1e3,
                "p99_ms": load.percentile(overheads, 99) * 1e3,
                "cpu_ms_per_question": cpu / len(shots) * 1e3,
                "errors": result.errors,
            }
        await bot.stop()
        return out

    async def _wait_posts(self, count: int, timeout: float = 300) -> list[tuple[str, float]]:
        assert self.http is not None
        deadline = time.time() + timeout
        while True:
            async with self.http.get(f"{self.standin_url}/_posts") as r:
                posts = [tuple(p) for p in await r.json()]
            if len(posts) >= count or time.time() > deadline:
                return posts  # type: ignore[return-value]
            await asyncio.sleep(0.1)

    async def postgres(self) -> dict[str, Any]:
        """5. The HTTP load of section 1 on PostgreSQL, one replica and two behind a
        round-robin balancer, beside SQLite's one bot; each in turn, `rounds` times. CPU is
        every replica's until the outbox is empty."""
        try:
            server = postgres.start()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            return {"skipped": f"no PostgreSQL server here ({e})"}
        s = self.sizes
        base, _ = await self.database(s.small_answers, "small")
        answers = [dataset.answer(i) for i in range(1, s.small_answers + 1)]
        shots = load.mixed(answers, s.events)
        await postgres.prepare_template(server)

        async def one(kind: str, replicas: int, n: int) -> dict[str, Any]:
            if kind == "sqlite":
                where: str = str(self.work / f"pg-sqlite-{n}.db")
                shutil.copyfile(base, where)
            else:
                where = await postgres.new_database(server)
                await transfer.copy(str(base), where)
            server_cpu = server.cpu_seconds()
            bots = [await self.bot(where, f"{kind}-{replicas}-{n}-{i}") for i in range(replicas)]
            cpu = [b.cpu_seconds() for b in bots]
            result = await load.closed_loop(
                [f"http://127.0.0.1:{b.port}/slack/events" for b in bots], shots, s.concurrency
            )
            await self.outbox_empty(where)
            spent = sum(b.cpu_seconds() - c for b, c in zip(bots, cpu, strict=True))
            for b in bots:
                await b.stop()
            # The database server's share: its backends' CPU is the bots' work as much as
            # SQLite's in-process writes are (start-up and migration included: a little high).
            database = server.cpu_seconds() - server_cpu if kind == "postgresql" else 0.0
            return {
                "events": len(shots),
                "events_per_s": result.rate,
                "ack_p99_ms": load.percentile(result.latencies, 99) * 1e3,
                "cpu_ms_per_event": spent / len(shots) * 1e3,
                "server_cpu_ms_per_event": database / len(shots) * 1e3,
                "errors": result.errors,
            }

        setups = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
        rounds: list[dict[str, dict[str, Any]]] = []
        try:
            for n in range(s.rounds):
                order = setups if n % 2 == 0 else list(reversed(setups))
                rounds.append({f"{k}-{r}": await one(k, r, n) for k, r in order})
        finally:
            server.stop()
        out: dict[str, Any] = {"rounds": s.rounds}
        for kind, replicas in setups:
            label = f"{kind}-{replicas}"
            out[label] = {
                key: statistics.median(r[label][key] for r in rounds)
                for key in (
                    "events_per_s",
                    "ack_p99_ms",
                    "cpu_ms_per_event",
                    "server_cpu_ms_per_event",
                )
            } | {"errors": sum(r[label]["errors"] for r in rounds), "replicas": replicas}
        return out

    async def run(self, sections: list[str]) -> dict[str, Any]:
        self.standin = await Proc(
            [sys.executable, "-m", "bench.standin"],
            dict(os.environ),
            self.work / "standin.log",
            r"port (\d+)",
        ).start()
        self.http = aiohttp.ClientSession()
        try:
            return {name: await getattr(self, name)() for name in sections}
        finally:
            await self.http.close()
            for proc in RUNNING:
                await proc.stop()


SECTIONS = (
    "throughput",
    "socket_mode",
    "separate_worker",
    "reaction_to_provider",
    "scale",
    "drain",
    "postgres",
    "ask",
)

# ------------------------------------------------------------------ report


def _pair_targets(section: str, label: str) -> list[tuple[str, str, Any]]:
    return [
        (
            section,
            f"{label}: throughput ≥ 0.85 × bare Bolt",
            lambda r: r[section]["throughput_ratio"] >= 0.85,
        ),
        (
            section,
            f"{label}: ack p99 ≤ 1.2 × bare Bolt",
            lambda r: r[section]["p99_ratio"] <= 1.2,
        ),
        (
            section,
            f"{label}: CPU per event ≤ 1.25 × bare Bolt",
            lambda r: r[section]["cpu_ratio"] <= 1.25,
        ),
    ]


TARGETS: list[tuple[str, str, Any]] = [
    *_pair_targets("throughput", "HTTP"),
    *_pair_targets("socket_mode", "Socket Mode"),
    (
        "reaction_to_provider",
        "reaction → provider p99 ≤ 100 ms (steady)",
        lambda r: r["reaction_to_provider"]["steady"]["p99_ms"] <= 100,
    ),
    (
        "scale",
        "per-event cost at large ≤ 1.2 × small",
        lambda r: r["scale"]["cpu_ratio_large_to_small"] <= 1.2,
    ),
    ("drain", "drain ≥ 500 deliveries/s", lambda r: r["drain"]["per_s"] >= 500),
    (
        "ask",
        "Ask the AI: the bot's own time ≤ 50 ms p99 at 20 questions/s",
        lambda r: max(r["ask"]["instant_agent"]["p99_ms"], r["ask"]["agent_500ms"]["p99_ms"]) <= 50,
    ),
    (
        "scale",
        "RSS ≤ 150 MB with the large store",
        lambda r: r["scale"]["large"]["peak_rss_mb"] <= 150,
    ),
]


def _pair_rows(t: dict[str, Any], label: str) -> list[tuple[str, str]]:
    b, o = t["bot"], t["bare_bolt"]
    return [
        (
            f"{label} events/s (bot | bare Bolt | ratio)",
            f"{b['events_per_s']:.0f} | {o['events_per_s']:.0f} | {t['throughput_ratio']:.2f}",
        ),
        ("   ack p50 ms (bot | bare)", f"{b['ack_p50_ms']:.1f} | {o['ack_p50_ms']:.1f}"),
        (
            "   ack p99 ms (bot | bare | ratio)",
            f"{b['ack_p99_ms']:.1f} | {o['ack_p99_ms']:.1f} | {t['p99_ratio']:.2f}",
        ),
        (
            "   CPU ms/event (bot | bare | ratio)",
            f"{b['cpu_ms_per_event']:.3f} | {o['cpu_ms_per_event']:.3f} | {t['cpu_ratio']:.2f}",
        ),
        ("   peak RSS MB (bot | bare)", f"{b['peak_rss_mb']} | {o['peak_rss_mb']}"),
    ]


def report(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    errors = 0
    if "throughput" in r:
        rows += _pair_rows(r["throughput"], "1. HTTP")
        errors += r["throughput"]["bot"]["errors"] + r["throughput"]["bare_bolt"]["errors"]
    if "socket_mode" in r:
        rows += _pair_rows(r["socket_mode"], "1b. Socket Mode")
        errors += r["socket_mode"]["bot"]["errors"] + r["socket_mode"]["bare_bolt"]["errors"]
    if "separate_worker" in r:
        w = r["separate_worker"]
        rows += _pair_rows(w, "1c. HTTP, separate worker")
        rows.append(
            ("   CPU ratio of the acking process alone", f"{w['ack_process_cpu_ratio']:.2f}")
        )
        errors += w["bot"]["errors"] + w["bare_bolt"]["errors"]
    if "reaction_to_provider" in r:
        lat = r["reaction_to_provider"]
        rows += [
            (
                f"2. reaction → provider at {lat['steady']['offered_per_s']:.0f}/s: p50 | p99 ms",
                f"{lat['steady']['p50_ms']:.1f} | {lat['steady']['p99_ms']:.1f}",
            ),
            (
                f"   at saturation ({lat['saturation']['achieved_per_s']:.0f}/s): p50 | p99 ms",
                f"{lat['saturation']['p50_ms']:.1f} | {lat['saturation']['p99_ms']:.1f}",
            ),
        ]
        if "two_targets" in lat:
            two = lat["two_targets"]
            rows.append(
                (
                    f"   two targets at {two['offered_per_s']:.0f}/s, each arrival: p50 | p99 ms",
                    f"{two['p50_ms']:.1f} | {two['p99_ms']:.1f}",
                )
            )
            errors += two["errors"]
        rows += [
            ("   peak RSS MB", f"{lat['peak_rss_mb']}"),
        ]
        errors += lat["steady"]["errors"] + lat["saturation"]["errors"]
    if "scale" in r:
        sc = r["scale"]
        rows += [
            (
                f"3. CPU ms/event: {sc['small']['answers']:,} | {sc['large']['answers']:,} answers | ratio",
                f"{sc['small']['cpu_ms_per_event']:.2f} | {sc['large']['cpu_ms_per_event']:.2f} | {sc['cpu_ratio_large_to_small']:.2f}",
            ),
            (
                "   events/s: small | large",
                f"{sc['small']['events_per_s']:.0f} | {sc['large']['events_per_s']:.0f}",
            ),
            (
                "   DB MB per 1M answers (answers only | with 10 votes each)",
                f"{sc['db_mb_per_million_answers']:.0f} | {sc['db_mb_per_million_answers_with_votes']:.0f}",
            ),
            (
                "   peak RSS MB: small | large",
                f"{sc['small']['peak_rss_mb']} | {sc['large']['peak_rss_mb']}",
            ),
        ]
    if "drain" in r:
        d = r["drain"]
        rows += [
            (
                f"4. drain of {d['deliveries']:,} deliveries/s",
                f"{d['per_s']:.0f} ({d['seconds']:.1f} s)",
            ),
        ]
        if "two_targets" in d:
            two = d["two_targets"]
            rows.append(
                (
                    f"   {two['deliveries']:,} to two targets (Contextual + Langfuse)/s",
                    f"{two['per_s']:.0f} ({two['seconds']:.1f} s)",
                )
            )
        rows += [
            ("   peak RSS MB", f"{d['peak_rss_mb']}"),
        ]
    if "postgres" in r:
        pg = r["postgres"]
        if "skipped" in pg:
            rows.append(("5. PostgreSQL", pg["skipped"]))
        else:
            for label, name in (
                ("sqlite-1", "SQLite, 1 bot"),
                ("postgresql-1", "PostgreSQL, 1 replica"),
                ("postgresql-2", "PostgreSQL, 2 replicas"),
            ):
                x = pg[label]
                rows.append(
                    (
                        f"5. {name}: events/s | ack p99 ms | CPU ms/event (bots + server)",
                        f"{x['events_per_s']:.0f} | {x['ack_p99_ms']:.1f} | {x['cpu_ms_per_event']:.3f} + {x['server_cpu_ms_per_event']:.3f}",
                    )
                )
                errors += x["errors"]
    if "ask" in r:
        a = r["ask"]
        for name, label in (("instant_agent", "instant"), ("agent_500ms", "500 ms")):
            x = a[name]
            rows.append(
                (
                    f"6. Ask the AI at {a['rate_per_s']:.0f}/s, {label} agent: bot's time p50 | p99"
                    " ms | CPU ms/question",
                    f"{x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['cpu_ms_per_question']:.2f}",
                )
            )
            errors += x["errors"]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append(f"{'non-200 responses (or unacked envelopes)':<{width}}  {errors}")
    lines.append("")
    for section, name, check in TARGETS:
        if section in r:
            lines.append(f"[{'met ' if check(r) else 'MISS'}] {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, finishes in seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--only",
        type=lambda v: v.split(","),
        default=list(SECTIONS),
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--rounds", type=int, help="rounds of each bot-against-bare pair")
    parser.add_argument("--events", type=int, help="events per bot-against-bare round")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section {', '.join(sorted(unknown))}: choose from {SECTIONS}")
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds)
    if args.events:
        sizes = replace(sizes, events=args.events)
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        started = time.time()
        results = asyncio.run(Bench(sizes, Path(tmp)).run(args.only))
    results["meta"] = {
        "mode": "quick" if args.quick else "full",
        "sizes": sizes.__dict__,
        "seconds": round(time.time() - started, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "targets": {name: check(results) for section, name, check in TARGETS if section in results},
    }
    print(report(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {args.out} ({results['meta']['seconds']} s)")
    return 0
