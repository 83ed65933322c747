"""What arrives from Slack, checked before any work is done on it: the signature over the raw
bytes, then one bounded parse. What follows is the envelope check (bot/slack/envelope.py),
then, inside Bolt and for both doors (HTTP and Socket Mode), the workspace check
(bot/slack/workspace.py). Also the shape of the fast lane, the door past Bolt that both
doors offer reaction events to (`FastDoor`)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson
from slack_bolt.response import BoltResponse

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
        raise Malformed(f"{what} should be a JSON object, not {json_kind(value)}", "model_type")
    if not within_depth(value, MAX_DEPTH):
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


def within_depth(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether `value` nests no deeper than `limit` levels (the value itself is one)."""
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


def json_kind(value: object) -> str:
    """What a parsed JSON value is, in words, for a message that says it is the wrong one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number"


# ------------------------------------------------------------------ the door past Bolt


class _Typed(Protocol):
    @property
    def type(self) -> str: ...


class FastEvent(Protocol):
    """An event the fast lane took: all that the doors read of it is its type (a metrics
    label)."""

    @property
    def event(self) -> _Typed: ...


class FastDoor(Protocol):
    """Events that skip Bolt (handlers/reactions.py: FastLane, wired in by bot/app.py).
    What it does not take goes through Bolt as before."""

    def take_json(self, raw: bytes) -> FastEvent | None:
        """The raw body of a signed request (HTTP), if the event is one it takes."""
        ...

    def take(self, payload: object) -> FastEvent | None:
        """The same for a payload that arrived already parsed (Socket Mode)."""
        ...

    # Any: it is handed back what take returned, whose type only the lane knows (and a
    # parameter cannot be narrower than the protocol's).
    async def handle(self, envelope: Any) -> BoltResponse:
        """What Bolt would answer to the event `take` returned."""
        ...
