"""A registration request and its JSON: the two forms it takes (the single form of each
provider, and a list of targets), their validation and its errors in the callers' words,
and an answer shown the way it was registered. No I/O."""

from __future__ import annotations

import json
import operator
from functools import reduce
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from bot.domain import Answer, Target
from bot.providers import PROVIDERS
from bot.providers.registration import AnswerIn, TargetIn
from bot.support.validation import error_list

# The most targets one answer may have: more is a mistake, not a deployment.
MAX_TARGETS = 8

# One model per provider, told apart by `provider`: the single forms, and the targets of a
# list. The unions are made from the registry when the module loads, which a type checker
# cannot follow: typed Any here, and the adapters say what they yield.
_SINGLE: Any = Annotated[
    reduce(operator.or_, (spec.answer_in for spec in PROVIDERS.values())),
    Field(discriminator="provider"),
]
_TARGET: Any = Annotated[
    reduce(operator.or_, (spec.target_in for spec in PROVIDERS.values())),
    Field(discriminator="provider"),
]


class TargetsAnswerIn(AnswerIn):
    """An answer for several providers (or one): where it is, and its list of targets, each
    the single form's target fields without channel and ts."""

    targets: Annotated[list[_TARGET], Field(min_length=1, max_length=MAX_TARGETS)]

    @field_validator("targets")
    @classmethod
    def _distinct(cls, targets: list[TargetIn]) -> list[TargetIn]:
        seen: list[Target] = []
        sources: set[str] = set()
        for i, model in enumerate(targets):
            target = model.to_target(i)
            twin = next((t for t in seen if target.same_ids(t)), None)
            if twin is not None:
                raise ValueError(
                    f"targets {twin.position} and {i} are the same {target.provider} target:"
                    " give each target once"
                )
            seen.append(target)
            ids = {s.content_id for s in model.to_sources(i)}
            if ids & sources:
                raise ValueError("each source content_id may appear in one target only")
            sources |= ids
        return targets

    def target_models(self) -> list[TargetIn]:
        return list(self.targets)


_ANSWER = TypeAdapter[AnswerIn](_SINGLE)
_TARGETS = TypeAdapter(TargetsAnswerIn)


def validate_answer(payload: object) -> AnswerIn:
    """Validate a payload (a dict, or JSON text): the single form, or with `targets`, the
    list form. Raises pydantic.ValidationError."""
    if isinstance(payload, str | bytes):
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            return _ANSWER.validate_json(payload)  # pydantic's own json_invalid error
        payload = data
    if isinstance(payload, dict) and "targets" in payload:
        return _TARGETS.validate_python(payload)
    return _ANSWER.validate_python(payload)


def answer_errors(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic's error list, with the provider tags taken out of each location so that
    `loc` names the field as the caller wrote it (`run_id`, `targets.1.trace_id`)."""
    out = []
    for e in error_list(error):
        loc = list(e["loc"])
        if loc and loc[0] in PROVIDERS:
            loc = loc[1:]
        if len(loc) >= 3 and loc[0] == "targets" and loc[2] in PROVIDERS:
            loc = loc[:2] + loc[3:]
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = [*loc, "provider"] if loc and loc[0] == "targets" else ["provider"]
            e["msg"] = f"must be {' or '.join(map(repr, PROVIDERS))}"
        e["loc"] = loc
        out.append(e)
    return out


def target_json(answer: Answer, target: Target) -> dict[str, object]:
    """A target as a registration names it: its provider and the ids it has (an optional
    one left out, not shown as null)."""
    ids = PROVIDERS[target.provider].answer_ids(answer, target)
    return {"provider": target.provider} | {k: v for k, v in ids.items() if v is not None}


def answer_json(answer: Answer) -> dict[str, object]:
    """The answer as it was registered: an answer of one target in the single form (the
    target's fields beside channel and ts), one of several with its list of targets."""
    body: dict[str, object] = {"channel": answer.channel, "ts": answer.ts}
    if len(answer.targets) == 1:
        body |= target_json(answer, answer.first)
    else:
        body["targets"] = [target_json(answer, t) for t in answer.targets]
    if answer.thread_ts:
        body["thread_ts"] = answer.thread_ts
    if answer.posted_by_bot:
        body["posted_by_bot"] = True
    if answer.prompt_ts:
        body["prompt_ts"] = answer.prompt_ts
    return body
