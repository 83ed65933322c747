"""The Provider protocol, what a send returns, the errors it may raise, and the one HTTP
call every provider makes.

What is read of a provider's answer is capped (`BODY_LIMIT`): a feedback acknowledgement is
a few hundred bytes at most, and reading whatever an endpoint sends would let a broken or
hostile one fill the worker's memory. The rest of a longer body is never read, and its
connection is closed rather than handed back to the pool half read. Whether a send is
retried is each provider's rule (`Retryable`, given to `request`); `retried_by_default` is
the one AquilaX follows.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp

from bot.domain import Answer, Target, Verdict

log = logging.getLogger(__name__)

# The part of a provider's error body worth keeping: enough to diagnose, small enough to show.
ERROR_TEXT_LIMIT = 500
# The most that is read of any answer, success or error.
BODY_LIMIT = 64 * 1024
# What a provider's key is replaced with in its error text, as bot.support.logs masks it.
KEY_MASK = "[redacted]"


@dataclass(frozen=True, slots=True)
class Sent:
    """The provider accepted the feedback; `ref` is its id for it, when it returns one."""

    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """Nothing was sent, on purpose; `reason` says why."""

    reason: str


Outcome = Sent | Skipped


class ProviderError(Exception):
    """A send failed. `retryable` says whether trying again later can help."""

    retryable: bool = False


class RetryableError(ProviderError):
    """Connection trouble, a timeout, or a refusal the provider's rule retries (see its
    module; 408, 429 and 5xx by default): try again later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The provider refused the request (400/401/403/404/422 …): retrying will not help."""


class Provider(Protocol):
    name: str

    @property
    def requests_per_send(self) -> int:
        """The most requests one send makes now, one after the other (LangSmith: an update,
        then a create when there is nothing to update; none without a key). A send cut off
        by a crash may be applied until the provider's timeout has passed since its last
        request began: the worker's lease covers that many (bot/delivery/worker.py)."""
        ...

    async def send(
        self, answer: Answer, target: Target, content_id: str, verdict: Verdict
    ) -> Outcome:
        """Make `target` hold `verdict` for the slot; raise ProviderError on failure."""
        ...


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes  # at most BODY_LIMIT bytes
    truncated: bool = False  # the provider sent more than BODY_LIMIT; the rest was not read


# Whether a refusal is worth retrying, from its status and headers.
Retryable = Callable[[int, Mapping[str, str]], bool]


def retried_by_default(status: int, headers: Mapping[str, str]) -> bool:
    """408 (the request timed out), 429 (rate limited) and 5xx (the provider's trouble)."""
    return status in (408, 429) or status >= 500


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever its case (aiohttp's headers ignore it; a dict does not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def check_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    provider: str,
    *,
    retryable: Retryable = retried_by_default,
    key: str | None = None,
    accepted: Collection[int] = (),
) -> None:
    """Raise the error a non-2xx response stands for (unless its status is `accepted`).

    The request's own `key` is masked before the text is cut to ERROR_TEXT_LIMIT: cut
    first, a key echoed across the limit would leave a prefix no redactor recognises.
    """
    if 200 <= status < 300 or status in accepted:
        return
    text = " ".join(body.decode(errors="replace").split())
    if key:
        text = text.replace(key, KEY_MASK)
    text = text[:ERROR_TEXT_LIMIT] or "(no body)"
    message = f"{provider} answered HTTP {status}: {text}"
    if retryable(status, headers):
        raise RetryableError(message, retry_after=parse_retry_after(headers))
    raise PermanentError(message)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, as Contextual's SDK reads them: `retry-after-ms` (not a standard
    header, but more precise), else `Retry-After` as seconds or an HTTP date."""
    milliseconds = _seconds(header(headers, "retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = header(headers, "retry-after")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip()).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _seconds(value: str | None) -> float | None:
    """A non-negative, finite number of seconds (`1`, `1.5`), or None."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    # inf or nan would become a retry time no clock reaches, or none at all.
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


async def read_capped(stream: aiohttp.StreamReader, limit: int = BODY_LIMIT) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a body, and whether there was more (one byte past the limit
    is read to know)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:limit], True


async def request(
    session: aiohttp.ClientSession,
    provider: str,
    method: str,
    url: str,
    *,
    retryable: Retryable = retried_by_default,
    key: str | None = None,
    accepted: Collection[int] = (),
    **kwargs: Any,
) -> Response:
    """Send one request, turning transport failures into RetryableError, and a refusal into
    the error `retryable` says it is; an `accepted` status is returned as an answer (a 404
    to a delete: there is nothing left to delete). At most BODY_LIMIT bytes are read.

    Messages name the failure but never the headers, so no key can leak through them.
    The session carries the timeouts (see bot.app).
    """
    try:
        async with session.request(method, url, allow_redirects=False, **kwargs) as r:
            body, truncated = await read_capped(r.content)
            if truncated:
                r.close()  # the unread rest stays unread: this connection is not reused
            check_response(
                r.status, r.headers, body, provider, retryable=retryable, key=key, accepted=accepted
            )
            return Response(r.status, body, truncated)
    except TimeoutError:
        raise RetryableError(f"{provider} timed out") from None
    except aiohttp.ClientError as e:
        raise RetryableError(f"{provider} unreachable ({type(e).__name__}: {e})") from None


def unexpected_answer(provider: str, response: Response, problem: str) -> None:
    """Log a success whose body is not what the provider's API describes: it still counts
    as delivered (the status says the provider took the feedback), but it may mean the base
    URL points at something else, or the API changed. The body itself is not logged."""
    size = f"more than {BODY_LIMIT} bytes" if response.truncated else f"{len(response.body)} bytes"
    log.warning(
        "%s answered HTTP %d with a body its API does not describe (%s; %s): counted as delivered",
        provider,
        response.status,
        problem,
        size,
    )


def slack_metadata(answer: Answer, content_id: str, verdict: Verdict) -> dict[str, Any]:
    """What LangSmith and Langfuse keep beside a vote, in their free-form metadata: that the
    bot sent it, from which Slack message, for which source, in which category."""
    metadata: dict[str, Any] = {
        "app": "feedback-bot",
        "slack_channel": answer.channel,
        "slack_ts": answer.ts,
    }
    if content_id:
        metadata["content_id"] = content_id
    if verdict.category:
        metadata["category"] = verdict.category
    return metadata


async def delete(
    session: aiohttp.ClientSession, provider: str, url: str, headers: Mapping[str, str], key: str
) -> None:
    """DELETE what `url` names; a 404 means it is gone already, which is what was asked."""
    await request(session, provider, "DELETE", url, headers=headers, key=key, accepted=(404,))


# The namespace of the ids the bot gives the feedback it creates (uuid5 of a slot and target).
FEEDBACK_NAMESPACE = uuid.UUID("6b1c9f4e-0a57-4d2e-9c1b-3f8e2d7a5c40")


def feedback_uuid(answer: Answer, target: Target, content_id: str) -> str:
    """The id of the one feedback a slot holds at a provider that lets the caller name it
    (LangSmith, Langfuse): derived from where the answer is in Slack, the provider's ids and
    the slot, so it is the same on every retry, after a restart and on every replica, and a
    create sent twice is one feedback. Not from the database's row ids: an answer copied to
    PostgreSQL, or removed and registered again for the same message, names the same one."""
    parts = (
        target.provider,
        answer.channel,
        answer.ts,
        target.key,
        target.observation_id or "",
        content_id,
    )
    return str(uuid.uuid5(FEEDBACK_NAMESPACE, "/".join(parts)))


def missing_key(provider: str, variable: str) -> PermanentError:
    return PermanentError(
        f"no {provider} API key: set {variable} or use `/feedback setup`, then retry"
    )
