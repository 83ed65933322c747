"""`feedback-bot`: the command line. One module per group of commands, each with
register(sub, common), wired here in one place (as handlers/ does for Slack's listeners):

    serve.py       run, worker
    answers.py     answers add | list | show | remove
    votes.py       votes export
    deliveries.py  deliveries list | retry
    checks.py      doctor, secret-key
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bot.answer_admin import BadQuery
from bot.cli import answers, checks, deliveries, migrate, serve, votes
from bot.logs import Redactor, setup_logging
from bot.settings import EXPECTED, SettingsError, load_settings
from storage.backend import is_postgres
from storage.db import DatabaseOpenError, SchemaTooNewError


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            settings = load_settings(**_overrides(args))
        except SettingsError as e:
            if not args.settings_errors_are_checks:
                raise
            print(f"✗ settings: {e}\n    → fix it in .env or the environment, then run again")
            return 1
        db = settings.feedback_db
        if args.existing_db and not is_postgres(db) and not Path(db).exists():
            # Opening would create an empty database: the command would then report on
            # nothing, or change nothing, and the operator would never learn why.
            print(
                f"feedback-bot: no database at {settings.feedback_db} (set FEEDBACK_DB or --db)",
                file=sys.stderr,
            )
            return 2
        if not args.own_logging:
            # The admin commands print their result; their log adds only what went wrong
            # (a prompt that could not be posted, say), redacted.
            level = max(settings.log_level, logging.WARNING)
            setup_logging(level, Redactor(settings.secrets()), settings.feedback_log_format)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return int(runner.run(args.func(settings, args)) or 0)
    except (SettingsError, SchemaTooNewError, BadQuery) as e:
        print(f"feedback-bot: {e}", file=sys.stderr)
        return 2
    except DatabaseOpenError as e:
        print(
            f"feedback-bot: FEEDBACK_DB cannot be opened ({e}):"
            f" it should hold {EXPECTED['FEEDBACK_DB']}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """--db and --env-file, over the environment (and over ./.env)."""
    overrides: dict[str, object] = {}
    if args.env_file is not None:
        if not args.env_file.is_file():
            raise SettingsError(f"--env-file {args.env_file}: no such file")
        overrides["_env_file"] = args.env_file
    if args.db is not None:
        overrides["feedback_db"] = args.db
    return overrides


def _version() -> str:
    try:
        return version("feedback-bot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it installs (Linux, macOS): under load the event loop's own work is a
    tenth of an event's cost, and uvloop roughly halves it. Elsewhere, asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="feedback-bot",
        description="Turns Slack reactions on AI answers into provider feedback.",
    )
    p.add_argument("--version", action="version", version=f"feedback-bot {_version()}")
    # Every command takes these, and says which database it uses.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help="the SQLite database file, or a postgresql:// URL (instead of FEEDBACK_DB)",
    )
    common.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="read settings from FILE instead of ./.env (the environment still wins)",
    )
    # Commands that only read or change what is there refuse to create an empty database.
    common.set_defaults(existing_db=False, own_logging=False, settings_errors_are_checks=False)
    sub = p.add_subparsers(required=True, metavar="command")
    for group in (serve, answers, votes, deliveries, checks, migrate):
        group.register(sub, common)
    return p
