"""`feedback-bot migrate-db`: move from SQLite to PostgreSQL (for several replicas)."""

from __future__ import annotations

import argparse
import json
import sys

from bot.config.settings import Settings
from storage.location import is_postgres


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    move = sub.add_parser(
        "migrate-db",
        parents=[common],
        help="copy an SQLite database into an empty PostgreSQL one, and check the counts",
    )
    move.add_argument(
        "--from", dest="source", required=True, metavar="SQLITE", help="sqlite:///path or a path"
    )
    move.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="postgresql://user@host/db"
    )
    move.add_argument("--json", action="store_true", help="the rows copied, as one JSON object")
    move.set_defaults(func=migrate_db)


async def migrate_db(settings: Settings, args: argparse.Namespace) -> int:
    if not is_postgres(args.target):
        print("feedback-bot: --to must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        from storage.postgres.transfer import TransferError, copy
    except ImportError:
        print(
            "feedback-bot: PostgreSQL needs asyncpg: pip install 'feedback-bot[postgres]'",
            file=sys.stderr,
        )
        return 2
    try:
        copied = await copy(args.source, args.target)
    except TransferError as e:
        print(f"feedback-bot: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(copied))
        return 0
    for table, rows in copied.items():
        print(f"{table:<18} {rows:>9} rows copied, counts match")
    print("done: point FEEDBACK_DB at the PostgreSQL URL and start the bot")
    return 0
