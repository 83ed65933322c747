"""`/feedback`: parse, ack at once (usage mistakes and help in the ack itself), then carry
the command out in the background and answer through the response_url."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse

from bot.admin.grammar import UsageError, help_text, parse_command
from bot.admin.invocations import Invocation
from bot.admin.render import NOT_ALLOWED, SETUP_NEEDS_SECRET
from bot.providers import PROVIDERS
from bot.services import Services
from bot.slack.views import setup_view
from handlers.payloads import SlashCommand, parse_payload

log = logging.getLogger(__name__)

FAILED = "Sorry, that did not work: feedback-bot hit an error (it is in the bot's log)."


def register(app: AsyncApp, services: Services) -> None:
    async def on_command(
        ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]
    ) -> BoltResponse | None:
        return await handle_command(services, ack, respond, body)

    app.command("/feedback")(on_command)


async def handle_command(
    services: Services, ack: AsyncAck, respond: AsyncRespond, body: dict[str, Any]
) -> BoltResponse | None:
    command = parse_payload(SlashCommand, body, "slash command")
    if isinstance(command, BoltResponse):
        return command
    try:
        invocation = parse_command(command.text)
    except UsageError as e:
        await ack(text=str(e))
        return None
    if invocation.name == "help":
        await ack(text=help_text())
        return None
    await ack()  # the reply follows through the response_url: no network before the ack
    services.background.spawn(
        execute(services, invocation, command, respond), f"/feedback {invocation.name}"
    )
    return None


async def execute(
    services: Services, invocation: Invocation, command: SlashCommand, respond: AsyncRespond
) -> None:
    user, channel = command.user_id, command.channel_id
    try:
        if invocation.changes and not await services.permissions.is_admin(user):
            log.info("refused /feedback %s from %s: not an admin", invocation.name, user)
            text = NOT_ALLOWED
        elif invocation.name == "setup":
            if not services.keys.can_store:
                text = SETUP_NEEDS_SECRET
            else:
                statuses = {p: services.keys.status(p).describe() for p in PROVIDERS}
                await services.slack.views_open(
                    trigger_id=command.trigger_id, view=setup_view(channel, statuses)
                )
                return
        else:
            text = await services.feedback_command.run(invocation, user, channel)
            if invocation.changes:
                log.info("%s ran /feedback %s", user, invocation.name)
    except UsageError as e:
        text = str(e)
    except Exception:
        log.exception("/feedback %s failed", invocation.name)
        text = FAILED
    response = await respond(text=text, response_type="ephemeral")
    if response.status_code != 200:
        log.warning("the reply to a slash command was refused: HTTP %s", response.status_code)
