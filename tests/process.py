"""The bot as users run it: `python -m bot run` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path


class BotProcess:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = {**_clean_environ(), **env}
        self.cwd = cwd
        self.output: list[str] = []
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    async def start(self, timeout: float = 20.0) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
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

    async def stop_reading(self) -> None:
        """Close our end of its output pipes, as a supervisor that died would."""
        assert self._proc is not None
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._readers.clear()
        transport = self._proc._transport  # type: ignore[attr-defined]
        for fd in (1, 2):
            transport.get_pipe_transport(fd).close()

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
        code = await asyncio.wait_for(self._proc.wait(), 30)
        await asyncio.gather(*self._readers)
        self._readers.clear()
        return code


def _clean_environ() -> dict[str, str]:
    """The parent's environment without any feedback-bot settings it may carry."""
    prefixes = ("SLACK_", "CONTEXTUAL_", "AQUILAX_", "FEEDBACK_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
