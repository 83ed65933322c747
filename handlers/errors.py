"""What Slack hears when a listener fails: the one place for both of Bolt's doors and the
fast lane (handlers/reactions.py)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.response import BoltResponse

from storage import StorageError

log = logging.getLogger("handlers")


async def on_error(error: Exception) -> BoltResponse | None:
    """A listener failed. When the database cannot take the write, Slack gets a 503 (over
    HTTP) or no ack (over the socket), so that it sends the event again; the vote's dedupe
    row went with the rolled-back transaction, so the retry is processed. Anything else is
    a bug of ours: its traceback is logged and Slack gets Bolt's 500. A request that no
    listener takes (Bolt's raise_error_for_unhandled_request) keeps Bolt's 404."""
    if isinstance(error, BoltUnhandledRequestError):
        log.info(
            "nothing here handles %s (answered 404): is another app's Request URL pointing"
            " at this feedback-bot?",
            unhandled(error.body),
        )
        return None
    if isinstance(error, StorageError):
        log.error("could not store a Slack request (Slack will send it again): %s", error)
        return BoltResponse(status=503, body=f"feedback-bot cannot store this right now: {error}")
    log.error("a listener failed", exc_info=error)
    return None


def unhandled(body: dict[str, Any]) -> str:
    """What a request no listener took was, in a few words, on one line. The body passed
    the envelope check (bot/slack/inbound.py), so the fields read here have Slack's types."""
    kind = body.get("type")
    if "command" in body:
        return f"the slash command {_short(body['command'])}"
    if kind == "event_callback":
        return f"the event {_short(body['event']['type'])}"
    if kind == "block_actions":
        return f"the action {_short(body['actions'][0]['action_id'])}"
    if "view" in body:
        return f"a {_short(kind)} of the view {_short(body['view'].get('callback_id'))}"
    if "callback_id" in body:
        return f"a {_short(kind)} with callback_id {_short(body['callback_id'])}"
    return f"a request of type {_short(kind)}"


def _short(value: object) -> str:
    # repr keeps it on one line, whatever it holds; the cut keeps the line short.
    text = str(value)
    return repr(text if len(text) <= 60 else text[:60] + "…")
