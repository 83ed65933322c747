"""A minimal stand-in for Slack's auth.test and for Contextual, AquilaX and Langfuse, that answers at once and
records when each feedback arrived. It runs in its own process so that its work does not
share a core with the load generator. (The contract-checking stand-ins live in tests/.)

    python -m bench.standin      # prints "port N", serves until killed
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

from aiohttp import web

arrivals: list[tuple[str, str, float]] = []  # (provider id, status, time.time())
posts: list[tuple[str, float]] = []  # the thread of each chat.postMessage in one, and when
agent_delay = [0.0]  # how long the agent thinks before it answers a query


async def auth_test(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "ok": True,
            "team_id": "T0BENCH01",
            "user_id": "UBENCHBOT",
            "bot_id": "BBENCHBOT",
            "team": "bench",
            "user": "bot",
            "url": "https://bench.slack.com/",
        }
    )


async def slack_other(request: web.Request) -> web.Response:
    if request.match_info["method"] == "chat.postMessage":
        body = json.loads(await request.read() or b"{}")
        if body.get("thread_ts"):
            posts.append((body["thread_ts"], time.time()))
    return web.json_response({"ok": True, "ts": f"{time.time():.6f}", "channel": "C0BENCH01"})


async def query(request: web.Request) -> web.Response:
    """A Contextual agent that answers every question the same way, after agent_delay."""
    await request.read()
    await asyncio.sleep(agent_delay[0])
    return web.json_response(
        {
            "conversation_id": str(uuid.uuid4()),
            "message_id": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": "The refund window is **30 days**."},
            "retrieval_contents": [],
        }
    )


async def set_agent_delay(request: web.Request) -> web.Response:
    agent_delay[0] = float((await request.json())["seconds"])
    return web.json_response({"ok": True})


async def get_posts(request: web.Request) -> web.Response:
    return web.json_response(posts)


async def contextual(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    arrivals.append((body["message_id"], body["feedback"], time.time()))
    return web.json_response({"feedback_id": str(uuid.uuid4())})


async def aquilax(request: web.Request) -> web.Response:
    arrivals.append((request.match_info["request_id"], request.match_info["status"], time.time()))
    return web.Response()


async def langfuse(request: web.Request) -> web.Response:
    body = json.loads(await request.read())
    # The bench gives an answer's Langfuse trace the hex of its Contextual message id.
    arrivals.append((str(uuid.UUID(body["traceId"])), body["value"], time.time()))
    return web.json_response({"id": body["id"]})


async def get_arrivals(request: web.Request) -> web.Response:
    return web.json_response(arrivals)


async def reset(request: web.Request) -> web.Response:
    arrivals.clear()
    posts.clear()
    return web.json_response({"ok": True})


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/api/auth.test", auth_test)
    app.router.add_post("/api/{method}", slack_other)
    app.router.add_post("/v1/agents/{agent_id}/feedback", contextual)
    app.router.add_get("/api/v2/ai/feedback/{request_id}/{status}", aquilax)
    app.router.add_post("/api/public/scores", langfuse)
    app.router.add_post("/v1/agents/{agent_id}/query", query)
    app.router.add_post("/_agent_delay", set_agent_delay)
    app.router.add_get("/_posts", get_posts)
    app.router.add_get("/_arrivals", get_arrivals)
    app.router.add_post("/_reset", reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"port {runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
