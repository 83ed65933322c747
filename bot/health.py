"""What /healthz reports: whether the bot can do its job right now, and why not."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from storage import Store

Connected = Callable[[], Awaitable[bool]]


class Health:
    """The database takes writes and is still the configured file; in Socket Mode, the
    connection to Slack is up. Each check is one line of reason when it fails."""

    def __init__(self, store: Store, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._socket: Connected | None = None
        self._socket_down_since: float | None = None

    def watch_socket(self, connected: Connected) -> None:
        self._socket = connected

    async def problems(self) -> list[str]:
        problems = await self._store.health(self._owner)
        if self._socket is not None:
            if await self._socket():
                self._socket_down_since = None
            else:
                now = time.time()
                self._socket_down_since = self._socket_down_since or now
                problems.append(
                    "the Socket Mode connection to Slack is down (noticed"
                    f" {now - self._socket_down_since:.0f} s ago); events cannot arrive"
                )
        return problems
