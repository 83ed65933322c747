"""A stand-in for Slack's Socket Mode, in the benchmark's own process so that it can time
each acknowledgement: `apps.connections.open` hands out a loopback WebSocket URL; on it,
the stand-in sends `events_api` envelopes and records when each `envelope_id` comes back.

It also answers auth.test (and any other Web API method with ok), so a bot in Socket Mode
needs nothing else from Slack.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import orjson
from aiohttp import WSMsgType, web

from bench.load import Result, Shot

TEAM = "T0BENCH01"


class SocketModeStandIn:
    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._socket: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._waiting: dict[str, tuple[float, asyncio.Future[float]]] = {}
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/auth.test", self._auth_test)
        app.router.add_post("/api/apps.connections.open", self._connections_open)
        app.router.add_post("/api/{method}", self._ok)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def connected(self, timeout: float = 30) -> None:
        """Until an app holds the socket open."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def disconnected(self) -> None:
        """Forget the socket (its app stopped); the next app connects afresh."""
        self._connected.clear()
        self._socket = None

    async def _auth_test(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "team_id": TEAM, "user_id": "UBENCHBOT", "bot_id": "BBENCHBOT"}
        )

    async def _connections_open(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"})

    async def _ok(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "ts": f"{time.time():.6f}", "channel": "C0BENCH01"})

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(
            orjson.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0BENCH01"}}
            ).decode()
        )
        self._socket = ws
        self._connected.set()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            envelope_id = orjson.loads(message.data).get("envelope_id")
            waiting = self._waiting.pop(envelope_id, None)
            if waiting is not None and not waiting[1].done():
                waiting[1].set_result(time.perf_counter() - waiting[0])
        return ws

    def frames(self, shots: Sequence[Shot]) -> list[str]:
        """Each shot's event as the frame Slack would send over the socket."""
        return [
            orjson.dumps(
                {
                    "envelope_id": f"env-{next(self._ids)}",
                    "payload": orjson.loads(shot.body),
                    "type": "events_api",
                    "accepts_response_payload": False,
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            ).decode()
            for shot in shots
        ]

    async def closed_loop(self, frames: Sequence[str], concurrency: int) -> Result:
        """`concurrency` envelopes always awaiting their ack, until every frame is acked."""
        assert self._socket is not None, "no app connected"
        socket = self._socket
        loop = asyncio.get_running_loop()
        queue = iter(frames)
        result = Result()

        async def worker() -> None:
            for frame in queue:
                # The id sits at a fixed place: frames() writes it first.
                envelope_id = frame[len('{"envelope_id":"') :].split('"', 1)[0]
                future: asyncio.Future[float] = loop.create_future()
                self._waiting[envelope_id] = (time.perf_counter(), future)
                await socket.send_str(frame)
                try:
                    result.latencies.append(await asyncio.wait_for(future, 30))
                except TimeoutError:
                    self._waiting.pop(envelope_id, None)
                    result.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall = time.perf_counter() - started
        return result
