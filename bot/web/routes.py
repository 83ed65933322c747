"""HTTP routes: Slack's request URL, the answers API and the health check."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from importlib.resources import files

from aiohttp import web
from pydantic import SecretStr, ValidationError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.answers.admin import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadQuery,
    detail_json,
    removal_json,
)
from bot.answers.register import PostError, answer_errors, answer_json
from bot.domain import Registration
from bot.services import Services
from bot.slack.inbound import (
    Malformed,
    envelope_problem,
    load_json_object,
    request_kind,
    signed_by_slack,
    slack_body,
)
from bot.support.metrics import CONTENT_TYPE, Metrics
from bot.votes import export as vote_export
from bot.votes.export import VoteFilter
from handlers.reactions import FastLane
from storage import StorageError

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024

# A whole request within ten seconds, whoever sends it. Slack's requests arrive in
# milliseconds (it gives up on an answer after 3 s), and the answers API's callers are
# services next to the bot; a client slower than this is holding a connection open, not
# sending. The headers must be in within HEADERS_WITHIN of the connection opening (or of the
# previous answer on it: aiohttp's keep-alive timer, which also closes idle connections
# then; a reverse proxy in front should keep idle upstream connections for less), the body
# within BODY_WITHIN after them.
HEADERS_WITHIN = 5.0
BODY_WITHIN = 5.0
# After an early answer (a 408, a 413), what is still arriving is read and dropped for this
# long, so that the client gets the answer rather than a reset; then the connection closes.
LINGER = 1.0
# At shutdown, requests in flight get this long to finish (an ack takes milliseconds), then
# they are cut off: a half-sent request must not hold the process (aiohttp waits 60 s).
REQUESTS_GRACE = 2.0


def runner(app: web.Application) -> web.AppRunner:
    """The server for `app`, with the limits above."""
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=REQUESTS_GRACE,
        keepalive_timeout=HEADERS_WITHIN,
        lingering_time=LINGER,
    )


def build_web_app(
    services: Services, bolt: AsyncApp | None, fast_lane: FastLane | None = None
) -> web.Application:
    """`bolt` is None in Socket Mode: events then arrive over the socket, not over HTTP.
    `fast_lane` takes reaction events past Bolt (handlers/reactions.py)."""
    app = web.Application(client_max_size=MAX_BODY)
    if bolt is not None:
        secret = services.settings.slack_signing_secret
        assert secret is not None
        app.router.add_post(
            "/slack/events",
            _slack_events(bolt, secret.get_secret_value(), fast_lane, services.metrics),
        )
    app.router.add_post("/v1/answers", _answers(services))
    app.router.add_get("/v1/answers", _list_answers(services))
    app.router.add_get("/v1/answers/{channel}/{ts}", _show_answer(services))
    app.router.add_delete("/v1/answers/{channel}/{ts}", _remove_answer(services))
    app.router.add_get("/v1/votes", _votes(services))
    app.router.add_get("/healthz", _healthz(services))
    app.router.add_get("/v1/openapi.json", _openapi)
    if services.metrics is not None:
        app.router.add_get("/metrics", _metrics(services.metrics))
    return app


# The HTTP API's description (docs/openapi.json is this file); tests hold the routes to it.
OPENAPI = files("bot").joinpath("openapi.json").read_bytes()


async def _openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=OPENAPI, content_type="application/json")


def _error(status: int, message: str, **extra: object) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def _body(request: web.Request) -> bytes | web.Response:
    """The body as sent, or the answer for a body that did not come whole: too large
    (413), too slow (408), or cut off by the client going away."""
    try:
        async with asyncio.timeout(BODY_WITHIN):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"the body is larger than {MAX_BODY} bytes")
    except TimeoutError:
        log.info(
            "%s %s: the body did not arrive within %.0f s",
            request.method,
            request.path,
            BODY_WITHIN,
        )
        return _error(408, f"the body did not arrive within {BODY_WITHIN:.0f} s")
    except ConnectionError:
        # The client's business, and anyone can do it: a line for debugging, no traceback.
        # Nobody reads this answer.
        log.debug(
            "%s %s: the client went away before its body arrived", request.method, request.path
        )
        return _error(400, "the body was cut off")


def _slack_events(
    bolt: AsyncApp, signing_secret: str, fast_lane: FastLane | None, metrics: Metrics | None
) -> web.Handler:
    secret = signing_secret.encode()

    async def answer(request: web.Request) -> tuple[str, web.StreamResponse]:
        """What the request was (for the metrics), and its answer."""
        # Bytes, not text: the signature covers the bytes as sent, and decoding by the
        # declared charset would let an unsigned request choose our codec.
        body = await _body(request)
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
            return "unsigned", _error(401, "invalid signature")
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
            body=payload, query=request.query_string, headers=request.headers, mode="socket_mode"
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


def _metrics(metrics: Metrics) -> web.Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = await metrics.render()
        except StorageError as e:
            return _error(503, f"feedback-bot cannot read its database right now: {e}")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle


def _malformed(reason: str) -> web.Response:
    log.warning("refused a signed request to /slack/events: %s", reason)
    return _error(400, f"malformed body: {reason}")


def _answers(services: Services) -> web.Handler:
    token = services.settings.feedback_api_token

    async def handle(request: web.Request) -> web.StreamResponse:
        if (refused := _refused(request, token)) is not None:
            return refused
        raw = await _body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            body = load_json_object(raw)
        except Malformed as e:
            detail = [{"type": e.kind, "loc": [], "msg": str(e)}]
            return web.json_response({"error": "invalid answer", "detail": detail}, status=422)
        try:
            answer_in = await services.answers.validate(body)
            registered = await services.answers.register(answer_in)
        except ValidationError as e:
            return web.json_response(
                {"error": "invalid answer", "detail": answer_errors(e)}, status=422
            )
        except PostError as e:
            return _error(502, str(e))
        except StorageError as e:
            # Disk full, file gone: a JSON 503 that says why, so the caller tries again
            # later, and never a 200 for a write that did not happen.
            log.error("POST /v1/answers: %s", e)
            return _error(503, f"feedback-bot cannot store this right now: {e}")
        existing = answer_json(registered.answer)
        if registered.outcome is Registration.CONFLICT:
            where = f"{registered.answer.channel}/{registered.answer.ts}"
            return _error(
                409, f"message {where} is already mapped to another answer", answer=existing
            )
        status = 201 if registered.outcome is Registration.CREATED else 200
        return web.json_response(
            {"status": registered.outcome.value, "answer": existing}, status=status
        )

    return handle


def _refused(request: web.Request, token: SecretStr | None) -> web.Response | None:
    """The answers API's door: off (503) without FEEDBACK_API_TOKEN, 401 without it."""
    if token is None:
        return _error(
            503,
            "the answers API is off: set FEEDBACK_API_TOKEN to a secret of at least 16"
            " characters and restart feedback-bot",
        )
    if not _bearer_matches(request.headers.get("Authorization", ""), token):
        return _error(401, "missing or wrong bearer token", hint="Authorization: Bearer …")
    return None


def _guarded(services: Services, work: web.Handler) -> web.Handler:
    """A read or a removal behind the answers API's door, with its errors in words."""
    token = services.settings.feedback_api_token

    async def handle(request: web.Request) -> web.StreamResponse:
        if (refused := _refused(request, token)) is not None:
            return refused
        try:
            return await work(request)
        except BadQuery as e:
            return _error(400, str(e))
        except StorageError as e:
            log.error("%s %s: %s", request.method, request.path, e)
            return _error(503, f"feedback-bot cannot read its database right now: {e}")

    return handle


def _list_answers(services: Services) -> web.Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        q = request.query
        unknown = set(q) - {"channel", "limit", "cursor"}
        if unknown:
            raise BadQuery(f"unknown parameter {sorted(unknown)[0]!r} (channel, limit, cursor)")
        raw_limit = q.get("limit", str(DEFAULT_LIMIT))
        if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6):
            raise BadQuery(f"limit must be a number from 1 to {MAX_LIMIT}")
        page = await services.answer_admin.list(q.get("channel"), int(raw_limit), q.get("cursor"))
        return web.json_response(
            {"answers": [answer_json(a) for a in page.answers], "next_cursor": page.next_cursor}
        )

    return _guarded(services, work)


def _show_answer(services: Services) -> web.Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        channel, ts = request.match_info["channel"], request.match_info["ts"]
        detail = await services.answer_admin.show(channel, ts)
        if detail is None:
            return _error(404, f"no answer is registered on {channel}/{ts}")
        return web.json_response(detail_json(detail))

    return _guarded(services, work)


def _remove_answer(services: Services) -> web.Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        channel, ts = request.match_info["channel"], request.match_info["ts"]
        removal = await services.answer_admin.remove(channel, ts, "DELETE /v1/answers")
        if removal is None:
            return _error(404, f"no answer is registered on {channel}/{ts}")
        return web.json_response(removal_json(removal))

    return _guarded(services, work)


def _votes(services: Services) -> web.Handler:
    """Every vote that matches, as JSON Lines, streamed page by page."""

    async def work(request: web.Request) -> web.StreamResponse:
        q = request.query
        unknown = set(q) - {"since", "until", "channel"}
        if unknown:
            raise BadQuery(f"unknown parameter {sorted(unknown)[0]!r} (since, until, channel)")
        where = VoteFilter.parse(q.get("since"), q.get("until"), q.get("channel"))
        rows = vote_export.rows(services.store, where)
        first = await anext(rows, None)  # a database error is still a clean 503 here
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        if first is not None:
            chunk = [vote_export.jsonl(first)]
            async for row in rows:
                chunk.append(vote_export.jsonl(row))
                if len(chunk) >= 500:  # a write per few hundred rows, not per row
                    await response.write(b"".join(chunk))
                    chunk.clear()
            await response.write(b"".join(chunk))
        await response.write_eof()
        return response

    return _guarded(services, work)


def _bearer_matches(given: str, token: SecretStr) -> bool:
    try:
        # aiohttp hands over bytes that are not UTF-8 as surrogates, which cannot be encoded
        # back: such a header is simply not our token.
        given_bytes = given.encode()
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given_bytes, f"Bearer {token.get_secret_value()}".encode())


def _healthz(services: Services) -> web.Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        problems = await services.health.problems()
        body: dict[str, object] = {
            "status": "error" if problems else "ok",
            "db": "ok",
            "mode": "socket" if services.settings.socket_mode else "http",
        }
        if problems:
            body["problems"] = problems
            log.error("health check failed: %s", "; ".join(problems))
        try:
            counts = await services.store.delivery_counts()
        except StorageError as e:
            body["db"] = f"error: {e}"
            return web.json_response(body, status=503)
        oldest = counts.oldest_pending_at
        body["deliveries"] = {
            "pending": counts.pending,
            "sending": counts.sending,
            "dead": counts.dead,
            "oldest_pending_seconds": round(time.time() - oldest, 1) if oldest else None,
            "last_error": counts.last_error,
        }
        return web.json_response(body, status=503 if problems else 200)

    return handle
