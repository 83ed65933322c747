"""`feedback-bot run` and `feedback-bot worker`: the long-running processes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable

from bot.app import FeedbackBot
from bot.config.settings import Settings
from bot.sending import DeliveryProcess
from bot.support.logs import Redactor, setup_logging

log = logging.getLogger("bot")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    # They set up their own logging, sharing the redactor with the bot.
    run_ = sub.add_parser(
        "run", parents=[common], help="run the bot (Socket Mode if SLACK_APP_TOKEN is set)"
    )
    run_.set_defaults(func=run, own_logging=True)
    worker_ = sub.add_parser(
        "worker",
        parents=[common],
        help="send deliveries in a process of its own (see FEEDBACK_WORKER)",
    )
    worker_.set_defaults(func=worker, existing_db=True, own_logging=True)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    return await serve(settings, FeedbackBot)


async def worker(settings: Settings, args: argparse.Namespace) -> int:
    return await serve(settings, DeliveryProcess)


async def serve(settings: Settings, kind: Callable[..., FeedbackBot | DeliveryProcess]) -> int:
    """Start the bot (or the worker alone), run until SIGTERM or Ctrl-C, stop it cleanly."""
    redactor = Redactor(settings.secrets())
    setup_logging(settings.log_level, redactor, settings.feedback_log_format)
    process = kind(settings, redactor=redactor)
    # Before start(): a SIGTERM while it runs (`docker stop` during start-up; the HTTP server
    # may already be listening) must stop the process cleanly once it has started, not kill
    # it with the signal's default action.
    signalled = stop_signals()
    await process.start()
    try:
        await signalled.wait()
        # Through logging, not print: with the output pipe gone (the supervisor died), print
        # raises and the database thread would keep the process alive.
        log.info("shutting down")
    finally:
        await process.stop()
    return 0


def stop_signals() -> asyncio.Event:
    """An event set by SIGTERM or Ctrl-C, handled from now on."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
