"""`feedback-bot votes export`: every vote, one row each, for analysis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.options import TIME_HELP, channel_arg, time_arg
from bot.config.settings import Settings
from bot.support.words import counted
from bot.votes import export as vote_export
from bot.votes.export import VoteFilter
from storage import Store


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    votes = sub.add_parser("votes", help="export the votes, for analysis").add_subparsers(
        required=True, metavar="ACTION", title="actions"
    )
    export_ = votes.add_parser(
        "export", parents=[common], help="every vote, one row each, as CSV or JSON Lines"
    )
    export_.add_argument(
        "--since", type=time_arg, metavar="TIME", help=f"cast at or after TIME: {TIME_HELP}"
    )
    export_.add_argument(
        "--until", type=time_arg, metavar="TIME", help="cast before TIME (the same format)"
    )
    export_.add_argument(
        "--channel", type=channel_arg, metavar="CHANNEL", help="only this channel's answers"
    )
    export_.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default="csv",
        metavar="FORMAT",
        help="csv (with a header; the default) or jsonl (one JSON object per line)",
    )
    export_.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    export_.set_defaults(func=export, existing_db=True)


async def export(settings: Settings, args: argparse.Namespace) -> int:
    where = VoteFilter.between(args.since, args.until, args.channel)
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
        print(f"{counted(count, 'vote')} written to {args.output}", file=sys.stderr)
    return 0
