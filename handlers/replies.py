"""Replies that follow an ack: ephemeral messages and modals, sent in the background so the
ack never waits on Slack."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.services import Services

log = logging.getLogger(__name__)


def send_ephemeral(
    services: Services,
    *,
    channel: str,
    user: str,
    text: str,
    thread_ts: str | None = None,
    blocks: Sequence[Block] | None = None,
) -> None:
    """An ephemeral message to one user: only they see it."""

    async def send() -> None:
        try:
            await services.slack.chat_postEphemeral(
                channel=channel, user=user, text=text, blocks=blocks, thread_ts=thread_ts
            )
        except SlackApiError as e:
            log.warning(
                "could not send an ephemeral message in %s: %s", channel, e.response.get("error")
            )

    services.background.spawn(send(), f"ephemeral to {user} in {channel}")


def open_modal(
    services: Services, *, trigger_id: str, view: View, fallback: tuple[str, str, str | None, str]
) -> None:
    """Open a modal; if Slack refuses (an expired trigger, say), send `fallback`
    (channel, user, thread_ts, text) as an ephemeral message instead."""

    async def send() -> None:
        try:
            await services.slack.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as e:
            log.warning("could not open a modal: %s", e.response.get("error"))
            channel, user, thread_ts, text = fallback
            send_ephemeral(services, channel=channel, user=user, thread_ts=thread_ts, text=text)

    services.background.spawn(send(), "views.open")
