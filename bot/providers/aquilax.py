"""AquilaX: GET {base}/api/v2/ai/feedback/{request_id}/{true|false}?org=&group= with X-AX-KEY.
An answer is a request of an org and group; AquilaX cannot withdraw feedback.

What a refusal means (the statuses its API lists, and the rule for the rest,
`base.retried_by_default`):

| status | the delivery | why |
|---|---|---|
| 400 | dead | invalid parameters (an org or group it does not know, say) |
| 401 | dead | the token is wrong or revoked: fix it, then `deliveries retry` |
| 403 | dead | the token may not give feedback in this org or group |
| 404 | dead | no such request id |
| 408 | retried | the request timed out |
| 429 | retried | rate limited; its Retry-After is honoured |
| 500, 502, 503, 504 (any 5xx) | retried | AquilaX's trouble, or its downstream service's |
| other 4xx (409, 422 …) | dead | a refusal its API does not describe as passing |

Connection errors and timeouts are retried.

The API describes no body for a 200: any is accepted, read up to `BODY_LIMIT` bytes; a longer
one is logged at WARNING (it is no acknowledgement of feedback), and still counts as
delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal
from uuid import UUID

import aiohttp
from pydantic import StringConstraints

from bot.domain import Answer, Status, Target, Verdict
from bot.providers.base import Outcome, Sent, Skipped, missing_key, request, unexpected_answer
from bot.providers.registration import AnswerIn, TargetIn
from bot.providers.spec import CliOption, ProviderSpec

LABEL = "AquilaX"
KEY_SETTING = "aquilax_api_key"
NO_UNDO = "AquilaX has no way to withdraw feedback: the removal is recorded here, not sent"

AquilaXId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
]


class AquilaXProvider:
    name = "aquilax"
    requests_per_send = 1

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: Callable[[], str | None]
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        if verdict.status is Status.REMOVED:
            return Skipped(NO_UNDO)
        key = self._api_key()
        if not key:
            raise missing_key(LABEL, KEY_SETTING.upper())
        helpful = "true" if verdict.status is Status.THUMBS_UP else "false"
        response = await request(
            self._session,
            LABEL,
            "GET",
            f"{self._base}/api/v2/ai/feedback/{target.request_id}/{helpful}",
            params={"org": target.org or "", "group": target.group or ""},
            headers={"X-AX-KEY": key},
            key=key,
        )
        if response.truncated:
            unexpected_answer(LABEL, response, "too long")
        return Sent()


class AquilaXTargetIn(TargetIn):
    provider: Literal["aquilax"]
    request_id: UUID
    org: AquilaXId
    group: AquilaXId

    def to_target(self, position: int) -> Target:
        return Target(
            provider="aquilax",
            request_id=str(self.request_id),
            org=self.org,
            group=self.group,
            position=position,
        )


class AquilaXAnswerIn(AquilaXTargetIn, AnswerIn):
    """The single form: where the answer is, and its one AquilaX target."""


def _ids(answer: Answer, target: Target) -> dict[str, object]:
    return {"request_id": target.request_id, "org": target.org, "group": target.group}


SPEC = ProviderSpec(
    name=AquilaXProvider.name,
    label=LABEL,
    key_setting=KEY_SETTING,
    key_label="AquilaX personal access token",
    base_url_setting="aquilax_base_url",
    answer_in=AquilaXAnswerIn,
    target_in=AquilaXTargetIn,
    answer_ids=_ids,
    client=AquilaXProvider,
    removed=NO_UNDO,
    channel_defaults={"org": "aquilax_org", "group": "aquilax_group"},
    cli_options=(CliOption("request_id"), CliOption("org"), CliOption("group")),
)
