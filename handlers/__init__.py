"""Slack listeners, one module per kind, wired here in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, home, reactions, views

if TYPE_CHECKING:
    from bot.app import Services


def register(app: AsyncApp, services: Services) -> None:
    reactions.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    commands.register(app, services)
    home.register(app, services)
