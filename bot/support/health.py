"""What /healthz reports: whether the bot can do its job right now, and why not."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from storage import Store

# Why events cannot arrive over the socket right now, or None (bot/slack/inbound.py:
# CheckedSocketModeHandler.problem).
SocketProblem = Callable[[], Awaitable[str | None]]


class Health:
    """The database takes writes and is still the configured file; in Socket Mode, the
    connection to Slack is up and Slack has said hello on it. Each check is one line of
    reason when it fails."""

    def __init__(self, store: Store, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._socket: SocketProblem | None = None
        self._socket_down_since: float | None = None

    def watch_socket(self, problem: SocketProblem) -> None:
        self._socket = problem

    async def problems(self) -> list[str]:
        problems = await self._store.health(self._owner)
        if self._socket is not None:
            if (why := await self._socket()) is None:
                self._socket_down_since = None
            else:
                now = time.time()
                self._socket_down_since = self._socket_down_since or now
                problems.append(
                    f"{why} (noticed {now - self._socket_down_since:.0f} s ago);"
                    " events cannot arrive"
                )
        return problems
