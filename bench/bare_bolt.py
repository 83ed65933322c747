"""The baseline: a bare Bolt AsyncApp on Bolt's own aiohttp app, whose listeners only ack.

python -m bench.bare_bolt <port-of-slack-stand-in>     # prints "listening on …:N"
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


async def serve(slack_port: str) -> None:
    app = AsyncApp(
        token=os.environ["SLACK_BOT_TOKEN"],
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=AsyncWebClient(
            token=os.environ["SLACK_BOT_TOKEN"], base_url=f"http://127.0.0.1:{slack_port}/api/"
        ),
    )

    @app.event("reaction_added")
    async def added() -> None:
        return None

    @app.event("reaction_removed")
    async def removed() -> None:
        return None

    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
