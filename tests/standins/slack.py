"""A stand-in for Slack's Web API: answers the methods the bot calls, records every call,
and checks each body is valid Block Kit for its method."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standins.blockkit import check_message, check_view

BOT_USER = "UBOTFB001"
BOT_ID = "BBOTFB001"
TEAM = "T0TEST001"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class SlackStandIn:
    bot_token: str
    app_token: str | None = None
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to response_url
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # method -> error to answer with
    delays: dict[str, float] = field(default_factory=dict)  # method -> seconds before answering
    port: int = 0
    _runner: web.AppRunner | None = None
    socket_acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    refuse_sockets: bool = False  # Slack's WebSocket endpoint is unreachable
    # What the bot token was granted, as Slack says in auth.test's X-OAuth-Scopes header.
    scopes: list[str] = field(
        default_factory=lambda: [
            "reactions:read",
            "chat:write",
            "chat:write.public",
            "commands",
            "users:read",
        ]
    )
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{key}"

    def add_user(self, user_id: str, *, admin: bool = False, owner: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM,
            "name": user_id.lower(),
            "is_admin": admin,
            "is_owner": owner,
            "is_primary_owner": False,
            "is_bot": False,
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        async with asyncio.timeout(timeout):
            while len(self.calls_to(method)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.calls_to(method)

    async def socket_send(
        self, payload: dict[str, Any], kind: str = "events_api", ack_timeout: float = 5
    ) -> dict:
        """Send one Socket Mode envelope to the connected bot; return its acknowledgement."""
        async with asyncio.timeout(10):
            while not self._sockets:
                self._changed.clear()
                await self._changed.wait()
        envelope_id = f"env-{next(self._ts)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind != "events_api",
            "payload": payload,
        }
        if kind == "events_api":
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        await self._sockets[-1].send_json(envelope)
        async with asyncio.timeout(ack_timeout):
            while envelope_id not in self.socket_acks:
                self._changed.clear()
                await self._changed.wait()
        return self.socket_acks[envelope_id]

    async def drop_sockets(self) -> None:
        """Close every Socket Mode connection and refuse new ones (an outage)."""
        self.refuse_sockets = True
        for ws in list(self._sockets):
            await ws.close()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_sockets:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP0001"}}
        )
        self._sockets.append(ws)
        self._changed.set()
        async for message in ws:
            ack = json.loads(message.data)
            self.socket_acks[ack["envelope_id"]] = ack
            self._changed.set()
        self._sockets.remove(ws)
        return ws

    async def wait_for_response(self, count: int = 1, timeout: float = 5.0) -> list[dict]:
        async with asyncio.timeout(timeout):
            while len(self.responses) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.responses

    # ------------------------------------------------------------ serving

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        errors = check_message(body) if body.get("blocks") or body.get("text") else []
        if body.get("response_type", "ephemeral") not in ("ephemeral", "in_channel"):
            errors.append(f"bad response_type {body.get('response_type')!r}")
        self._record_violations("response_url", errors)
        self.responses.append(body)
        self._changed.set()
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        self.calls.append(Call(method, args, token))
        self._changed.set()
        await asyncio.sleep(self.delays.get(method, 0.0))
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in self.errors:
            return web.json_response({"ok": False, "error": self.errors[method]})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            self.violations.append(f"unexpected method {method}")
            return web.json_response({"ok": False, "error": "unknown_method"})
        headers = {"X-OAuth-Scopes": ",".join(self.scopes)} if method == "auth.test" else None
        return web.json_response(await handler(args), headers=headers)

    def _record_violations(self, method: str, errors: list[str]) -> None:
        self.violations += [f"{method}: {e}" for e in errors]

    def _require(self, method: str, args: dict[str, Any], *names: str) -> None:
        missing = [n for n in names if not args.get(n)]
        self._record_violations(method, [f"missing argument {n}" for n in missing])

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://test.slack.com/",
            "team": "Test",
            "user": "feedback-bot",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
        }

    async def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    async def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("chat.postMessage", args, "channel")
        self._record_violations("chat.postMessage", check_message(args))
        ts = self._next_ts()
        return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"ts": ts}}

    async def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("chat.postEphemeral", args, "channel", "user")
        self._record_violations("chat.postEphemeral", check_message(args))
        return {"ok": True, "message_ts": self._next_ts()}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("chat.update", args, "channel", "ts")
        self._record_violations("chat.update", check_message(args))
        return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}

    async def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("views.open", args, "trigger_id", "view")
        view = _maybe_json(args.get("view"))
        self._record_violations("views.open", check_view(view))
        return {"ok": True, "view": {"id": "V0VIEW001", **(view or {})}}

    async def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("views.update", args, "view")
        view = _maybe_json(args.get("view"))
        self._record_violations("views.update", check_view(view))
        return {"ok": True, "view": {"id": args.get("view_id", "V0VIEW001"), **(view or {})}}

    async def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("views.publish", args, "user_id", "view")
        view = _maybe_json(args.get("view"))
        self._record_violations("views.publish", check_view(view))
        return {"ok": True, "view": {"id": "V0HOME001", **(view or {})}}

    async def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}


async def _args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        args.update(await request.json())
    elif request.can_read_body:
        args.update(dict(await request.post()))
    for key in ("blocks", "view"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args


def _maybe_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
