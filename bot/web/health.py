"""What a supervisor or a scraper reads: /healthz (the checks, the database, the outbox) and,
with FEEDBACK_METRICS, /metrics (Prometheus' text format)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.services import Services
from bot.support.metrics import CONTENT_TYPE, Metrics
from bot.web.request import error
from storage import StorageError

log = logging.getLogger(__name__)


def healthz(services: Services) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        problems = await services.health.problems()
        body: dict[str, object] = {
            "status": "error" if problems else "ok",
            "db": "ok",
            "mode": "socket" if services.settings.socket_mode else "http",
        }
        if problems:
            body["problems"] = problems
            log.error("health check failed: %s", "; ".join(problems))
        try:
            counts = await services.store.delivery_counts()
        except StorageError as e:
            body["db"] = f"error: {e}"
            return web.json_response(body, status=503)
        oldest = counts.oldest_pending_at
        body["deliveries"] = {
            "pending": counts.pending,
            "sending": counts.sending,
            "dead": counts.dead,
            "oldest_pending_seconds": round(time.time() - oldest, 1) if oldest else None,
            "last_error": counts.last_error,
        }
        return web.json_response(body, status=503 if problems else 200)

    return handle


def serve_metrics(metrics: Metrics) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = await metrics.render()
        except StorageError as e:
            return error(503, f"feedback-bot cannot read its database right now: {e}")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle
