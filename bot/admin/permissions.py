"""Who may change what: workspace admins and owners (from users.info), and the users listed
in FEEDBACK_ADMINS. Everyone may read."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0


class Permissions:
    def __init__(self, slack: AsyncWebClient, listed: tuple[str, ...]) -> None:
        self._slack = slack
        self._listed = frozenset(listed)
        self._cache: dict[str, tuple[float, bool]] = {}

    async def is_admin(self, user: str) -> bool:
        """Network I/O (users.info, cached for five minutes): never call it before an ack."""
        if user in self._listed:
            return True
        cached = self._cache.get(user)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            info = (await self._slack.users_info(user=user))["user"]
        except SlackApiError as e:
            # Unknown or unreadable: not an admin, and not cached, so a fix takes effect.
            log.warning("users.info for %s failed: %s", user, e.response.get("error"))
            return False
        admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
        self._cache[user] = (time.monotonic(), admin)
        return admin
