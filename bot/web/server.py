"""The web server: every route in one table (build_web_app), the API's description, and the
runner with the limits on a connection."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.services import Services
from bot.slack.inbound import FastDoor
from bot.web.answers import list_answers, post_answer, remove_answer, show_answer
from bot.web.health import healthz, serve_metrics
from bot.web.request import MAX_BODY
from bot.web.slack import slack_events
from bot.web.votes import export_votes

# A whole request within ten seconds, whoever sends it. Slack's requests arrive in
# milliseconds (it gives up on an answer after 3 s), and the answers API's callers are
# services next to the bot; a client slower than this is holding a connection open, not
# sending. The headers must be in within HEADERS_WITHIN of the connection opening (or of the
# previous answer on it: aiohttp's keep-alive timer, which also closes idle connections
# then; a reverse proxy in front should keep idle upstream connections for less), the body
# within BODY_WITHIN after them (bot/web/request.py).
HEADERS_WITHIN = 5.0
# After an early answer (a 408, a 413), what is still arriving is read and dropped for this
# long, so that the client gets the answer rather than a reset; then the connection closes.
LINGER = 1.0
# At shutdown, requests in flight get this long to finish (an ack takes milliseconds), then
# they are cut off: a half-sent request must not hold the process (aiohttp waits 60 s).
REQUESTS_GRACE = 2.0

# The HTTP API's description (docs/openapi.json is this file); tests hold the routes to it.
OPENAPI = files("bot").joinpath("openapi.json").read_bytes()


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
    services: Services, bolt: AsyncApp | None, fast_lane: FastDoor | None = None
) -> web.Application:
    """`bolt` is None in Socket Mode: events then arrive over the socket, not over HTTP.
    `fast_lane` takes reaction events past Bolt (bot/slack/inbound.py: FastDoor)."""
    app = web.Application(client_max_size=MAX_BODY)
    if bolt is not None:
        secret = services.settings.slack_signing_secret
        assert secret is not None
        app.router.add_post(
            "/slack/events",
            slack_events(bolt, secret.get_secret_value(), fast_lane, services.metrics),
        )
    app.router.add_post("/v1/answers", post_answer(services))
    app.router.add_get("/v1/answers", list_answers(services))
    app.router.add_get("/v1/answers/{channel}/{ts}", show_answer(services))
    app.router.add_delete("/v1/answers/{channel}/{ts}", remove_answer(services))
    app.router.add_get("/v1/votes", export_votes(services))
    app.router.add_get("/healthz", healthz(services))
    app.router.add_get("/v1/openapi.json", _openapi)
    if services.metrics is not None:
        app.router.add_get("/metrics", serve_metrics(services.metrics))
    return app


async def _openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=OPENAPI, content_type="application/json")
