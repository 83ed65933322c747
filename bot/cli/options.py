"""What several commands share: argument types and the store around one unit of work."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.feedback_command.grammar import MAX_ID, delivery_id, number
from bot.settings import Settings
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


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open FEEDBACK_DB, do `work`, close it whatever happens."""
    store = await Store.open(settings.feedback_db)
    try:
        return await work(store)
    finally:
        await store.close()
