"""AquilaX: GET {base}/api/v2/ai/feedback/{request_id}/{true|false}?org=&group= with X-AX-KEY.
An answer is a request of an org and group; AquilaX cannot withdraw feedback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal
from uuid import UUID

import aiohttp
from pydantic import StringConstraints

from bot.domain import Answer, Status, Verdict
from bot.providers.base import Outcome, Sent, Skipped, missing_key, request
from bot.providers.spec import CliOption, ProviderSpec
from bot.registration import AnswerIn

LABEL = "AquilaX"
KEY_SETTING = "aquilax_api_key"
NO_UNDO = "AquilaX has no way to withdraw feedback: the removal is recorded here, not sent"

AquilaXId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
]


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
            raise missing_key(LABEL, KEY_SETTING.upper())
        helpful = "true" if verdict.status is Status.THUMBS_UP else "false"
        await request(
            self._session,
            LABEL,
            "GET",
            f"{self._base}/api/v2/ai/feedback/{answer.request_id}/{helpful}",
            params={"org": answer.org or "", "group": answer.group or ""},
            headers={"X-AX-KEY": key},
        )
        return Sent()


class AquilaXAnswerIn(AnswerIn):
    provider: Literal["aquilax"]
    request_id: UUID
    org: AquilaXId
    group: AquilaXId

    def to_answer(self) -> Answer:
        return Answer(
            **self._placement(),
            provider="aquilax",
            request_id=str(self.request_id),
            org=self.org,
            group=self.group,
        )


def _ids(answer: Answer) -> dict[str, object]:
    return {"request_id": answer.request_id, "org": answer.org, "group": answer.group}


SPEC = ProviderSpec(
    name=AquilaXProvider.name,
    label=LABEL,
    key_setting=KEY_SETTING,
    key_label="AquilaX personal access token",
    base_url_setting="aquilax_base_url",
    answer_in=AquilaXAnswerIn,
    answer_ids=_ids,
    client=AquilaXProvider,
    removed=NO_UNDO,
    channel_defaults={"org": "aquilax_org", "group": "aquilax_group"},
    cli_options=(CliOption("request_id"), CliOption("org"), CliOption("group")),
)
