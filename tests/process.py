"""The bot as users run it: `python -m bot run` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.domain import Answer, Target
from bot.providers.base import feedback_uuid
from tests.credentials import API_TOKEN
from tests.harness import SlackSide, wait_until
from tests.slack_payloads import CHANNEL, new_uuid
from tests.standins import DEADLINE
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn

# The provider request timeout of bots run as processes (and of the stand-ins): short, so
# that leases (timeout + 1 s) expire quickly after a kill.
PROCESS_PROVIDER_TIMEOUT = 2.0


class BotProcess:
    """`feedback-bot run` (or `feedback-bot worker`) in a subprocess."""

    def __init__(self, env: dict[str, str], cwd: Path, command: str = "run") -> None:
        self.env = {**_clean_environ(), **env}
        self.cwd = cwd
        self.command = command
        self.output: list[str] = []
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, timeout: float = 20.0) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        listening = asyncio.Event()
        for stream in (self._proc.stdout, self._proc.stderr):
            assert stream is not None
            self._readers.append(asyncio.create_task(self._read(stream, listening)))
        try:
            async with asyncio.timeout(timeout):
                await listening.wait()
        except TimeoutError:
            raise AssertionError(f"the bot did not start:\n{self.text}") from None

    async def _read(self, stream: asyncio.StreamReader, listening: asyncio.Event) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.output.append(text)
            if m := re.search(r"listening on http://[\d.]+:(\d+)", text):
                self.port = int(m.group(1))
                listening.set()
            elif "feedback-bot worker is up" in text:
                listening.set()

    async def stop_reading(self) -> None:
        """Close our end of its output pipes, as a supervisor that died would."""
        assert self._proc is not None
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers.clear()
        transport = self._proc._transport  # type: ignore[attr-defined]
        pipes = [transport.get_pipe_transport(fd) for fd in (1, 2)]
        for pipe in pipes:
            pipe.close()

        # close() lets go of the pipe a turn of the loop later: wait until it has, so that
        # what the bot writes next finds nobody reading.
        async def let_go() -> bool:
            return all(pipe.get_extra_info("pipe").closed for pipe in pipes)

        await wait_until(let_go)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs at all."""
        await self._signal(signal.SIGKILL)

    async def terminate(self) -> int:
        return await self._signal(signal.SIGTERM)

    async def ensure_stopped(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            await self.kill()

    async def _signal(self, sig: int) -> int:
        assert self._proc is not None
        self._proc.send_signal(sig)
        code = await asyncio.wait_for(self._proc.wait(), DEADLINE)
        await asyncio.gather(*self._readers)
        self._readers.clear()
        return code


def _clean_environ() -> dict[str, str]:
    """The parent's environment without any feedback-bot settings it may carry."""
    prefixes = ("SLACK_", "CONTEXTUAL_", "AQUILAX_", "FEEDBACK_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@dataclass
class World:
    """Stand-ins, a database file and any number of `feedback-bot run` processes on it."""

    tmp: Path
    slack_api: SlackStandIn
    contextual: ProviderStandIn
    aquilax: ProviderStandIn
    langsmith: ProviderStandIn
    langfuse: ProviderStandIn
    http: httpx.AsyncClient
    bots: list[BotProcess] = field(default_factory=list)
    provider_timeout: float = PROCESS_PROVIDER_TIMEOUT
    database: str | None = None  # FEEDBACK_DB (None: feedback.db in tmp)

    def __post_init__(self) -> None:
        self.set_provider_timeout(self.provider_timeout)

    def set_provider_timeout(self, seconds: float) -> None:
        """The bots' request timeout, and the stand-ins' own (they model a provider that
        gives up on a request after the same time)."""
        self.provider_timeout = seconds
        for provider in (self.contextual, self.aquilax, self.langsmith, self.langfuse):
            provider.timeout = seconds

    @property
    def db(self) -> str:
        return self.database or str(self.tmp / "feedback.db")

    def env(self, **overrides: str) -> dict[str, str]:
        from tests.conftest import env_for, settings_for

        settings = settings_for(
            self.db, self.slack_api, self.contextual, self.aquilax, self.langsmith, self.langfuse
        )
        return {
            **env_for(settings),
            "FEEDBACK_LOG_LEVEL": "DEBUG",
            "FEEDBACK_PROVIDER_TIMEOUT": str(self.provider_timeout),
            **overrides,
        }

    def bot(self, **overrides: str) -> BotProcess:
        bot = BotProcess(self.env(**overrides), self.tmp)
        self.bots.append(bot)
        return bot

    def worker(self, **overrides: str) -> BotProcess:
        """`feedback-bot worker` on the same database."""
        worker = BotProcess(self.env(**overrides), self.tmp, command="worker")
        self.bots.append(worker)
        return worker

    def slack(self, bot: BotProcess) -> SlackSide:
        return SlackSide(self.http, f"http://127.0.0.1:{bot.port}/slack/events")

    async def register(self, bot: BotProcess, body: dict[str, Any]) -> None:
        r = await self.http.post(
            f"http://127.0.0.1:{bot.port}/v1/answers",
            json=body,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert r.status_code == 201, r.text

    async def health(self, bot: BotProcess) -> dict[str, Any]:
        return (await self.http.get(f"http://127.0.0.1:{bot.port}/healthz")).json()  # type: ignore[no-any-return]


def contextual(ts: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {
        "channel": channel,
        "ts": ts,
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
    }


def langsmith(ts: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {"channel": channel, "ts": ts, "provider": "langsmith", "run_id": new_uuid()}


def langfuse(ts: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {"channel": channel, "ts": ts, "provider": "langfuse", "trace_id": new_uuid()}


def aquilax(ts: str, channel: str = CHANNEL) -> dict[str, Any]:
    return {
        "channel": channel,
        "ts": ts,
        "provider": "aquilax",
        "request_id": new_uuid(),
        "org": "65dd3e835a669e3347654200",
        "group": "67e86d036e9921509f730483",
    }


def fanned_out(ts: str) -> dict[str, Any]:
    """An answer whose feedback goes to Contextual and to Langfuse."""
    one, other = contextual(ts), langfuse(ts)
    targets = [{k: v for k, v in t.items() if k not in ("channel", "ts")} for t in (one, other)]
    return {"channel": one["channel"], "ts": ts, "targets": targets}


def targets_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "targets" in body:
        return body["targets"]
    return [{k: v for k, v in body.items() if k not in ("channel", "ts")}]


def slot_of(body: dict[str, Any], position: int) -> str:
    """The slot of an answer itself at one of its targets, as that stand-in names it."""
    target_body = targets_of(body)[position]
    if target_body["provider"] == "contextual":
        return f"{target_body['message_id']}/"
    ids = {k: target_body[k] for k in ("run_id", "trace_id") if k in target_body}
    target = Target(provider=target_body["provider"], position=position, **ids)
    answer = Answer(channel=body["channel"], ts=body["ts"], targets=(target,))
    return feedback_uuid(answer, target, "")
