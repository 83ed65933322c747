"""AquilaX: GET {base}/api/v2/ai/feedback/{request_id}/{true|false}?org=&group= with X-AX-KEY."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from bot.domain import Status, Verdict
from bot.providers.base import Outcome, Sent, Skipped, missing_key, request
from storage.models import Answer

NO_UNDO = "AquilaX has no way to withdraw feedback: the removal is recorded here, not sent"


class AquilaXProvider:
    name = "aquilax"

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    async def send(self, answer: Answer, content_id: str, verdict: Verdict) -> Outcome:
        if verdict.status is Status.REMOVED:
            return Skipped(NO_UNDO)
        key = self._api_key()
        if not key:
            raise missing_key("AquilaX", "AQUILAX_API_KEY")
        helpful = "true" if verdict.status is Status.THUMBS_UP else "false"
        await request(
            self._session,
            "AquilaX",
            "GET",
            f"{self._base}/api/v2/ai/feedback/{answer.request_id}/{helpful}",
            params={"org": answer.org or "", "group": answer.group or ""},
            headers={"X-AX-KEY": key},
        )
        return Sent()
