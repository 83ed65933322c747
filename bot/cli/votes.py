"""`feedback-bot votes export`: every vote, one row each, for analysis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import vote_export
from bot.settings import Settings
from bot.vote_export import VoteFilter
from storage import Store


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    votes = sub.add_parser("votes", help="votes, for analysis").add_subparsers(
        required=True, metavar="action"
    )
    export_ = votes.add_parser(
        "export", parents=[common], help="every vote, one row each, as CSV or JSON Lines"
    )
    export_.add_argument("--since", metavar="DATE", help="cast at or after (2026-11-01, UTC)")
    export_.add_argument("--until", metavar="DATE", help="cast before")
    export_.add_argument("--channel", help="only this channel's answers")
    export_.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export_.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    export_.set_defaults(func=export, existing_db=True)


async def export(settings: Settings, args: argparse.Namespace) -> int:
    where = VoteFilter.parse(args.since, args.until, args.channel)
    store = await Store.open(settings.feedback_db)
    out = args.output.open("w", newline="") if args.output else sys.stdout
    count = 0
    try:
        if args.format == "csv":
            out.write(vote_export.csv_header())
        async for row in vote_export.rows(store, where):
            out.write(
                vote_export.csv_row(row)
                if args.format == "csv"
                else vote_export.jsonl(row).decode()
            )
            count += 1
    finally:
        await store.close()
        if args.output:
            out.close()
    if args.output:
        print(f"{count} votes written to {args.output}", file=sys.stderr)
    return 0
