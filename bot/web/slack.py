"""Slack's request URL, /slack/events (HTTP mode): the signature checked over the raw bytes
before anything else, reaction events offered to the fast lane, everything else parsed once,
its envelope checked, and handed to Bolt."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack.envelope import envelope_problem, request_kind
from bot.slack.inbound import FastDoor, Malformed, signed_by_slack, slack_body
from bot.support.metrics import Metrics
from bot.web.request import error, read_body

log = logging.getLogger(__name__)


def slack_events(
    bolt: AsyncApp, signing_secret: str, fast_lane: FastDoor | None, metrics: Metrics | None
) -> Handler:
    """The route; `fast_lane` takes reaction events past Bolt."""
    secret = signing_secret.encode()

    async def answer(request: web.Request) -> tuple[str, web.StreamResponse]:
        """What the request was (for the metrics), and its answer."""
        # Bytes, not text: the signature covers the bytes as sent, and decoding by the
        # declared charset would let an unsigned request choose our codec.
        body = await read_body(request)
        if isinstance(body, web.Response):
            return "unknown", body
        # Verify before parsing: an unsigned request learns nothing, not even that its
        # body was malformed.
        if not signed_by_slack(
            secret,
            body,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            time.time(),
        ):
            log.info("rejected a request to /slack/events with an invalid signature")
            return "unsigned", error(401, "invalid signature")
        if fast_lane is not None and (reaction := fast_lane.take_json(body)) is not None:
            answered = await fast_lane.handle(reaction)
            # Its answers are plain text (empty, or why not): no need for Bolt's converter.
            return reaction.event.type, web.Response(status=answered.status, text=answered.body)
        try:
            payload = slack_body(body, request.content_type)
        except Malformed as e:
            return "unknown", _malformed(str(e))
        kind = request_kind(payload)
        problem = envelope_problem(payload)
        if problem is not None:
            return kind, _malformed(problem)
        # Bolt takes an already-parsed body only in its socket_mode. Besides, the mode
        # only skips Bolt's own signature check (off anyway: verified above) and makes a
        # copied request keep the parsed body.
        bolt_request = AsyncBoltRequest(
            body=payload,
            query=request.query_string,
            headers=_bolt_headers(request),
            mode="socket_mode",
        )
        response = await bolt.async_dispatch(bolt_request)
        return kind, await to_aiohttp_response(response)

    async def handle(request: web.Request) -> web.StreamResponse:
        if metrics is None:
            return (await answer(request))[1]
        started = time.perf_counter()
        kind, response = await answer(request)
        metrics.request(kind, response.status, time.perf_counter() - started)
        return response

    return handle


def _bolt_headers(request: web.Request) -> dict[str, str | Sequence[str]]:
    """The headers as Bolt keeps them: by lower-cased name, a repeated header by its last
    value (what Bolt makes of aiohttp's multidict too, which its type does not admit)."""
    return {name.lower(): value for name, value in request.headers.items()}


def _malformed(reason: str) -> web.Response:
    log.warning("refused a signed request to /slack/events: %s", reason)
    return error(400, f"malformed body: {reason}")
