"""Stand-in Contextual, AquilaX, LangSmith and Langfuse servers.

Every request is validated against the vendored OpenAPI spec (openapi-core); one that does
not conform is answered 400 and recorded in `violations`, which tests assert stays empty.
A script of behaviours makes the server fail on demand: an HTTP status (with Retry-After),
a hang longer than the client's timeout, or no listener at all (connection refused); and
answer slowly but successfully (`slow`, or a per-request `delay` function); or apply the
request and answer 200 with a body the spec does not describe (`answer`: given bytes, or a
huge body streamed a chunk at a time, `streamed` recording how much of it the client took
before it hung up).

LangSmith and Langfuse hold what they were sent (`held`): a feedback or score per id, which
a create makes (Langfuse: or replaces), an update changes (LangSmith: 404 for an unknown id,
as the real one answers) and a delete takes away (404 when there is none).

It also models what matters for ordering: a request is applied when its processing ends
(not when it arrives), and keeps being processed after the client went away (a crash), up
to the provider's own request timeout. `applied` records the resulting order, and two
requests for one slot applied while both were in flight is a violation: the outcome would
depend on which finishes last. (A request the provider dropped, e.g. one that hung past the
timeout, changes nothing, so it may overlap the retry that follows the client's timeout.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.contrib.aiohttp import AIOHTTPOpenAPIWebRequest

from tests.standins import DEADLINE

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
CHUNK = 64 * 1024  # of a streamed answer


@dataclass
class Received:
    """One request that conformed to the spec."""

    method: str
    path: str
    path_params: dict[str, Any]
    query: dict[str, str]
    body: dict[str, Any] | None
    headers: dict[str, str]
    at: float


@dataclass
class Behaviour:
    status: int = 200
    retry_after: str | None = None
    hang: float = 0.0
    body: Any = None
    slow: float = 0.0  # answer successfully after this long
    headers: dict[str, str] = field(default_factory=dict)  # on a scripted failure
    answer: bytes | None = None  # a 200 with this body instead of the spec's
    stream: int = 0  # a 200 with a body of this many bytes, streamed


@dataclass
class Streamed:
    """A huge answer: how many bytes of it were written before the client went away."""

    size: int
    written: int = 0
    finished: bool = False  # all of it was written
    ended: bool = False  # written, or the client hung up


@dataclass
class Attempt:
    """One conforming request for one slot: when it arrived and when its processing ended
    (time.time(), comparable across processes); `status` is what it asked for."""

    slot: str
    status: str
    start: float
    end: float = 0.0
    applied: bool = False


@dataclass
class ProviderStandIn:
    name: str  # "contextual" | "aquilax" | "langsmith" | "langfuse" | "agent" (Contextual's query)
    api_key: str  # Langfuse: "public:secret"
    received: list[Received] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # scripted failures served
    script: deque[Behaviour] = field(default_factory=deque)
    # The provider's own request timeout: processing never lasts longer than this.
    timeout: float = 10.0
    # Seconds to spend on a request (after the script), e.g. to slow down one status.
    delay: Callable[[str, str], float] | None = None  # (slot, status) -> seconds
    attempts: list[Attempt] = field(default_factory=list)
    streamed: list[Streamed] = field(default_factory=list)
    # LangSmith's feedback and Langfuse's scores, by id, as the provider holds them now.
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The agent: what it answers (Markdown), and the documents it retrieved, each
    # (doc_name, page or None, url or None, cited).
    reply: str = "The refund window is **30 days**."
    retrievals: list[tuple[str, int | None, str | None, bool]] = field(default_factory=list)
    answered: list[dict[str, Any]] = field(default_factory=list)  # each answer it gave
    queries: list[dict[str, Any]] = field(default_factory=list)  # Contextual: agent queries
    query_script: deque[Behaviour] = field(default_factory=deque)
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def prefix(self) -> str:
        return "/v1" if self.name in ("contextual", "agent") else ""

    @property
    def spec_file(self) -> Path:
        if self.name == "agent":
            return CONTRACTS / "contextual-query.openapi.yaml"
        kind = "scores" if self.name == "langfuse" else "feedback"
        return CONTRACTS / f"{self.name}-{kind}.openapi.yaml"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def __post_init__(self) -> None:
        self.openapi = self._load(self.spec_file)
        # Contextual's base URL serves its agents' queries too (Ask the AI): checked against
        # their own spec, scripted apart (`query_script`), recorded in `queries`.
        self.query_openapi = (
            self._load(CONTRACTS / "contextual-query.openapi.yaml")
            if self.name == "contextual"
            else None
        )

    def _load(self, spec_file: Path) -> OpenAPI:
        spec = yaml.safe_load(spec_file.read_text())
        # openapi-core matches scheme://host (no port) + path against the servers list.
        spec["servers"] = [{"url": f"http://127.0.0.1{self.prefix}"}]
        return OpenAPI.from_dict(spec)

    # ------------------------------------------------------------ scripting

    def fail(
        self,
        status: int,
        times: int = 1,
        retry_after: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        for _ in range(times):
            self.script.append(
                Behaviour(
                    status=status, retry_after=retry_after, body=body, headers=dict(headers or {})
                )
            )

    def answer(self, body: bytes | None = None, *, size: int = 0, times: int = 1) -> None:
        """Apply the next requests, answering 200 with `body`, or with `size` bytes of filler
        streamed (the stand-in never holds more than a chunk of it)."""
        for _ in range(times):
            self.script.append(Behaviour(answer=body, stream=size))

    def hang(self, seconds: float, times: int = 1) -> None:
        for _ in range(times):
            self.script.append(Behaviour(hang=seconds))

    def slow(self, seconds: float, times: int = 1) -> None:
        """Answer the next requests successfully, after `seconds`."""
        for _ in range(times):
            self.script.append(Behaviour(slow=seconds))

    # ------------------------------------------------------------ lifecycle

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening: the next request gets 'connection refused'."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout: float = DEADLINE) -> list[Received]:
        """Wait until `count` conforming requests have been applied."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    async def wait_for_attempts(self, count: int, timeout: float = DEADLINE) -> list[Attempt]:
        """Wait until `count` conforming requests have arrived, whatever becomes of them:
        a send the bot's database calls in flight may not have reached the provider yet."""
        async with asyncio.timeout(timeout):
            while len(self.attempts) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.attempts

    # ------------------------------------------------------------ serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.query_openapi is not None and request.path.endswith("/query"):
            return await self._query(request, body, self.query_openapi)
        try:
            result = self.openapi.unmarshal_request(
                AIOHTTPOpenAPIWebRequest(request, body=body or None)
            )
            errors = list(result.errors)
        except Exception as e:  # path not found and similar
            errors = [e]
        if errors:
            text = "; ".join(_describe(e) for e in errors)
            self.violations.append(f"{request.method} {request.path_qs}: {text}")
            return web.Response(status=400, text=f"request does not match the spec: {text}")
        behaviour = self.script.popleft() if self.script else Behaviour()
        slot, status = self._slot(request, body)
        attempt = Attempt(slot, status, time.time())
        self.attempts.append(attempt)
        self._arrived.set()
        # Shielded: like a real server, processing goes on when the client hangs up.
        return await asyncio.shield(self._process(request, body, behaviour, attempt))

    async def _query(
        self, request: web.Request, body: bytes, openapi: OpenAPI
    ) -> web.StreamResponse:
        """An agent's query at Contextual's base URL: validated, scripted, answered."""
        try:
            result = openapi.unmarshal_request(AIOHTTPOpenAPIWebRequest(request, body=body or None))
            errors = list(result.errors)
        except Exception as e:
            errors = [e]
        if errors:
            text = "; ".join(_describe(e) for e in errors)
            self.violations.append(f"{request.method} {request.path_qs}: {text}")
            return web.Response(status=400, text=f"request does not match the spec: {text}")
        behaviour = self.query_script.popleft() if self.query_script else Behaviour()
        query = json.loads(body)
        self.queries.append(query)
        self._arrived.set()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"message": "invalid credentials"}, status=401)
        if behaviour.hang:
            await asyncio.sleep(behaviour.hang)
            return web.Response(status=504)
        if behaviour.status != 200:
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            return web.json_response(
                self._error_body(behaviour.status), status=behaviour.status, headers=headers
            )
        if behaviour.slow:
            await asyncio.sleep(behaviour.slow)
        return web.json_response(self.agent_answer(query))

    async def wait_for_queries(self, count: int, timeout: float = DEADLINE) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.queries) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.queries

    async def _process(
        self, request: web.Request, body: bytes, behaviour: Behaviour, attempt: Attempt
    ) -> web.StreamResponse:
        try:
            return await self._serve(request, body, behaviour, attempt)
        finally:
            attempt.end = time.time()

    async def _serve(
        self, request: web.Request, body: bytes, behaviour: Behaviour, attempt: Attempt
    ) -> web.StreamResponse:
        if behaviour.hang:
            # Longer than the client waits: the client gives up; count it as lost.
            await asyncio.sleep(min(behaviour.hang, self.timeout))
            self.rejected.append((504, request.path))
            return web.Response(status=504)
        if not self._authorized(request):
            self.rejected.append((401, request.path))
            return web.json_response({"code": 401, "message": "invalid credentials"}, status=401)
        if behaviour.status != 200:
            self.rejected.append((behaviour.status, request.path))
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            headers |= behaviour.headers
            return web.json_response(
                behaviour.body or self._error_body(behaviour.status),
                status=behaviour.status,
                headers=headers,
            )
        seconds = behaviour.slow + (self.delay(attempt.slot, attempt.status) if self.delay else 0)
        if seconds:
            if seconds >= self.timeout:
                await asyncio.sleep(self.timeout)
                self.rejected.append((504, request.path))
                return web.Response(status=504)
            await asyncio.sleep(seconds)
        missing = self._apply(request, body)
        if missing:
            self.rejected.append((404, request.path))
            return web.json_response({"detail": "Not Found"}, status=404)
        attempt.applied = True
        self.received.append(
            Received(
                method=request.method,
                path=request.path,
                path_params=dict(request.match_info),
                query=dict(request.query),
                body=json.loads(body) if body else None,
                headers=dict(request.headers),
                at=asyncio.get_running_loop().time(),
            )
        )
        self._arrived.set()
        if behaviour.stream:
            return await self._stream(request, behaviour.stream)
        if behaviour.answer is not None:
            return web.Response(body=behaviour.answer, content_type="application/json")
        if self.name == "contextual":
            return web.json_response({"feedback_id": str(uuid.uuid4())})
        if self.name == "agent":
            return web.json_response(self.agent_answer(json.loads(body)))
        if self.name == "langfuse":
            if request.method == "DELETE":
                return web.Response(status=204)
            return web.json_response({"id": json.loads(body)["id"]})
        if self.name == "langsmith":
            if request.method == "DELETE":
                return web.json_response({})
            data = json.loads(body) if body else {}
            feedback_id = request.match_info.get("tail", "").rsplit("/", 1)[-1]
            return web.json_response({"id": data.get("id", feedback_id), "key": "user_feedback"})
        return web.Response(status=200)

    def _apply(self, request: web.Request, body: bytes) -> bool:
        """Change what LangSmith or Langfuse holds; True when the request names a feedback or
        score that is not there (a LangSmith update, a delete), which the provider answers 404."""
        if self.name not in ("langsmith", "langfuse"):
            return False
        data = json.loads(body) if body else {}
        if request.method == "POST":
            self.held[data["id"]] = data  # Langfuse upserts; LangSmith creates
            return False
        feedback_id = request.path.rsplit("/", 1)[-1]
        if feedback_id not in self.held:
            return True
        if request.method == "DELETE":
            del self.held[feedback_id]
        else:
            self.held[feedback_id] = {**self.held[feedback_id], **data}
        return False

    async def _stream(self, request: web.Request, size: int) -> web.StreamResponse:
        streamed = Streamed(size)
        self.streamed.append(streamed)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = size
        await response.prepare(request)
        chunk = b"x" * CHUNK
        try:
            while streamed.written < size:
                # Each write waits while the socket's buffers are full: what the client does
                # not read is not written.
                piece = chunk[: size - streamed.written]
                await response.write(piece)
                streamed.written += len(piece)
            await response.write_eof()
            streamed.finished = True
        except ConnectionError:
            pass  # the client hung up: the rest is never written
        finally:
            streamed.ended = True
        return response

    def _slot(self, request: web.Request, body: bytes) -> tuple[str, str]:
        """(the slot a conforming request is for, the status it asks for)."""
        if self.name == "contextual":
            data = json.loads(body)
            return f"{data['message_id']}/{data.get('content_id', '')}", data["feedback"]
        if self.name == "agent":
            data = json.loads(body)
            return data.get("conversation_id", "new"), data["messages"][-1]["content"]
        if self.name in ("langsmith", "langfuse"):
            if request.method == "DELETE":
                return request.path.rsplit("/", 1)[-1], "removed"
            data = json.loads(body)
            slot = data.get("id") or request.path.rsplit("/", 1)[-1]
            return slot, data["value"]
        _, request_id, verdict = request.path.rsplit("/", 2)
        return request_id, verdict

    def _authorized(self, request: web.Request) -> bool:
        if self.name in ("contextual", "agent"):
            return request.headers.get("Authorization") == f"Bearer {self.api_key}"
        if self.name == "langsmith":
            return request.headers.get("X-API-Key") == self.api_key
        if self.name == "langfuse":
            public, _, secret = self.api_key.partition(":")
            pair = base64.b64encode(f"{public}:{secret}".encode()).decode()
            return request.headers.get("Authorization") == f"Basic {pair}"
        return request.headers.get("X-AX-KEY") == self.api_key

    def _error_body(self, status: int) -> Any:
        if self.name == "contextual" and status == 422:
            return {
                "detail": [
                    {"loc": ["body", "message_id"], "msg": "unknown message", "type": "value_error"}
                ]
            }
        return {"code": status, "message": f"stand-in failure {status}"}

    # ------------------------------------------------------------ helpers for assertions

    async def ended(self) -> bool:
        """Every request that arrived has been processed to its end, whether or not its
        client is still there (a condition for wait_until)."""
        return all(a.end for a in self.attempts)

    def overlaps(self) -> list[str]:
        """Two requests for one slot in flight at once, both applied: the provider's final
        state depended on which one finished last."""
        found = []
        by_slot: dict[str, list[Attempt]] = {}
        for a in self.attempts:
            by_slot.setdefault(a.slot, []).append(a)
        for slot, attempts in by_slot.items():
            for i, a in enumerate(attempts):
                for b in attempts[i + 1 :]:
                    a_end, b_end = a.end or time.time(), b.end or time.time()
                    if a.applied and b.applied and a.start < b_end and b.start < a_end:
                        found.append(f"{slot}: {a.status} and {b.status} were in flight at once")
        return found

    def applied(self) -> dict[str, list[str]]:
        """Per slot, the statuses the provider applied, in the order it applied them."""
        out: dict[str, list[str]] = {}
        for a in sorted((a for a in self.attempts if a.applied), key=lambda a: a.end):
            out.setdefault(a.slot, []).append(a.status)
        return out

    def statuses(self) -> list[str]:
        """What each conforming request asked for, in arrival order."""
        if self.name == "contextual":
            return [r.body["feedback"] for r in self.received if r.body]
        if self.name in ("langsmith", "langfuse"):
            return [r.body["value"] if r.body else "removed" for r in self.received]
        return [r.path.rsplit("/", 1)[1] for r in self.received]

    def agent_answer(self, query: dict[str, Any]) -> dict[str, Any]:
        """A QueryResponse: the reply, the retrievals, attributions for those cited; the
        conversation continued, or a new one."""
        contents = [
            {
                "content_id": str(uuid.uuid4()),
                "doc_id": str(uuid.uuid4()),
                "doc_name": name,
                "format": "pdf",
                "type": "text",
                "number": i + 1,
                **({"page": page} if page is not None else {}),
                **({"url": url} if url is not None else {}),
            }
            for i, (name, page, url, _) in enumerate(self.retrievals)
        ]
        cited = [c["content_id"] for c, r in zip(contents, self.retrievals, strict=True) if r[3]]
        answer = {
            "conversation_id": query.get("conversation_id") or str(uuid.uuid4()),
            "message_id": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": self.reply},
            "retrieval_contents": contents,
            "attributions": [{"content_ids": cited, "start_idx": 0, "end_idx": 10}]
            if cited
            else [],
        }
        self.answered.append(answer)
        return answer

    def held_values(self) -> dict[str, str]:
        """LangSmith, Langfuse: per feedback or score id, the verdict it holds now."""
        return {k: v["value"] for k, v in self.held.items()}


def _describe(error: Exception) -> str:
    causes = getattr(error, "schema_errors", None) or getattr(error, "__cause__", None)
    if isinstance(causes, list | tuple):
        return f"{error}: " + ", ".join(str(getattr(c, "message", c)) for c in causes)
    if causes is not None:
        return f"{error}: {getattr(causes, 'message', causes)}"
    return str(error)
