"""The envelope Bolt reads: the fields of a Slack payload that Bolt's own code indexes into,
checked (pydantic at the edge) so that nothing Bolt does with a body can raise; and what a
request is, in a word, for the metrics.

Bolt's request context (slack_bolt/request/internals.py, extract_*), its built-in middleware
(ignoring self events, url_verification), its listener matchers and its "unhandled request"
warning index into these fields, assuming Slack's types: a number where it expects a string
or an object, or null where it expects an object, raises inside Bolt (a 500 and a
traceback). Only those fields are checked; everything else is the listeners' business
(handlers/payloads.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationError

from bot.support.validation import describe, error_list


def _object(value: object) -> object:
    if not isinstance(value, dict):
        raise ValueError("should be an object")
    return value


def _optional_object(value: object) -> object:
    return None if value is None else _object(value)


def _id_or_object(value: object) -> object:
    # Slack sends team, user, channel and enterprise either as an id or as {"id": …}.
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"id": value}
    raise ValueError("should be a string (an id) or an object")


def _list(value: object) -> object:
    if not isinstance(value, list):
        raise ValueError("should be an array")
    return value


def _optional_list(value: object) -> object:
    return None if value is None else _list(value)


def _nonempty_list(value: object) -> object:
    if not isinstance(value, list) or not value:
        raise ValueError("should be an array of at least one object")
    return value


class _Ref(BaseModel):
    id: str | None = None


class _Team(_Ref):
    enterprise_id: str | None = None


class _User(_Ref):
    team_id: str | None = None


class EnvelopeLevel(BaseModel):
    """One level of a payload as Bolt's extract_* functions read it; they read the same
    fields again inside event, message, previous_message, item, assistant_thread and
    authorizations[0]. (The fast lane's models, handlers/payloads.py, build on it, so that
    what Bolt would refuse goes to Bolt and gets the same 400.)"""

    team_id: str | None = None
    enterprise_id: str | None = None
    user_id: str | None = None
    channel_id: str | None = None
    team: Annotated[_Team | None, BeforeValidator(_id_or_object)] = None
    enterprise: Annotated[_Ref | None, BeforeValidator(_id_or_object)] = None
    user: Annotated[_User | None, BeforeValidator(_id_or_object)] = None
    channel: Annotated[_Ref | None, BeforeValidator(_id_or_object)] = None
    authorizations: Annotated[
        list[Annotated[EnvelopeLevel, BeforeValidator(_object)]] | None,
        BeforeValidator(_optional_list),
    ] = None
    event: Annotated[EnvelopeLevel | None, BeforeValidator(_optional_object)] = None
    message: Annotated[EnvelopeLevel | None, BeforeValidator(_optional_object)] = None
    previous_message: Annotated[EnvelopeLevel | None, BeforeValidator(_optional_object)] = None
    item: Annotated[EnvelopeLevel | None, BeforeValidator(_optional_object)] = None
    assistant_thread: Annotated[EnvelopeLevel | None, BeforeValidator(_optional_object)] = None


class _Event(EnvelopeLevel):
    type: str


class _View(BaseModel):
    type: str
    callback_id: str | None = None
    team_id: str | None = None
    app_installed_team_id: str | None = None


class _Action(BaseModel):
    action_id: str
    block_id: str | None = None


class _ResponseUrl(BaseModel):
    response_url: str | None = None


class SlackEnvelope(EnvelopeLevel):
    """The top level: where present, event, view, actions and response_urls are read
    without a None check, so null is refused there too."""

    type: str | None = None
    command: str | None = None
    response_url: str | None = None
    event: Annotated[_Event | None, BeforeValidator(_object)] = None
    view: Annotated[_View | None, BeforeValidator(_object)] = None
    actions: Annotated[
        list[Annotated[_Action, BeforeValidator(_object)]] | None, BeforeValidator(_nonempty_list)
    ] = None
    response_urls: Annotated[
        list[Annotated[_ResponseUrl, BeforeValidator(_object)]] | None, BeforeValidator(_list)
    ] = None


def request_kind(body: dict[str, Any]) -> str:
    """What a Slack request is, in a word (an event's type, block_actions, a command…),
    for the metrics; never more than a short known name, so labels stay few."""
    event = body.get("event")
    if isinstance(event, dict) and isinstance(event.get("type"), str):
        kind: object = event["type"]
    elif "command" in body:
        kind = "slash_command"
    else:
        kind = body.get("type")
    if isinstance(kind, str) and kind.replace("_", "").isalpha() and len(kind) <= 40:
        return kind
    return "unknown"


def envelope_problem(body: dict[str, Any]) -> str | None:
    """Why Bolt could not take `body` (a parsed, depth-checked object), or None."""
    try:
        SlackEnvelope.model_validate(body)
    except ValidationError as e:
        return describe(error_list(e), limit=5)
    return None
