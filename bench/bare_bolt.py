"""The baseline: a bare Bolt AsyncApp whose listeners only ack, on Bolt's own aiohttp app
(HTTP) or on Bolt's own Socket Mode adapter.

python -m bench.bare_bolt <slack-web-api-url>            # prints "listening on …:N"
python -m bench.bare_bolt <slack-web-api-url> --socket   # prints "connected" (SLACK_APP_TOKEN)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


async def serve(api_url: str, socket: bool) -> None:
    app = AsyncApp(
        token=os.environ["SLACK_BOT_TOKEN"],
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=api_url),
    )

    @app.event("reaction_added")
    async def added() -> None:
        return None

    @app.event("reaction_removed")
    async def removed() -> None:
        return None

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if socket:
        handler = AsyncSocketModeHandler(app, os.environ["SLACK_APP_TOKEN"])
        await handler.connect_async()
        print("connected", flush=True)
        await stop.wait()
        await handler.close_async()
        return
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], "--socket" in sys.argv[2:]))
