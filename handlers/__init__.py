"""Slack listeners, one module per kind, wired here in one place."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.services import Services
from handlers import actions, commands, home, reactions, views
from storage import StorageError

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    reactions.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    commands.register(app, services)
    home.register(app, services)
    app.error(on_error)


async def on_error(error: Exception) -> BoltResponse | None:
    """A listener failed. When the database cannot take the write, Slack gets a 503 (over
    HTTP) or no ack (over the socket), so that it sends the event again; the vote's dedupe
    row went with the rolled-back transaction, so the retry is processed. Anything else is
    a bug of ours: its traceback is logged and Slack gets Bolt's 500."""
    if isinstance(error, StorageError):
        log.error("could not store a Slack request (Slack will send it again): %s", error)
        return BoltResponse(status=503, body=f"feedback-bot cannot store this right now: {error}")
    log.error("a listener failed", exc_info=error)
    return None
