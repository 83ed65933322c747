"""What Slack hears when a listener fails: the one place for both of Bolt's doors and the
fast lane (handlers/reactions.py)."""

from __future__ import annotations

import logging

from slack_bolt.response import BoltResponse

from storage import StorageError

log = logging.getLogger("handlers")


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
