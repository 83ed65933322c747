"""What sends: the delivery worker with the providers' clients and the escalations' sender,
and the digests' loop. Built the same way for `feedback-bot run` (bot/app.py, the worker
inline unless FEEDBACK_WORKER=separate) and for `feedback-bot worker` (`DeliveryProcess`,
a process of its own)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.settings import Settings
from bot.delivery.keys import Keys
from bot.delivery.worker import Backoff, DeliveryWorker
from bot.digest.service import Digests
from bot.escalation.sender import SlackEscalations
from bot.providers import PROVIDERS, Provider
from bot.slack.api import slack_session, web_client, without_rate_limit_retries
from bot.support.logs import Redactor
from bot.support.metrics import Metrics
from storage import StorageError, Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Senders:
    http: aiohttp.ClientSession  # the providers' session
    keys: Keys
    worker: DeliveryWorker
    digests: Digests

    def start(self) -> None:
        self.worker.start()
        self.digests.start()

    async def stop(self, grace: float) -> None:
        await self.digests.stop()
        await self.worker.stop(grace)
        await self.http.close()


async def build_senders(
    store: Store,
    settings: Settings,
    redactor: Redactor,
    slack: AsyncWebClient,
    *,
    timeout: float,
    concurrency: int,
    backoff: Backoff | None,
    watch_other_writers: bool = False,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
) -> Senders:
    """The provider clients, the escalations' sender and the worker that drives them, and
    the digests, for either process."""
    # The provider session carries the timeouts: a hung provider fails the send (and it is
    # retried), never the worker.
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(5.0, timeout)),
        connector=aiohttp.TCPConnector(limit=concurrency * 2),
    )
    try:
        keys = Keys(store, settings, redactor)
        await keys.load()
        providers: dict[str, Provider] = {
            name: spec.build(http, settings, partial(keys.get, name))
            for name, spec in PROVIDERS.items()
        }
        # A 429 from Slack is the worker's to wait out (its backoff, Retry-After honoured),
        # not the client's: a send must fit in one timeout.
        unretried = without_rate_limit_retries(slack)
        providers["slack"] = SlackEscalations(store, unretried, timeout)
        worker = DeliveryWorker(
            store,
            providers,
            request_timeout=timeout,
            concurrency=concurrency,
            backoff=backoff,
            redact=redactor,
            # SQLite tells other processes' commits by data_version; PostgreSQL by NOTIFY.
            watch_other_writers=watch_other_writers and store.kind == "sqlite",
            metrics=metrics,
        )
        digests = Digests(
            store,
            unretried,
            settings.feedback_digest_hour,
            worker.owner,
            clock=clock,
            redact=redactor,
        )
        # Whichever replica queues a delivery, every worker wakes (PostgreSQL).
        await store.subscribe_deliveries(worker.notify)
    except BaseException:
        await http.close()
        raise
    return Senders(http, keys, worker, digests)


class DeliveryProcess:
    """`feedback-bot worker`: the delivery worker and the digests alone, in a process of its
    own, beside `feedback-bot run` with FEEDBACK_WORKER=separate (or beside any number of
    bots: claims and leases keep one send per slot in flight, whoever sends). It needs the
    database, the providers' keys, and the bot token for escalations and digests."""

    # Keys entered in Slack are written by the bot's process; this one reads them again.
    KEYS_RELOAD_EVERY = 10.0

    def __init__(
        self,
        settings: Settings,
        *,
        redactor: Redactor | None = None,
        backoff: Backoff | None = None,
        concurrency: int = 16,
    ) -> None:
        self.settings = settings
        self.redactor = redactor or Redactor(settings.secrets())
        self._backoff = backoff
        self._concurrency = concurrency
        self._store: Store | None = None
        self._slack_session: aiohttp.ClientSession | None = None
        self._senders: Senders | None = None
        self._reload: asyncio.Task[None] | None = None
        self.worker: DeliveryWorker | None = None

    async def start(self) -> None:
        s = self.settings
        self._store = await Store.open(s.feedback_db)
        self._slack_session = slack_session()
        try:
            self._senders = await build_senders(
                self._store,
                s,
                self.redactor,
                web_client(s, self._slack_session),
                timeout=s.feedback_provider_timeout,
                concurrency=self._concurrency,
                backoff=self._backoff,
                watch_other_writers=True,
            )
        except BaseException:
            await self._slack_session.close()
            await self._store.close()
            raise
        self.worker = self._senders.worker
        self._senders.start()
        self._reload = asyncio.create_task(
            self._reload_keys(self._senders.keys), name="reload-keys"
        )
        log.info("feedback-bot worker is up on %s, sending as %s", s.feedback_db, self.worker.owner)

    async def _reload_keys(self, keys: Keys) -> None:
        while True:
            await asyncio.sleep(self.KEYS_RELOAD_EVERY)
            try:
                await keys.load()
            except StorageError as e:
                log.warning("could not reload the provider keys: %s", e)

    async def stop(self, grace: float = 5.0) -> None:
        if self._reload is not None:
            self._reload.cancel()
        if self._senders is not None:
            await self._senders.stop(grace)
        if self._slack_session is not None:
            await self._slack_session.close()
        if self._store is not None:
            await self._store.close()
