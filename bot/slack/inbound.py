"""What arrives from outside, checked before any work is done on it.

Slack's requests: the signature over the raw bytes, one bounded parse, then the fields Bolt's
own code reads (pydantic at the edge), so that nothing Bolt does with a body can raise.
Then, inside Bolt and for both doors (HTTP and Socket Mode), the workspace check
(bot/slack/workspace.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMessage
from pydantic import BaseModel, BeforeValidator, ValidationError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.support.metrics import Metrics
from bot.support.validation import describe, error_list

log = logging.getLogger(__name__)

# Slack refuses requests older than five minutes; so do we (a replayed request is stale).
MAX_AGE = 60 * 5
# Slack's deepest payloads (rich text in a message inside an interaction) nest about a
# dozen levels. Bolt reads some fields recursively (event.event…, message.message…,
# authorizations[0]…), and orjson's own limit (1,024) is deeper than Python's default
# recursion limit (1,000).
MAX_DEPTH = 64
# A slash command has about fifteen fields; no form from Slack comes near this.
MAX_FIELDS = 100
FORM = "application/x-www-form-urlencoded"


class Malformed(ValueError):
    """A body we cannot take; the message is the reason, safe to show to the sender.
    `kind` names it the way pydantic would, for APIs that answer with pydantic's errors."""

    def __init__(self, reason: str, kind: str = "json_invalid") -> None:
        super().__init__(reason)
        self.kind = kind


# ------------------------------------------------------------------ signature and parse


def signed_by_slack(
    secret: bytes, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> bool:
    """Slack's v0 signature, computed over the bytes as they arrived: headers that are
    missing, not ASCII or not numbers make the request unsigned, never an error."""
    if not timestamp or not signature or not signature.isascii():
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(now - int(timestamp)) > MAX_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def load_json_object(raw: bytes | str, what: str = "the body") -> dict[str, Any]:
    """`raw` as a JSON object, parsed once and bounded in depth (its size is bounded by
    whoever read it)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise Malformed(_why_not_json(raw, e, what)) from None
    if not isinstance(value, dict):
        raise Malformed(f"{what} should be a JSON object, not {_kind(value)}", "model_type")
    if not _within_depth(value, MAX_DEPTH):
        raise Malformed(f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def _why_not_json(raw: bytes | str, error: orjson.JSONDecodeError, what: str) -> str:
    # Worked out only on failure, so that good bodies are decoded once, by orjson.
    if isinstance(raw, bytes):
        try:
            raw.decode()
        except UnicodeDecodeError as e:
            return f"{what} is not UTF-8 (byte {e.start})"
    if str(error).startswith("depth limit exceeded"):
        return f"{what} is nested more than {MAX_DEPTH} levels deep"
    # orjson's messages name a position, never the input itself.
    return f"{what} is not valid JSON ({error})"


def slack_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """A Slack request body as Bolt would read it (JSON for events; form fields for slash
    commands; a JSON `payload` field for interactivity), or Malformed."""
    if not raw.strip():
        raise Malformed("the body is empty")
    # Like Bolt, read a body that starts like JSON as JSON whatever it is labelled. The
    # charset parameter is ignored: JSON is UTF-8 (RFC 8259) and Slack's forms are ASCII.
    if content_type == "application/json" or (content_type != FORM and raw[:1] == b"{"):
        return load_json_object(raw)
    try:
        fields = dict(
            parse_qsl(
                raw.decode(),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
        )
    except UnicodeDecodeError:
        raise Malformed("the form is not UTF-8") from None
    except ValueError:
        raise Malformed(f"the form has more than {MAX_FIELDS} fields") from None
    if "payload" in fields:
        return load_json_object(fields["payload"], "the payload field")
    if not fields:
        raise Malformed("the body is neither JSON nor form fields")
    return fields


def _within_depth(value: dict[str, Any] | list[Any], limit: int) -> bool:
    # Iterative, so that checking a deep body cannot itself exhaust the stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return True


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


# ------------------------------------------------------------------ the envelope Bolt reads
#
# Bolt's request context (slack_bolt/request/internals.py, extract_*), its built-in
# middleware (ignoring self events, url_verification), its listener matchers and its
# "unhandled request" warning index into these fields, assuming Slack's types: a number
# where it expects a string or an object, or null where it expects an object, raises inside
# Bolt (a 500 and a traceback). Only those fields are checked; everything else is the
# listeners' business (handlers/payloads.py).


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


# ------------------------------------------------------------------ Socket Mode


class FastDoor(Protocol):
    """Events that skip Bolt (handlers/reactions.py: FastLane)."""

    def take(self, payload: object) -> Any | None: ...

    async def handle(self, envelope: Any) -> BoltResponse: ...


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode adapter, with the envelope checked as on the HTTP door, and
    reaction events taken by the fast lane as there. It also knows whether Slack has said
    `hello` on the current connection: until then, no event comes (`problem`)."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        fast_lane: FastDoor | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(app, app_token)
        self._fast_lane = fast_lane
        self._metrics = metrics
        # The WebSocket Slack said hello on: compared with the client's current one, so a
        # reconnection waits for its own hello.
        self._greeted: object | None = None
        self.client.on_message_listeners.append(self._on_message)

    async def _on_message(self, message: WSMessage) -> None:
        # Run by the client's receiving loop, for every text frame of the current session.
        session = self.client.current_session
        if session is self._greeted or not isinstance(message.data, str):
            return
        if '"hello"' in message.data:
            try:
                frame = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                return
            if isinstance(frame, dict) and frame.get("type") == "hello":
                self._greeted = session

    async def problem(self) -> str | None:
        """Why events cannot arrive over the socket right now, or None."""
        if not await self.client.is_connected():
            return "the Socket Mode connection to Slack is down"
        if self._greeted is not self.client.current_session:
            return "connected to Slack's Socket Mode, but Slack has not said hello on it yet"
        return None

    async def handle(  # type: ignore[override]
        self, client: AsyncBaseSocketModeClient, req: SocketModeRequest
    ) -> None:
        if self._metrics is None:
            await self._handle(client, req)
            return
        started = time.perf_counter()
        status = await self._handle(client, req)
        kind = request_kind(req.payload) if isinstance(req.payload, dict) else "unknown"
        self._metrics.request(kind, status, time.perf_counter() - started)

    async def _handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> int:
        """The status it was answered with, as over HTTP; acknowledged when that is a 200,
        as Bolt's adapter does (Slack sends an unacknowledged envelope again)."""
        payload = req.payload
        if (
            self._fast_lane is not None
            and req.type == "events_api"
            and (reaction := self._fast_lane.take(payload)) is not None
        ):
            response = await self._fast_lane.handle(reaction)
            await _acknowledge(client, req, response)
            return response.status
        if not isinstance(payload, dict):
            problem: str | None = f"the payload should be a JSON object, not {_kind(payload)}"
        elif not _within_depth(payload, MAX_DEPTH):
            problem = f"the payload is nested more than {MAX_DEPTH} levels deep"
        else:
            problem = envelope_problem(payload)
        if problem is None:
            # Bolt's retry headers, as its own adapter sets them, so that listeners see
            # Slack's retries over either door.
            headers: dict[str, str | Sequence[str]] = {}
            if req.retry_attempt is not None:
                headers["x-slack-retry-num"] = str(req.retry_attempt)
            if req.retry_reason is not None:
                headers["x-slack-retry-reason"] = req.retry_reason
            answered = await self.app.async_dispatch(
                AsyncBoltRequest(body=payload, headers=headers or None, mode="socket_mode")
            )
            await _acknowledge(client, req, answered)
            return answered.status
        log.warning("refused a malformed %s envelope over Socket Mode: %s", req.type, problem)
        # Acknowledge it all the same: Slack would redeliver an unacknowledged event, and
        # this one can never succeed.
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        return 400


async def _acknowledge(
    client: AsyncBaseSocketModeClient, req: SocketModeRequest, response: BoltResponse
) -> None:
    """Bolt's answer as a Socket Mode acknowledgement, as Bolt's adapter sends it: a 200's
    body goes with it (JSON as an object, text as {"text": …}); anything else is not
    acknowledged."""
    if response.status != 200:
        log.debug("not acknowledged over Socket Mode: %s answered %d", req.type, response.status)
        return
    body = response.body
    if not body:
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        return
    content_type = response.headers.get("content-type", [""])[0]
    reply = orjson.loads(body) if content_type.startswith("application/json") else {"text": body}
    await client.send_socket_mode_response(
        SocketModeResponse(envelope_id=req.envelope_id, payload=reply)
    )
