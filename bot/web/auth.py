"""The answers API's door (the answers and votes routes): a bearer token, FEEDBACK_API_TOKEN,
compared in constant time; without the setting the API is off."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import SecretStr

from bot.answers.admin import BadQuery
from bot.services import Services
from bot.web.request import error
from storage import StorageError

log = logging.getLogger(__name__)


def refused(request: web.Request, token: SecretStr | None) -> web.Response | None:
    """The answers API's door: off (503) without FEEDBACK_API_TOKEN, 401 without it."""
    if token is None:
        return error(
            503,
            "the answers API is off: set FEEDBACK_API_TOKEN to a secret of at least 16"
            " characters and restart feedback-bot",
        )
    if not _bearer_matches(request.headers.get("Authorization", ""), token):
        return error(401, "missing or wrong bearer token", hint="Authorization: Bearer …")
    return None


def guarded(services: Services, work: Handler) -> Handler:
    """A read or a removal behind the answers API's door, with its errors in words."""
    token = services.settings.feedback_api_token

    async def handle(request: web.Request) -> web.StreamResponse:
        if (answer := refused(request, token)) is not None:
            return answer
        try:
            return await work(request)
        except BadQuery as e:
            return error(400, str(e))
        except StorageError as e:
            log.error("%s %s: %s", request.method, request.path, e)
            return error(503, f"feedback-bot cannot read its database right now: {e}")

    return handle


def _bearer_matches(given: str, token: SecretStr) -> bool:
    try:
        # aiohttp hands over bytes that are not UTF-8 as surrogates, which cannot be encoded
        # back: such a header is simply not our token.
        given_bytes = given.encode()
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, f"Bearer {token.get_secret_value()}".encode())
