"""LangSmith: feedback on a run, at {base}/api/v1/feedback, with an X-API-Key. An answer is a
run (`run_id`), optionally with its trace (`trace_id`).

A slot holds one LangSmith feedback, whose id the bot derives from the slot and the target
(`base.feedback_uuid`): the same on every retry, restart and replica.

- thumbs_up, thumbs_down, flagged: `PATCH /api/v1/feedback/{id}` with `score`, `value`,
  `comment`; when LangSmith answers 404 (no such feedback yet), `POST /api/v1/feedback`
  creating it with that id.
- removed: `DELETE /api/v1/feedback/{id}`; a 404 means there is nothing left to delete, and
  counts as delivered.

`score` is 1 for thumbs_up and 0 for thumbs_down and flagged (LangSmith's charts average
scores); `value` is the verdict's name, which tells a 👎 from a 🚩; `comment` is the
explanation; `key` is LANGSMITH_FEEDBACK_KEY; `feedback_source` is `{"type": "api"}` with
metadata naming feedback-bot, the Slack message and the form's category.

Update first, create on 404: the API documents PATCH as the way to change a feedback and
says nothing of a create whose id exists, while a 404 for an unknown id is what it answers.
A first vote costs two requests, a changed one one.

What a refusal means (`base.retried_by_default`, as LangSmith's SDK retries):

| status | the delivery | why |
|---|---|---|
| 401, 403 | dead | the key is wrong, revoked, or not for this workspace |
| 404 to a create | dead | no such run (or path: check LANGSMITH_BASE_URL) |
| 422 | dead | validation error: its `detail` says which field |
| 408, 429, 5xx | retried | LangSmith's trouble or rate limit; Retry-After is honoured |
| other 4xx | dead | a refusal, not a passing state |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal
from uuid import UUID

import aiohttp
import orjson
from pydantic import Field

from bot.config.settings import Settings
from bot.domain import WITHDRAWN, Answer, Status, Target, Verdict
from bot.providers.base import (
    Outcome,
    Sent,
    delete,
    feedback_uuid,
    missing_key,
    request,
    slack_metadata,
)
from bot.providers.registration import AnswerIn, TargetIn
from bot.providers.spec import CliOption, ProviderSpec

LABEL = "LangSmith"
KEY_SETTING = "langsmith_api_key"
DEFAULT_FEEDBACK_KEY = "user_feedback"
NOT_FOUND = 404


class LangSmithProvider:
    name = "langsmith"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Callable[[], str | None],
        feedback_key: str = DEFAULT_FEEDBACK_KEY,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._feedback_key = feedback_key

    @property
    def requests_per_send(self) -> int:
        # PATCH, and POST when it answers 404; without a key, nothing is sent at all, and
        # the leases of every provider's sends stay one timeout long.
        return 2 if self._api_key() else 1

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        key = self._api_key()
        if not key:
            raise missing_key(LABEL, KEY_SETTING.upper())
        feedback_id = feedback_uuid(answer, target, content_id)
        url = f"{self._base}/api/v1/feedback"
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        if verdict.status is Status.REMOVED:
            await delete(self._session, LABEL, f"{url}/{feedback_id}", {"X-API-Key": key}, key)
            return Sent(feedback_id)
        update = {
            "score": score(verdict),
            "value": verdict.status.value,
            "comment": verdict.explanation,  # null clears an earlier explanation
        }
        response = await request(
            self._session,
            LABEL,
            "PATCH",
            f"{url}/{feedback_id}",
            data=orjson.dumps(update),
            headers=headers,
            key=key,
            accepted=(NOT_FOUND,),
        )
        if response.status == NOT_FOUND:
            create = self._create_body(answer, target, content_id, feedback_id, update, verdict)
            await request(
                self._session,
                LABEL,
                "POST",
                url,
                data=orjson.dumps(create),
                headers=headers,
                key=key,
            )
        return Sent(feedback_id)

    def _create_body(
        self,
        answer: Answer,
        target: Target,
        content_id: str,
        feedback_id: str,
        update: Mapping[str, Any],
        verdict: Verdict,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": feedback_id,
            "key": self._feedback_key,
            "run_id": target.run_id,
            **update,
            "feedback_source": {
                "type": "api",
                "metadata": slack_metadata(answer, content_id, verdict),
            },
        }
        if target.trace_id:
            body["trace_id"] = target.trace_id
        return body


def score(verdict: Verdict) -> int:
    """1 for a 👍, 0 for a 👎 or a 🚩."""
    return 1 if verdict.status is Status.THUMBS_UP else 0


class LangSmithTargetIn(TargetIn):
    provider: Literal["langsmith"]
    run_id: UUID = Field(description="the LangSmith run that produced the answer")
    trace_id: UUID | None = Field(default=None, description="the run's trace, if known")

    def to_target(self, position: int) -> Target:
        return Target(
            provider="langsmith",
            run_id=str(self.run_id),
            trace_id=str(self.trace_id) if self.trace_id else None,
            position=position,
        )


class LangSmithAnswerIn(LangSmithTargetIn, AnswerIn):
    """The single form: where the answer is, and its one LangSmith run."""


def _ids(answer: Answer, target: Target) -> dict[str, object]:
    return {"run_id": target.run_id, "trace_id": target.trace_id}


def _options(settings: Settings) -> Mapping[str, str]:
    return {"feedback_key": settings.langsmith_feedback_key}


SPEC = ProviderSpec(
    name=LangSmithProvider.name,
    label=LABEL,
    key_setting=KEY_SETTING,
    key_label="LangSmith API key",
    base_url_setting="langsmith_base_url",
    answer_in=LangSmithAnswerIn,
    target_in=LangSmithTargetIn,
    answer_ids=_ids,
    client=LangSmithProvider,
    removed=None,  # sent as a DELETE of the slot's feedback
    cli_options=(CliOption("run_id"), CliOption("trace_id")),
    probe_verdict=WITHDRAWN,  # deleting a feedback that cannot exist changes nothing
    options=_options,
)
