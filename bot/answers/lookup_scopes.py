"""Late lookup's stops for a missing scope: where Slack said reading a channel needs a scope
the token lacks, no more calls go there (nor anywhere, when the token has no history scope
at all) until the scopes change. The bot learns that from auth.test, which costs no history
call: every `recheck_every` seconds while stopped, and at once when asked (`recheck_now`,
after any `/feedback` setting change: an admin who reinstalled the app and runs
`/feedback late-lookup on` again is heard at once). A restart starts afresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.api import HISTORY_SCOPES, granted_scopes, missing_history_scopes

log = logging.getLogger(__name__)

RECHECK_SCOPES_EVERY = 600.0  # while stopped by missing_scope, auth.test this often


class ScopeStops:
    """`on_resume` is called when a missing scope is granted again."""

    def __init__(self, slack: AsyncWebClient, on_resume: Callable[[], None]) -> None:
        self._slack = slack
        self._on_resume = on_resume
        self.recheck_every = RECHECK_SCOPES_EVERY
        self._missing: set[str] = set()  # scopes Slack (or auth.test) says the token lacks
        self._refused: dict[str, str] = {}  # channel -> the scope Slack said it needs
        self._rescope = asyncio.Event()  # re-check the token's scopes now
        self._rechecks: asyncio.Task[None] | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        """What Slack said the token lacks, sorted."""
        return tuple(sorted(self._missing))

    @property
    def channels(self) -> int:
        """How many channels are stopped for a missing scope."""
        return len(self._refused)

    def everywhere(self) -> bool:
        """No channel can be read: the token has no history scope at all."""
        return all(scope in self._missing for scope in HISTORY_SCOPES)

    def stopped_in(self, channel: str) -> bool:
        return self.everywhere() or self._refused.get(channel) in self._missing

    def recheck_now(self) -> None:
        """The scopes may have changed: if anything is stopped, ask Slack at once."""
        if self._missing:
            self._rescope.set()

    def cancel(self) -> None:
        if self._rechecks is not None:
            self._rechecks.cancel()

    async def stop(self, channel: str, needed: str) -> None:
        """Slack said reading `channel` needs `needed`: no more calls there, nor anywhere
        if the token has no history scope at all, until the scopes change."""
        needed = needed or ",".join(HISTORY_SCOPES)
        self._missing.add(needed)
        self._refused[channel] = needed
        granted = await self._granted()
        if granted is not None:
            self._missing.update(missing_history_scopes(granted))
        if self._rechecks is None or self._rechecks.done():
            self._rechecks = asyncio.create_task(self._recheck(), name="late lookup scopes")

    async def _granted(self) -> frozenset[str] | None:
        """The token's scopes, from auth.test (no history call); None if Slack won't say."""
        try:
            return granted_scopes(await self._slack.auth_test())
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as e:
            log.debug("late lookup: could not read the token's scopes (%s)", type(e).__name__)
            return None

    async def _recheck(self) -> None:
        """While something is stopped for a missing scope: is it granted now?"""
        while self._missing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.recheck_every):
                    await self._rescope.wait()
            self._rescope.clear()
            granted = await self._granted()
            if granted is None:
                continue
            back = {s for s in self._missing if all(p in granted for p in s.split(","))}
            if not back:
                continue
            self._missing -= back
            self._refused = {c: s for c, s in self._refused.items() if s in self._missing}
            self._on_resume()
            log.info("late lookup resumes: the bot token now has %s", ", ".join(sorted(back)))
