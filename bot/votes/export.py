"""Votes leave the bot for analysis: one row per vote, with its answer's ids, as CSV or JSON
Lines, streamed page by page (`feedback-bot votes export`, `GET /v1/votes`)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.answers.admin import BadQuery, check_channel, parse_time
from storage import Store

PAGE = 5_000
# One row per vote, in this order. `origin` says where it came from: `reaction:<emoji>`,
# `button`, or the form's button; `orphaned` is true once its answer was removed.
FIELDS = (
    "vote_id",
    "channel",
    "ts",
    "provider",
    "agent_id",
    "message_id",
    "request_id",
    "org",
    "group",
    "content_id",
    "user",
    "status",
    "origin",
    "explanation",
    "category",
    "cast_at",
    "withdrawn_at",
    "orphaned",
    # Added with LangSmith and Langfuse: last, so that readers by position keep working.
    "run_id",
    "trace_id",
    "observation_id",
    # Added with answers of several targets: all of them, `provider:id` separated by spaces
    # (the provider columns above are the target the vote's slot goes to first).
    "targets",
)


@dataclass(frozen=True, slots=True)
class VoteFilter:
    since: float | None = None
    until: float | None = None
    channel: str | None = None

    @classmethod
    def parse(
        cls, since: str | None = None, until: str | None = None, channel: str | None = None
    ) -> VoteFilter:
        """From the words an operator types: times as `parse_time` takes them (7d, 2026-11-01,
        2026-11-01T09:30), and a channel id."""
        return cls.between(
            parse_time(since, "since") if since is not None else None,
            parse_time(until, "until") if until is not None else None,
            channel,
        )

    @classmethod
    def between(
        cls, since: float | None = None, until: float | None = None, channel: str | None = None
    ) -> VoteFilter:
        if since is not None and until is not None and until <= since:
            raise BadQuery("until must come after since")
        return cls(since, until, check_channel(channel) if channel is not None else None)


async def rows(store: Store, where: VoteFilter) -> AsyncIterator[dict[str, Any]]:
    """Every vote that matches, oldest first, one page in memory at a time."""
    after = 0
    while True:
        page = await store.export_page(after, where.since, where.until, where.channel, PAGE)
        for values in page:
            row = dict(zip(FIELDS, values, strict=True))
            row["content_id"] = row["content_id"] or None
            row["orphaned"] = bool(row["orphaned"])
            for key in ("cast_at", "withdrawn_at"):
                if row[key] is not None:
                    row[key] = datetime.fromtimestamp(row[key], UTC).isoformat()
            yield row
        if len(page) < PAGE:
            return
        after = page[-1][0]


def jsonl(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


def csv_header() -> str:
    return _csv_line(FIELDS)


def csv_row(row: dict[str, Any]) -> str:
    return _csv_line([_csv_value(row[f]) for f in FIELDS])


def _csv_value(value: Any) -> Any:
    # As JSON writes them: csv would write Python's True/False, and "" for null.
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _csv_line(values: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()
