"""Contextual AI: POST {base}/agents/{agent_id}/feedback with a Bearer key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bot.domain import Verdict
from bot.providers.base import Outcome, Sent, missing_key, request
from storage.models import Answer


class ContextualProvider:
    name = "contextual"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._client = client
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
            self._client,
            "Contextual",
            "POST",
            f"{self._base}/agents/{answer.agent_id}/feedback",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        try:
            ref = response.json().get("feedback_id")
        except ValueError:
            ref = None
        return Sent(ref if isinstance(ref, str) else None)
