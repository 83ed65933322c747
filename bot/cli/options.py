"""What several commands share: argument types and the store around one unit of work."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.admin.grammar import MAX_ID, delivery_id, number
from bot.answers.admin import TIME_FORMAT, BadQuery, check_channel, parse_time
from bot.config.settings import Settings
from storage import Store

T = TypeVar("T")


def limit(raw: str) -> int:
    value = number(raw, MAX_ID)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"`{raw}` is not a number from 1 to {MAX_ID}")
    return value


def delivery_arg(raw: str) -> int:
    try:
        return delivery_id(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{e} (a whole number, as `deliveries list` shows)"
        ) from None


# The help of every option that takes a time.
TIME_HELP = TIME_FORMAT


def time_arg(raw: str) -> float:
    """--since and --until, everywhere: one format (bot.answers.admin.parse_time)."""
    try:
        return parse_time(raw, "the time")
    except BadQuery:
        raise argparse.ArgumentTypeError(f"`{raw}` is not {TIME_HELP}") from None


def channel_arg(raw: str) -> str:
    try:
        return check_channel(raw.strip())
    except BadQuery as e:
        raise argparse.ArgumentTypeError(str(e)) from None


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open FEEDBACK_DB, do `work`, close it whatever happens."""
    store = await Store.open(settings.feedback_db)
    try:
        return await work(store)
    finally:
        await store.close()
