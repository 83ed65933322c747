"""The Provider protocol, what a send returns, the errors it may raise, and the one HTTP
call every provider makes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp

from bot.domain import Answer, Verdict

# The part of a provider's error body worth keeping: enough to diagnose, small enough to show.
ERROR_TEXT_LIMIT = 500


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
    """Connection trouble, a timeout, 408, 429 or 5xx: try again later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The provider refused the request (400/401/403/404/422 …): retrying will not help."""


class Provider(Protocol):
    name: str

    async def send(self, answer: Answer, content_id: str, verdict: Verdict) -> Outcome:
        """Make the provider hold `verdict` for the slot; raise ProviderError on failure."""
        ...


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes


def check_response(status: int, headers: Mapping[str, str], body: bytes, provider: str) -> None:
    """Raise the error a non-2xx response stands for."""
    if 200 <= status < 300:
        return
    text = " ".join(body.decode(errors="replace").split())[:ERROR_TEXT_LIMIT] or "(no body)"
    message = f"{provider} answered HTTP {status}: {text}"
    if status in (408, 429) or status >= 500:
        raise RetryableError(message, retry_after=parse_retry_after(headers))
    raise PermanentError(message)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


async def request(
    session: aiohttp.ClientSession, provider: str, method: str, url: str, **kwargs: Any
) -> Response:
    """Send one request, turning transport failures into RetryableError.

    Messages name the failure but never the headers, so no key can leak through them.
    The session carries the timeouts (see bot.app).
    """
    try:
        async with session.request(method, url, allow_redirects=False, **kwargs) as r:
            body = await r.read()
            check_response(r.status, r.headers, body, provider)
            return Response(r.status, body)
    except TimeoutError:
        raise RetryableError(f"{provider} timed out") from None
    except aiohttp.ClientError as e:
        raise RetryableError(f"{provider} unreachable ({type(e).__name__}: {e})") from None


def missing_key(provider: str, variable: str) -> PermanentError:
    return PermanentError(
        f"no {provider} API key: set {variable} or use `/feedback setup`, then retry"
    )
