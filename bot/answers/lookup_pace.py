"""The pace of late lookups: a budget of Slack calls per workspace (a token bucket that a
429 pauses), and the schedule by which a lookup Slack could not answer is tried again."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

RETRY_FIRST = 2.0  # a lookup Slack could not answer is tried again after 2 s, 4 s … 5 min
RETRY_MAX = 300.0


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """How long a lookup Slack could not answer waits before it is tried again: `first`
    after the first failure, doubled after each further one, never more than `cap`."""

    first: float = RETRY_FIRST
    cap: float = RETRY_MAX

    def pause(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1 for the first)."""
        # The exponent is bounded so that a message failing for days cannot overflow.
        return min(self.first * 2.0 ** min(max(failures, 1) - 1, 64), self.cap)


class Budget:
    """The Slack calls late lookup may make in this workspace: a token bucket holding at
    most one minute's worth (`per_minute` calls), refilled at `per_minute` a minute, and
    paused by a 429 for as long as Slack's Retry-After says. `clock` and `sleep` are the
    monotonic clock and how to wait on it (tests give a clock they move by hand)."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute < 1:
            raise ValueError("a budget needs at least one call a minute")
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(per_minute)
        self._at = clock()
        self._paused_until = 0.0
        self.blocked = False  # a call is waiting for the bucket (status, tests)

    def _refill(self) -> None:
        now = self._clock()
        if now > self._at:
            self._tokens = min(
                float(self.per_minute), self._tokens + (now - self._at) * self.per_minute / 60
            )
            self._at = now

    def _wait(self) -> float:
        """Seconds until a call may be made (0: now)."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._refill()
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) * 60 / self.per_minute

    async def take(self) -> None:
        """Wait for a call's token, and spend it."""
        while (wait := self._wait()) > 0:
            self.blocked = True
            try:
                await self._sleep(wait)
            finally:
                self.blocked = False
        self._tokens -= 1

    def pause(self, seconds: float) -> None:
        """Slack refused a call as over its limit: no call for `seconds`, then one, and the
        rest at the bucket's pace (no burst right after a refusal)."""
        self._refill()
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = min(self._tokens, 1.0)
        self._at = max(self._at, self._paused_until)  # nothing accrues while paused

    def left(self) -> int:
        """Calls that could be made now."""
        if self.paused_for() > 0:
            return 0
        self._refill()
        return max(0, math.floor(self._tokens))

    def paused_for(self) -> float:
        """Seconds of a 429's pause still to run."""
        return max(0.0, self._paused_until - self._clock())


def retry_after(error: SlackApiError) -> float | None:
    """Slack's Retry-After (on a 429, or a 503 that says when to come back)."""
    raw = (error.response.headers or {}).get("Retry-After") if error.response else None
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    # A huge or negative value must not stop lookups for good, nor spin.
    return min(max(value, 1.0), 3600.0) if value is not None and math.isfinite(value) else None
