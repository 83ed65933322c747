"""A stand-in for Slack's Web API: answers the methods the bot calls, records every call,
and checks each body is valid Block Kit for its method. It keeps the messages of each
channel (posted by the bot, or put there by a test with add_message) so that the bot can
read them back with conversations.history and conversations.replies, and the files shared
through Slack's external upload (the digest's charts)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import functools
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aiohttp import web

# jsonschema ships no annotations (its stubs are a package of their own, not installed).
from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]

from bot.cli.doctor import SCOPES as MANIFEST_SCOPES
from tests.standins import DEADLINE
from tests.standins.blockkit import check_message, check_view

BOT_USER = "UBOTFB001"
BOT_ID = "BBOTFB001"
TEAM = "T0TEST001"
APP_ID = "A0APP0001"  # the app the bot token belongs to, as Socket Mode's hello says
HELLO = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}}

# What assistants attach to an AI answer; the stand-in holds the bot's own posts to it.
ANSWER_METADATA_SCHEMA = (
    Path(__file__).resolve().parents[2] / "docs" / "answer-metadata.schema.json"
)
ANSWER_EVENT = "ai_answer_posted"

# The scope each kind of conversation needs for reading its messages, by id prefix.
HISTORY_SCOPES = {"C": "channels:history", "G": "groups:history", "D": "im:history"}
MAX_LIMIT = 999
DEFAULT_LIMIT = 100
PNG = b"\x89PNG\r\n\x1a\n"  # how every PNG starts: the digest shares nothing else
FILES_SCOPE = "files:write"  # what Slack asks of both calls of an external upload


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
    channel_names: dict[str, str] = field(default_factory=dict)  # conversations.info's
    errors: dict[str, str] = field(default_factory=dict)  # method -> error to answer with
    delays: dict[str, float] = field(default_factory=dict)  # method -> seconds before answering
    # method -> how many of its next calls to refuse with HTTP 429 and Retry-After.
    rate_limited: dict[str, int] = field(default_factory=dict)
    retry_after: int = 1  # seconds, as the Retry-After header of a refused call says
    # channel id -> its messages in conversations.history's shape, in the order they came.
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    socket_acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    refuse_sockets: bool = False  # Slack's WebSocket endpoint is unreachable
    withhold_hello: bool = False  # connections open, but Slack does not say hello (say_hello)
    # What the bot token was granted, as Slack says in auth.test's X-OAuth-Scopes header:
    # what manifest.yml asks for (bot/cli/doctor.py holds that list, checked against the file).
    scopes: list[str] = field(default_factory=lambda: list(MANIFEST_SCOPES))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    # channel id -> the error (not_in_channel, channel_not_found, …) that posting, updating
    # and sharing a file there answer with, changing nothing.
    channel_errors: dict[str, str] = field(default_factory=dict)
    # Slack's external upload: file id -> the bytes sent to its upload URL, and every file
    # completed into a channel (id, title, channel_id, initial_comment, thread_ts, bytes).
    uploads: dict[str, bytes] = field(default_factory=dict)
    shared: list[dict[str, Any]] = field(default_factory=list)
    _announced: dict[str, int] = field(default_factory=dict)  # file id -> length announced
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

    def add_message(
        self,
        channel: str,
        *,
        text: str = "an answer",
        ts: str | None = None,
        app_id: str | None = None,
        bot_id: str | None = None,
        user: str | None = None,
        metadata: dict[str, Any] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Put a message in a channel as if someone (an app, when app_id) had posted it;
        return its ts. A reply (thread_ts) updates its parent as Slack does."""
        stored = self.messages.setdefault(channel, [])
        if ts is None:
            ts = self._new_ts(channel)
        elif not _is_ts(ts):
            raise ValueError(f"not a Slack ts: {ts!r}")
        elif any(m["ts"] == ts for m in stored):
            raise ValueError(f"{channel} already has a message {ts}")
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": text, "team": TEAM}
        if user is not None:
            message["user"] = user
        if app_id is not None or bot_id is not None:
            message |= {
                "bot_id": bot_id,
                "app_id": app_id,
                "bot_profile": {"id": bot_id, "app_id": app_id, "team_id": TEAM, "deleted": False},
            }
        if metadata is not None:
            message["metadata"] = metadata
        parent = self._message(channel, thread_ts) if thread_ts is not None else None
        if parent is not None:
            # A thread_ts naming a reply means that reply's thread.
            thread_ts = parent.get("thread_ts", parent["ts"])
            parent = self._message(channel, thread_ts)
        if thread_ts is not None and thread_ts != ts:
            message["thread_ts"] = thread_ts
            # A reply to a message the stand-in was never shown (tests often make up the
            # answer's ts) is kept, with no parent to update.
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = max(parent.get("latest_reply", ts), ts, key=Decimal)
                if "user" in parent:
                    message["parent_user_id"] = parent["user"]
        stored.append(message)
        self._changed.set()
        return ts

    def _message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    def _new_ts(self, channel: str) -> str:
        """A fresh ts, after every message already in the channel (a test may have put one
        there with a ts of its own, ahead of the clock)."""
        ts = self._next_ts()
        latest = max((Decimal(m["ts"]) for m in self.messages.get(channel, [])), default=None)
        if latest is not None and Decimal(ts) <= latest:
            ts = f"{latest + Decimal('0.000001'):.6f}"
        return ts

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def png_uploads(self, channel: str) -> list[bytes]:
        """The bytes of every file shared in a channel, in the order they were shared."""
        return [f["bytes"] for f in self.shared if f["channel_id"] == channel]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    async def wait_for(
        self, method: str, count: int = 1, timeout: float = DEADLINE
    ) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.calls_to(method)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.calls_to(method)

    async def socket_send(
        self, payload: dict[str, Any], kind: str = "events_api", ack_timeout: float = DEADLINE
    ) -> dict[str, Any]:
        """Send one Socket Mode envelope to the connected bot; return its acknowledgement."""
        async with asyncio.timeout(DEADLINE):
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

    async def say_hello(self) -> None:
        """Slack's hello, at last, on every open connection."""
        for ws in list(self._sockets):
            await ws.send_json(HELLO)

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
        if not self.withhold_hello:
            await ws.send_json(HELLO)
        self._sockets.append(ws)
        self._changed.set()
        async for message in ws:
            ack = json.loads(message.data)
            self.socket_acks[ack["envelope_id"]] = ack
            self._changed.set()
        self._sockets.remove(ws)
        return ws

    async def wait_for_response(
        self, count: int = 1, timeout: float = DEADLINE
    ) -> list[dict[str, Any]]:
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
        if self.rate_limited.get(method, 0) > 0:
            # Slack refuses over-limit calls before looking at them: no error of the method's.
            self.rate_limited[method] -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
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

    def _channel_refusal(self, channel: Any) -> dict[str, Any] | None:
        error = self.channel_errors.get(str(channel))
        return None if error is None else {"ok": False, "error": error}

    async def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if refusal := self._channel_refusal(args.get("channel")):
            return refusal
        self._require("chat.postMessage", args, "channel")
        self._record_violations("chat.postMessage", check_message(args))
        metadata = _metadata(args.get("metadata"))
        if metadata is not None:
            self._record_violations("chat.postMessage", check_metadata(metadata))
        channel = str(args.get("channel"))
        ts = self.add_message(
            channel,
            text=str(args.get("text") or ""),
            app_id=APP_ID,
            bot_id=BOT_ID,
            user=BOT_USER,
            metadata=metadata,
            thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
        )
        message = self._message(channel, ts)
        assert message is not None
        if args.get("blocks"):
            message["blocks"] = args["blocks"]
        return {"ok": True, "channel": channel, "ts": ts, "message": copy.deepcopy(message)}

    async def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("chat.postEphemeral", args, "channel", "user")
        self._record_violations("chat.postEphemeral", check_message(args))
        return {"ok": True, "message_ts": self._next_ts()}

    async def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        if refusal := self._channel_refusal(args.get("channel")):
            return refusal
        self._require("chat.update", args, "channel", "ts")
        self._record_violations("chat.update", check_message(args))
        # Keep the stored message as the channel now shows it, for history and replies.
        message = self._message(str(args.get("channel")), str(args.get("ts")))
        if message is not None:
            for key in ("text", "blocks"):
                if key in args:
                    message[key] = args[key]
        return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}

    async def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        """A message's link as Slack spells it (a reply's names its thread). Only a channel
        the stand-in holds messages of can lack the message: tests often ask about an answer
        they never showed the stand-in, and get a link anyway."""
        self._require("chat.getPermalink", args, "channel", "message_ts")
        channel, ts = str(args.get("channel")), str(args.get("message_ts"))
        message = self._message(channel, ts)
        if channel in self.messages and message is None:
            return {"ok": False, "error": "message_not_found"}
        link = f"https://test.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if message is not None and message.get("thread_ts", ts) != ts:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    # Slack's external upload, as slack_sdk's files_upload_v2 makes it: announce the file,
    # POST its bytes to the URL Slack answered with, then complete it into a channel.
    async def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        method = "files.getUploadURLExternal"
        if FILES_SCOPE not in self.scopes:
            return _missing_scope(FILES_SCOPE, self.scopes)
        self._require(method, args, "filename", "length")
        try:
            length = int(str(args.get("length")))
        except ValueError:
            length = 0
        if length < 1:
            self._record_violations(
                method, [f"length is not a positive integer: {args.get('length')!r}"]
            )
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0FILE{next(self._ts):04d}"
        self._announced[file_id] = length
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
            "file_id": file_id,
        }

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the file's raw bytes as the body (what slack_sdk sends; Slack
        takes a multipart form too, which the stand-in does not). No token: the URL is the
        credential. Slack answers in plain text, and slack_sdk looks only at the status."""
        file_id = request.match_info["file_id"]
        body = await request.read()
        announced = self._announced.get(file_id)
        if announced is None:
            self._record_violations("upload", [f"{file_id} was never announced"])
            return web.Response(status=404, text="file_not_found")
        if len(body) != announced:
            self._record_violations(
                "upload", [f"{file_id}: {len(body)} bytes, {announced} announced"]
            )
        self.uploads[file_id] = body
        self._changed.set()
        return web.Response(text=f"OK - {len(body)}")

    async def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        method = "files.completeUploadExternal"
        if FILES_SCOPE not in self.scopes:
            return _missing_scope(FILES_SCOPE, self.scopes)
        if refusal := self._channel_refusal(args.get("channel_id")):
            return refusal
        self._require(method, args, "files", "channel_id")
        files = _maybe_json(args.get("files"))
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            self._record_violations(method, [f"files is not a list of objects: {files!r}"])
            return {"ok": False, "error": "invalid_arguments"}
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None and not _is_ts(str(thread_ts)):
            self._record_violations(method, [f"thread_ts is not a timestamp: {thread_ts!r}"])
        completed = []
        for f in files:
            file_id = str(f.get("id"))
            if file_id not in self.uploads:
                known = "not uploaded yet" if file_id in self._announced else "unknown"
                self._record_violations(method, [f"file {file_id!r} is {known}"])
                continue
            data = self.uploads[file_id]
            if not data.startswith(PNG):
                self._record_violations(method, [f"file {file_id} is not a PNG"])
            title = f.get("title")
            completed.append({"id": file_id, "title": title})
            self.shared.append(
                {
                    "id": file_id,
                    "title": title,
                    "channel_id": args.get("channel_id"),
                    "initial_comment": args.get("initial_comment"),
                    "thread_ts": thread_ts,
                    "bytes": data,
                }
            )
        self._changed.set()
        return {"ok": True, "files": completed}

    async def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        method = "conversations.history"
        refusal = self._check_readable(method, args)
        if refusal is not None:
            return refusal
        window = self._window(method, args)
        top_level = [
            m
            for m in self.messages[str(args["channel"])]
            if m.get("thread_ts", m["ts"]) == m["ts"] and window(m["ts"])
        ]
        newest_first = sorted(top_level, key=lambda m: Decimal(m["ts"]), reverse=True)
        return self._page(method, args, [], newest_first)

    async def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        method = "conversations.replies"
        self._require(method, args, "ts")
        refusal = self._check_readable(method, args)
        if refusal is not None:
            return refusal
        channel = str(args["channel"])
        asked = self._message(channel, str(args.get("ts")))
        if asked is None:
            return {"ok": False, "error": "thread_not_found"}
        # Any message of a thread names the whole thread; an unthreaded one, itself.
        root = asked.get("thread_ts", asked["ts"])
        window = self._window(method, args)
        parent = self._message(channel, root)
        replies = [
            m
            for m in self.messages[channel]
            if m.get("thread_ts") == root and m["ts"] != root and window(m["ts"])
        ]
        oldest_first = sorted(replies, key=lambda m: Decimal(m["ts"]))
        return self._page(method, args, [parent] if parent else [], oldest_first)

    def _check_readable(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's refusal to read the channel's messages, if it would refuse."""
        self._require(method, args, "channel")
        channel = str(args.get("channel") or "")
        needed = HISTORY_SCOPES.get(channel[:1])
        if needed is not None and needed not in self.scopes:
            return _missing_scope(needed, self.scopes)
        if channel not in self.messages:
            return {"ok": False, "error": "channel_not_found"}
        return None

    def _window(self, method: str, args: dict[str, Any]) -> Callable[[str], bool]:
        """Whether a ts is within oldest..latest; the bounds count only when inclusive."""
        oldest = self._decimal(method, args, "oldest", Decimal(0))
        latest = self._decimal(method, args, "latest", Decimal("Infinity"))
        if self._flag(method, args, "inclusive"):
            return lambda ts: oldest <= Decimal(ts) <= latest
        return lambda ts: oldest < Decimal(ts) < latest

    def _page(
        self,
        method: str,
        args: dict[str, Any],
        head: list[dict[str, Any]],
        items: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """One page of `head + items`: `head` (a thread's parent) only on the first page.
        The cursor names the first message of the next page by its ts, so that messages
        posted while the caller pages neither repeat nor go missing."""
        limit = self._limit(method, args)
        start = 0
        cursor = args.get("cursor")
        if cursor:
            try:
                after = base64.urlsafe_b64decode(str(cursor)).decode().removeprefix("next_ts:")
                start = next(i for i, m in enumerate(items) if m["ts"] == after)
            except (binascii.Error, UnicodeDecodeError, StopIteration):
                return {"ok": False, "error": "invalid_cursor"}
            head = []
        page = (head + items[start:])[:limit]
        rest = items[start + limit - len(head) :]
        next_cursor = (
            base64.urlsafe_b64encode(f"next_ts:{rest[0]['ts']}".encode()).decode() if rest else ""
        )
        show_metadata = self._flag(method, args, "include_all_metadata")
        return {
            "ok": True,
            "messages": [_shown(m, metadata=show_metadata) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _flag(self, method: str, args: dict[str, Any], name: str) -> bool:
        # slack_sdk sends booleans as 1/0 in a query string; other clients as true/false.
        value = args.get(name)
        if isinstance(value, bool) or value is None:
            return bool(value)
        text = str(value).strip().lower()
        if text in ("1", "true"):
            return True
        if text not in ("", "0", "false"):
            self._record_violations(method, [f"{name} is not a boolean: {value!r}"])
        return False

    def _decimal(self, method: str, args: dict[str, Any], name: str, default: Decimal) -> Decimal:
        value = args.get(name)
        if value is None or value == "":
            return default
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            self._record_violations(method, [f"{name} is not a timestamp: {value!r}"])
            return default
        return number

    def _limit(self, method: str, args: dict[str, Any]) -> int:
        value = args.get("limit")
        if value is None or value == "":
            return DEFAULT_LIMIT
        try:
            limit = int(str(value))
        except ValueError:
            limit = 0
        if limit < 1:
            self._record_violations(method, [f"limit is not a positive integer: {value!r}"])
            return DEFAULT_LIMIT
        return min(limit, MAX_LIMIT)  # Slack caps what it returns, it does not refuse

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

    # Slack's assistant surface (Bolt's AsyncAssistant calls these in an assistant thread).
    async def _assistant_threads_setStatus(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("assistant.threads.setStatus", args, "channel_id", "thread_ts")
        return {"ok": True}

    async def _assistant_threads_setSuggestedPrompts(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("assistant.threads.setSuggestedPrompts", args, "channel_id", "prompts")
        prompts = _maybe_json(args.get("prompts")) or []
        if not 1 <= len(prompts) <= 4:
            self.violations.append("assistant.threads.setSuggestedPrompts: 1 to 4 prompts")
        return {"ok": True}

    async def _assistant_threads_setTitle(self, args: dict[str, Any]) -> dict[str, Any]:
        self._require("assistant.threads.setTitle", args, "channel_id", "thread_ts", "title")
        return {"ok": True}

    async def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """A public channel's name (channels:read), as the digest's chart shows it: the
        one `channel_names` gives, else the id in lower case."""
        self._require("conversations.info", args, "channel")
        channel = str(args.get("channel") or "")
        if channel.startswith("C") and "channels:read" not in self.scopes:
            return _missing_scope("channels:read", self.scopes)
        name = self.channel_names.get(channel, channel.lower())
        return {"ok": True, "channel": {"id": channel, "name": name, "is_channel": True}}

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


def _missing_scope(needed: str, scopes: list[str]) -> dict[str, Any]:
    return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(scopes)}


def _maybe_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _metadata(value: Any) -> Any:
    # slack_sdk sends metadata as a JSON object; a form-encoded post, as a JSON string.
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # check_metadata says what is wrong with it


def _is_ts(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _shown(message: dict[str, Any], *, metadata: bool) -> dict[str, Any]:
    """A message as a read method returns it: a copy, so that the caller cannot change the
    store, and without metadata unless the caller asked for all of it."""
    shown = copy.deepcopy(message)
    if not metadata:
        shown.pop("metadata", None)
    return shown


def check_metadata(metadata: Any) -> list[str]:
    """What is wrong with a message's metadata: Slack's own shape for any event, and
    docs/answer-metadata.schema.json for an AI answer's."""
    if not isinstance(metadata, dict):
        return [f"metadata is not an object: {metadata!r}"]
    errors = []
    if not isinstance(metadata.get("event_type"), str):
        errors.append("metadata.event_type is not a string")
    if not isinstance(metadata.get("event_payload"), dict):
        errors.append("metadata.event_payload is not an object")
    if metadata.get("event_type") == ANSWER_EVENT:
        errors += [
            f"metadata{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
            for e in sorted(_answer_validator().iter_errors(metadata), key=_error_place)
        ]
    return errors


def _error_place(error: ValidationError) -> list[str]:
    return [str(p) for p in error.absolute_path]


@functools.cache
def _answer_validator() -> Draft202012Validator:
    # Read when first needed: the stand-in serves everything else without the file.
    schema = json.loads(ANSWER_METADATA_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
