"""`feedback-bot`: the command line. One module per group of commands, each with
register(sub, common), wired here in one place (as handlers/ does for Slack's listeners):

    serve.py       run, worker
    answers.py     answers add | list | show | remove
    votes.py       votes export
    deliveries.py  deliveries list | retry
    checks.py      doctor, secret-key (doctor.py and key_probe.py: what doctor checks)
    migrate.py     migrate-db

The top floor of bot/, beside app.py, whose FeedbackBot `run` starts. May import: bot.app,
bot.sending,
bot.admin, bot.answers, bot.config, bot.delivery, bot.domain, bot.providers, bot.slack,
bot.support, bot.votes and storage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from bot.answers.admin import BadQuery
from bot.cli import answers, checks, deliveries, migrate, serve, votes
from bot.config.settings import EXPECTED, SettingsError, load_settings
from bot.support.logs import Redactor, setup_logging
from storage.errors import DatabaseOpenError, SchemaTooNewError
from storage.location import QUERY_PASSWORD, URL_PASSWORD, displayed, is_postgres

# The status a shell reports for a program stopped by SIGPIPE (`yes | head -1`): the reader
# of our output went away, which is not an error of ours to report.
BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    mask = Masker(args_in)
    try:
        return _main(args_in, mask)
    except BrokenPipeError:
        # `feedback-bot doctor --json | head -1`: whatever is left to print goes nowhere,
        # and so does the flush at exit, which would raise (and print) again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


def _main(argv: list[str], mask: Masker) -> int:
    args = _parser(mask).parse_args(argv)
    try:
        try:
            settings = load_settings(**_overrides(args))
        except SettingsError as e:
            if not args.settings_errors_are_checks:
                raise
            fix = "fix it in .env or the environment, then run again"
            print(f"✗ settings: {mask(str(e))}\n    → {fix}")
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
        print(f"feedback-bot: {mask(str(e))}", file=sys.stderr)
        return 2
    except DatabaseOpenError as e:
        print(
            f"feedback-bot: FEEDBACK_DB cannot be opened ({mask(str(e))}):"
            f" it should hold {EXPECTED['FEEDBACK_DB']}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


class Masker:
    """Masks credentials in what the command line prints about its own arguments.

    argparse quotes what was typed (an invalid choice, an unknown argument, a bad value), and
    `--db`, `--to` and `--from` may be URLs that hold a password. Each argument that is such a
    URL is replaced as a whole by its masked form, so a password of any length or shape is
    caught; the patterns then catch one inside a longer word."""

    def __init__(self, argv: Sequence[str]) -> None:
        self._replace: dict[str, str] = {}
        for arg in argv:
            for value in {arg, arg.partition("=")[2]}:
                masked = displayed(value)
                if masked != value:
                    self._replace[value] = masked
                    self._replace[repr(value)[1:-1]] = masked

    def __call__(self, text: str) -> str:
        for raw in sorted(self._replace, key=len, reverse=True):
            text = text.replace(raw, self._replace[raw])
        text = URL_PASSWORD.sub(r"\1***@", text)
        return QUERY_PASSWORD.sub(r"\1***", text)


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


def _parser(mask: Masker) -> argparse.ArgumentParser:
    class Parser(argparse.ArgumentParser):
        """argparse's, but its errors never show a credential (sub-commands' parsers are of
        this class too: add_parser makes them of the parent's)."""

        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            self.exit(2, f"{self.prog}: error: {mask(message)}\n")

    p = Parser(
        prog="feedback-bot",
        description="Turns Slack reactions on AI answers into provider feedback.",
        epilog="--db and --env-file may come before or after the command.\n"
        "`feedback-bot COMMAND --help` says what each command takes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"feedback-bot {_version()}")
    # Every command takes these, and says which database it uses; before the command or
    # after it (given in both places, the one after it wins).
    _database_options(p, default=None)
    common = Parser(add_help=False)
    # Suppressed: a sub-command's parser would otherwise set its own None over what was
    # given before the command.
    _database_options(common, default=argparse.SUPPRESS)
    # Commands that only read or change what is there refuse to create an empty database.
    common.set_defaults(existing_db=False, own_logging=False, settings_errors_are_checks=False)
    sub = p.add_subparsers(required=True, metavar="COMMAND", title="commands")
    for group in (serve, answers, votes, deliveries, checks, migrate):
        group.register(sub, common)
    return p


def _database_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        default=default,
        help="the SQLite database file, or a postgresql:// URL (instead of FEEDBACK_DB)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        default=default,
        help="read settings from FILE instead of ./.env (the environment still wins)",
    )
