"""The Socket Mode door: Bolt's Socket Mode adapter, with the envelope checked as on the HTTP
door (bot/web/slack.py) and reaction events offered to the fast lane as there, and with a
health check that knows whether Slack has said `hello` on the current connection."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import orjson
from aiohttp import WSMessage
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.envelope import envelope_problem, request_kind
from bot.slack.inbound import MAX_DEPTH, FastDoor, json_kind, within_depth
from bot.support.metrics import Metrics

log = logging.getLogger(__name__)


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

    # Bolt's adapter has no annotations, and strict mypy refuses untyped calls: these two
    # are typed here, so that the ignore is in one place and the callers' code is checked.
    async def connect_async(self) -> None:
        await super().connect_async()  # type: ignore[no-untyped-call]

    async def close_async(self) -> None:
        await super().close_async()  # type: ignore[no-untyped-call]

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
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
            problem: str | None = f"the payload should be a JSON object, not {json_kind(payload)}"
        elif not within_depth(payload, MAX_DEPTH):
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
