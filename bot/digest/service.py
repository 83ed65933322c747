"""Posting digests when they are due: one loop in each process that sends (beside the
delivery worker), the runs claimed through the database so that one process posts each.

A digest is one post: the chart of approval per day, uploaded with Slack's external upload
flow (files.getUploadURLExternal, the upload, files.completeUploadExternal: slack_sdk's
files_upload_v2), with the digest's text as its comment; one share, so a retry never
leaves half a digest. Without a chart (nothing to draw, or the plotting library missing)
the text is posted alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.worker import Backoff
from bot.digest.report import chart_series, days_of, render, title
from bot.digest.schedule import SETTING, due_runs
from bot.domain import DeliveryState
from bot.escalation.sender import slack_failure
from bot.providers.base import ProviderError, RetryableError
from bot.slack.api import permalink
from bot.support.logs import Redactor
from storage import StorageError, Store
from storage.models import DigestRun

log = logging.getLogger(__name__)

# How often a process looks whether a digest is due; /feedback digest now wakes it at once.
LOOK_EVERY = 30.0
# A claim's hold: longer than a post takes (SEND_TIMEOUT), so no other process takes it over
# while it is being posted.
LEASE = 300.0
SEND_TIMEOUT = 120.0


class Digests:
    def __init__(
        self,
        store: Store,
        slack: AsyncWebClient,
        hour: int,
        owner: str,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        redact: Callable[[str], str] | Redactor = lambda s: s,
        every: float = LOOK_EVERY,
    ) -> None:
        self._store = store
        self._slack = slack
        self._hour = hour
        self._owner = owner
        self._clock = clock
        self._backoff = backoff or Backoff(base=30.0, cap=3600.0)
        self._redact = redact
        self._every = every
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._names: dict[str, str] = {}

    def wake(self) -> None:
        """A run was queued (/feedback digest now): look now, not at the next look."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="digests")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.tick():
                    pass
            except StorageError as e:
                log.warning("digests: cannot use the database (next look soon): %s", e)
            except Exception:  # a bug of ours must not end the loop
                log.exception("digests: unexpected failure")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every)

    async def tick(self, now: float | None = None) -> bool:
        """Claim one due run and post it; False when nothing is due. `now`: the time to
        decide what is due at (tests give a clock of their own), else the clock's."""
        now = self._clock() if now is None else now
        due = due_runs(await self._store.settings_named(SETTING), now, self._hour)
        run = await self._store.claim_digest(due, now, self._owner, LEASE)
        if run is None:
            return False
        await self._post(run)
        return True

    async def _post(self, run: DigestRun) -> None:
        where = f"{run.period} digest of {run.scope} to {run.channel}"
        try:
            ref = await asyncio.wait_for(self.send(run), SEND_TIMEOUT)
        except TimeoutError:
            await self._failed(run, where, RetryableError("Slack did not answer in time"))
        except ProviderError as e:
            await self._failed(run, where, e)
        except (SlackApiError, aiohttp.ClientError) as e:
            await self._failed(run, where, slack_failure("files.upload", e, run.channel))
        except Exception as e:  # a bug of ours: retried with backoff, never left claimed
            log.exception("digest %d (%s) failed unexpectedly", run.id, where)
            await self._failed(run, where, RetryableError(f"internal error: {type(e).__name__}"))
        else:
            await self._store.finish_digest(run.id, self._owner, DeliveryState.DELIVERED, ref=ref)
            log.info("digest %d (%s): posted (attempt %d)", run.id, where, run.attempts)

    async def _failed(self, run: DigestRun, where: str, e: ProviderError) -> None:
        error = self._redact(str(e))
        if not e.retryable:
            await self._store.finish_digest(run.id, self._owner, DeliveryState.DEAD, error)
            log.error("digest %d (%s): dead (attempt %d): %s", run.id, where, run.attempts, error)
            return
        retry_after = e.retry_after if isinstance(e, RetryableError) else None
        delay = self._backoff.delay(run.attempts, retry_after, self._rng)
        await self._store.finish_digest(
            run.id, self._owner, DeliveryState.PENDING, error, retry_at=self._clock() + delay
        )
        log.warning(
            "digest %d (%s): retried (attempt %d, next try in %.0f s): %s",
            run.id,
            where,
            run.attempts,
            delay,
            error,
        )

    async def send(self, run: DigestRun) -> str:
        """Post the run's digest; returns Slack's id of the post (the file, or the message)."""
        length = run.period_end - run.period_start
        figures = await self._store.period_figures(
            None if run.scope == "*" else run.scope,
            run.period_start,
            run.period_end,
            run.period_start - length,
        )
        channels = {g.channel for g in figures.groups} | ({run.scope} - {"*"})
        names = {c: await self._name(c) for c in sorted(channels)}
        permalinks = {}
        for d in figures.explained[:3]:
            link = await permalink(self._slack, d.channel, d.ts)
            if link:
                permalinks[(d.channel, d.ts)] = link
        text = render(run, figures, names, permalinks)
        series = chart_series(run, figures, names)
        png = await self._chart(run, series, names) if series else None
        if png is None:
            posted = await self._slack.chat_postMessage(channel=run.channel, text=text)
            return f"{posted['channel']}:{posted['ts']}"
        upload = await self._slack.files_upload_v2(
            channel=run.channel,
            content=png,
            filename="approval-per-day.png",
            title="Approval per day",
            initial_comment=text,
        )
        files = upload.get("files") or [upload.get("file") or {}]
        return str(files[0].get("id") or "")

    async def _chart(
        self, run: DigestRun, series: dict[str, list[float | None]], names: dict[str, str]
    ) -> bytes | None:
        try:
            from bot.digest.chart import approval_chart
        except ImportError:  # pragma: no cover - matplotlib is a dependency
            return None
        scope = "the workspace" if run.scope == "*" else f"#{names.get(run.scope, run.scope)}"
        # Drawing takes tens of milliseconds of CPU: off the event loop, where acks wait.
        return await asyncio.to_thread(approval_chart, days_of(run), series, title(run, scope))

    async def _name(self, channel: str) -> str:
        """The channel's name for the chart's legend (its id without channels:read)."""
        if channel not in self._names:
            try:
                info = await self._slack.conversations_info(channel=channel)
                self._names[channel] = str((info.get("channel") or {}).get("name") or channel)
            except (SlackApiError, aiohttp.ClientError, TimeoutError):
                return channel
        return self._names[channel]
