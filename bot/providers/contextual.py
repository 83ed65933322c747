"""Contextual AI: POST {base}/agents/{agent_id}/feedback with a Bearer key."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.domain import Verdict
from bot.providers.base import Outcome, Sent, missing_key, request
from storage.models import Answer


class ContextualProvider:
    name = "contextual"

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    async def send(self, answer: Answer, content_id: str, verdict: Verdict) -> Outcome:
        key = self._api_key()
        if not key:
            raise missing_key("Contextual", "CONTEXTUAL_API_KEY")
        body: dict[str, Any] = {"message_id": answer.message_id, "feedback": verdict.status.value}
        # The spec forbids extra properties and null strings: send only what is set.
        if verdict.explanation:
            body["explanation"] = verdict.explanation
        if verdict.category:
            body["query_category"] = verdict.category
        if content_id:
            body["content_id"] = content_id
        response = await request(
            self._session,
            "Contextual",
            "POST",
            f"{self._base}/agents/{answer.agent_id}/feedback",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        try:
            ref = json.loads(response.body).get("feedback_id")
        except (ValueError, AttributeError):
            ref = None  # accepted all the same: a 2xx is what counts
        return Sent(ref if isinstance(ref, str) else None)
