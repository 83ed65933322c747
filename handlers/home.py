"""The App Home tab: status and insights for admins (the last 7 and 30 days, the newest
👎), a short guide and their own votes' count for everyone else."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.digest.insights import admin_insights, own_votes
from bot.services import Services
from bot.slack.views import home_view
from handlers.payloads import HomeOpened, parse_payload

log = logging.getLogger(__name__)

GUIDE = (
    "*feedback-bot* sends what you think of AI answers to the platform that wrote them, so"
    " they get better.\n"
    "• React to an AI answer with 👍, 👎 or 🚩, or use the buttons under it.\n"
    "• Remove the reaction, or click the same button again, to take it back.\n"
    "• After 👎 or 🚩 you can say what went wrong; only the AI team sees it.\n"
    "Type `/feedback help` for more."
)


def register(app: AsyncApp, services: Services) -> None:
    async def on_home_opened(body: dict[str, Any]) -> BoltResponse | None:
        opened = parse_payload(HomeOpened, body, "app_home_opened event")
        if isinstance(opened, BoltResponse):
            return opened
        if opened.event.tab == "home":
            services.background.spawn(publish(services, opened.event.user), "App Home")
        return None

    app.event("app_home_opened")(on_home_opened)


async def publish(services: Services, user: str) -> None:
    sections = [GUIDE]
    if await services.permissions.is_admin(user):
        sections += [
            await services.feedback_command.status(None),
            await admin_insights(services.store, services.slack),
            await services.feedback_command.deliveries(),
            "Change settings with `/feedback` in a channel;"
            " `/feedback setup` stores provider keys.",
        ]
    else:
        sections.append(own_votes(await services.store.votes_by(user)))
    try:
        await services.slack.views_publish(user_id=user, view=home_view(sections))
    except SlackApiError as e:
        log.warning("could not publish the App Home for %s: %s", user, e.response.get("error"))
