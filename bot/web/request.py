"""What every route does with a request: read its body within the limits, and answer an
error as JSON ({"error": …})."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
# The body must be in within this long after the headers (bot/web/server.py: HEADERS_WITHIN):
# a whole request within ten seconds, whoever sends it.
BODY_WITHIN = 5.0


def error(status: int, message: str, **extra: object) -> web.Response:
    """An error answer: `message` says what went wrong, `extra` goes beside it."""
    return web.json_response({"error": message, **extra}, status=status)


async def read_body(request: web.Request) -> bytes | web.Response:
    """The body as sent, or the answer for a body that did not come whole: too large
    (413), too slow (408), or cut off by the client going away."""
    try:
        async with asyncio.timeout(BODY_WITHIN):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"the body is larger than {MAX_BODY} bytes")
    except TimeoutError:
        log.info(
            "%s %s: the body did not arrive within %.0f s",
            request.method,
            request.path,
            BODY_WITHIN,
        )
        return error(408, f"the body did not arrive within {BODY_WITHIN:.0f} s")
    except ConnectionError:
        # The client's business, and anyone can do it: a line for debugging, no traceback.
        # Nobody reads this answer.
        log.debug(
            "%s %s: the client went away before its body arrived", request.method, request.path
        )
        return error(400, "the body was cut off")
