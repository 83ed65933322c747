"""Langfuse: a score on a trace (or one of its observations), at {base}/api/public/scores,
with HTTP Basic auth: the project's public key as the user, its secret key as the password.
An answer is a trace (`trace_id`), optionally an observation in it (`observation_id`).

A slot holds one score, whose id the bot derives from the slot and the target
(`base.feedback_uuid`); Langfuse upserts a score on its id, so a create sent again, after a
retry, a restart or on another replica, or with a changed verdict, replaces that one score.

- thumbs_up, thumbs_down, flagged: `POST /api/public/scores` with that `id`, `traceId` (and
  `observationId`), `name` LANGFUSE_SCORE_NAME, `dataType` `CATEGORICAL`, `value` the
  verdict's name, `comment` the explanation.
- removed: `DELETE /api/public/scores/{id}`; a 404 means there is nothing left to delete,
  and counts as delivered.

`CATEGORICAL`, because a vote has three values that are not points on a scale: `BOOLEAN`
cannot tell a 👎 from a 🚩, and `NUMERIC` would put an order (and an average) on them that
nobody chose. Langfuse charts categorical scores as counts per value, which is what a
thumbs-up rate is. The form's category and the Slack message go in the score's `metadata`.

What a refusal means (`base.retried_by_default`, as Langfuse's SDKs retry):

| status | the delivery | why |
|---|---|---|
| 400 | dead | the body is refused (a score name bound to another data type, say) |
| 401, 403 | dead | the keys are wrong, or for another project |
| 404 to a create | dead | no such project or path: check LANGFUSE_BASE_URL |
| 405 | dead | the path answers no POST: check LANGFUSE_BASE_URL |
| 408, 429, 5xx | retried | Langfuse's trouble or rate limit; Retry-After is honoured |
| other 4xx | dead | a refusal, not a passing state |

Langfuse ingests scores asynchronously: a removal right behind the create may find no score
yet (404, delivered) while the create is still queued there. The slot's next verdict sends
again; a removal lost that way is the one gap, and it is Langfuse's ordering, not ours.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import aiohttp
import orjson
from pydantic import Field, StringConstraints

from bot.config.settings import Settings
from bot.domain import WITHDRAWN, Answer, Status, Target, Verdict
from bot.providers.base import (
    Outcome,
    PermanentError,
    Sent,
    delete,
    feedback_uuid,
    missing_key,
    request,
    slack_metadata,
)
from bot.providers.registration import AnswerIn, TargetIn
from bot.providers.spec import CliOption, ProviderSpec

LABEL = "Langfuse"
KEY_SETTING = "langfuse_secret_key"
KEY_VARIABLES = "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"
DEFAULT_SCORE_NAME = "user-feedback"

# Langfuse's ids are strings of its clients' choosing; these bounds keep them sane.
LangfuseId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
]


def split_keys(pair: str) -> tuple[str, str] | None:
    """(public key, secret key) from `pk-lf-…:sk-lf-…`, the form the bot keeps them in."""
    public, _, secret = pair.partition(":")
    return (public, secret) if public and secret else None


def check_pair(pair: str) -> str | None:
    """What is wrong with keys entered in the setup form, or None."""
    if split_keys(pair) is None:
        return "Enter both keys as public:secret, e.g. pk-lf-…:sk-lf-…"
    return None


class LangfuseProvider:
    name = "langfuse"
    requests_per_send = 1

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Callable[[], str | None],
        score_name: str = DEFAULT_SCORE_NAME,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._score_name = score_name

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        pair = self._api_key()
        if not pair:
            raise missing_key(LABEL, KEY_VARIABLES)
        keys = split_keys(pair)
        if keys is None:
            raise PermanentError(
                "the Langfuse keys are not public:secret: enter them again with"
                f" `/feedback setup` (or set {KEY_VARIABLES}), then retry"
            )
        public, secret = keys
        score_id = feedback_uuid(answer, target, content_id)
        url = f"{self._base}/api/public/scores"
        # Built by hand: aiohttp deprecates BasicAuth objects and its helper is new.
        basic = base64.b64encode(f"{public}:{secret}".encode()).decode()
        auth = {"Authorization": f"Basic {basic}"}
        if verdict.status is Status.REMOVED:
            await delete(self._session, LABEL, f"{url}/{score_id}", auth, secret)
            return Sent(score_id)
        await request(
            self._session,
            LABEL,
            "POST",
            url,
            data=orjson.dumps(self._score(answer, target, content_id, score_id, verdict)),
            headers={**auth, "Content-Type": "application/json"},
            key=secret,
        )
        return Sent(score_id)

    def _score(
        self, answer: Answer, target: Target, content_id: str, score_id: str, verdict: Verdict
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": score_id,
            "traceId": target.trace_id,
            "name": self._score_name,
            "dataType": "CATEGORICAL",
            "value": verdict.status.value,
            # null, not left out: an upsert must not keep an earlier vote's explanation.
            "comment": verdict.explanation,
            "metadata": slack_metadata(answer, content_id, verdict),
        }
        if target.observation_id:
            body["observationId"] = target.observation_id
        return body


class LangfuseTargetIn(TargetIn):
    provider: Literal["langfuse"]
    trace_id: LangfuseId = Field(description="the Langfuse trace of the answer")
    observation_id: LangfuseId | None = Field(
        default=None, description="the observation in the trace (the generation), if any"
    )

    def to_target(self, position: int) -> Target:
        return Target(
            provider="langfuse",
            trace_id=self.trace_id,
            observation_id=self.observation_id,
            position=position,
        )


class LangfuseAnswerIn(LangfuseTargetIn, AnswerIn):
    """The single form: where the answer is, and its one Langfuse trace."""


def _ids(answer: Answer, target: Target) -> dict[str, object]:
    return {"trace_id": target.trace_id, "observation_id": target.observation_id}


def _environment(settings: Settings) -> str | None:
    public, secret = settings.langfuse_public_key, settings.langfuse_secret_key
    if public is None or secret is None:
        return None
    return f"{public.get_secret_value()}:{secret.get_secret_value()}"


def _options(settings: Settings) -> Mapping[str, str]:
    return {"score_name": settings.langfuse_score_name}


SPEC = ProviderSpec(
    name=LangfuseProvider.name,
    label=LABEL,
    key_setting=KEY_SETTING,
    key_label="Langfuse keys (public:secret)",
    base_url_setting="langfuse_base_url",
    answer_in=LangfuseAnswerIn,
    target_in=LangfuseTargetIn,
    answer_ids=_ids,
    client=LangfuseProvider,
    removed=None,  # sent as a DELETE of the slot's score
    cli_options=(CliOption("trace_id"), CliOption("observation_id")),
    key_variables=KEY_VARIABLES,
    environment=_environment,
    probe_verdict=WITHDRAWN,  # a score on an unknown trace would be kept: delete one instead
    options=_options,
    check_key=check_pair,
    secret_parts=lambda pair: [part for part in split_keys(pair) or ()],
)
