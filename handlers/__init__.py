"""Slack listeners, one module per kind, wired here in one place."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.services import Services
from handlers import (
    actions,
    ask,
    commands,
    escalations,
    home,
    metadata,
    reactions,
    submissions,
)
from handlers.errors import on_error


def register(app: AsyncApp, services: Services) -> None:
    reactions.register(app, services)
    actions.register(app, services)
    escalations.register(app, services)
    submissions.register(app, services)
    commands.register(app, services)
    home.register(app, services)
    metadata.register(app, services)
    ask.register(app, services)
    app.error(on_error)
