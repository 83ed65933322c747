"""`feedback-bot`: run the bot, register answers, inspect and retry deliveries."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet
from pydantic import ValidationError

from bot import vote_export
from bot.answer_admin import AnswerAdmin, BadQuery, delivery_json, detail_json, removal_json
from bot.answers import Answers, PostError, answer_errors, answer_json
from bot.app import DeliveryProcess, FeedbackBot
from bot.channel_settings import ChannelSettings
from bot.doctor import Check, diagnose
from bot.domain import DeliveryState, Registration
from bot.feedback_command import render
from bot.feedback_command.grammar import MAX_ID, delivery_id, number
from bot.logs import Redactor, setup_logging
from bot.providers import PROVIDERS, CliOption
from bot.settings import EXPECTED, Settings, SettingsError, load_settings
from bot.slack_api import web_client
from bot.validation import describe
from bot.vote_export import VoteFilter
from storage import Store
from storage.db import DatabaseOpenError, SchemaTooNewError

log = logging.getLogger("bot")
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            settings = load_settings(**_overrides(args))
        except SettingsError as e:
            if args.func is not _doctor:
                raise
            print(f"✗ settings: {e}\n    → fix it in .env or the environment, then run again")
            return 1
        if args.existing_db and not Path(settings.feedback_db).exists():
            # Opening would create an empty database: the command would then report on
            # nothing, or change nothing, and the operator would never learn why.
            print(
                f"feedback-bot: no database at {settings.feedback_db} (set FEEDBACK_DB or --db)",
                file=sys.stderr,
            )
            return 2
        if args.func not in (_run, _worker):  # they set up their own, sharing the redactor
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
        "--db", metavar="PATH", help="the SQLite database file (instead of FEEDBACK_DB)"
    )
    common.add_argument(
        "--env-file",
        type=Path,
        metavar="FILE",
        help="read settings from FILE instead of ./.env (the environment still wins)",
    )
    # Commands that only read or change what is there refuse to create an empty database.
    common.set_defaults(existing_db=False)
    sub = p.add_subparsers(required=True, metavar="command")

    run = sub.add_parser(
        "run", parents=[common], help="run the bot (Socket Mode if SLACK_APP_TOKEN is set)"
    )
    run.set_defaults(func=_run)

    worker = sub.add_parser(
        "worker",
        parents=[common],
        help="send deliveries in a process of its own (see FEEDBACK_WORKER)",
    )
    worker.set_defaults(func=_worker, existing_db=True)

    answers = sub.add_parser("answers", help="register AI answers").add_subparsers(
        required=True, metavar="action"
    )
    add = answers.add_parser(
        "add", parents=[common], help="map a Slack message to a provider answer"
    )
    add.add_argument("--json", help="the whole answer as JSON, as POST /v1/answers takes it")
    add.add_argument("--channel")
    add.add_argument("--ts")
    add.add_argument("--provider", choices=list(PROVIDERS))
    for option in _provider_options():
        if option.item is not None:
            add.add_argument(
                option.option,
                dest=option.field,
                action="append",
                default=[],
                metavar=option.metavar,
                help=option.help,
            )
        else:
            add.add_argument(
                option.option, dest=option.field, metavar=option.metavar, help=option.help
            )
    add.add_argument("--thread-ts", help="the thread the existing message is in")
    add.add_argument(
        "--post",
        metavar="TEXT",
        help="post TEXT as the answer, with feedback buttons, instead of mapping --ts",
    )
    add.add_argument("--post-thread-ts", help="with --post: post in this thread")
    add.set_defaults(func=_answers_add)
    ls_answers = answers.add_parser(
        "list", parents=[common], help="list registered answers, newest first"
    )
    ls_answers.add_argument("--channel", help="only this channel's")
    ls_answers.add_argument("--limit", type=_limit, default=50)
    ls_answers.add_argument("--cursor", help="continue where a --json listing said next_cursor")
    ls_answers.add_argument("--json", action="store_true", help="one JSON object per line")
    ls_answers.set_defaults(func=_answers_list, existing_db=True)
    show = answers.add_parser(
        "show", parents=[common], help="an answer's mapping, verdicts and deliveries"
    )
    show.add_argument("channel")
    show.add_argument("ts")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=_answers_show, existing_db=True)
    remove = answers.add_parser(
        "remove",
        parents=[common],
        help="remove a mapping (votes and history kept; queued deliveries cancelled)",
    )
    remove.add_argument("channel")
    remove.add_argument("ts")
    remove.set_defaults(func=_answers_remove, existing_db=True)

    votes = sub.add_parser("votes", help="votes, for analysis").add_subparsers(
        required=True, metavar="action"
    )
    export = votes.add_parser(
        "export", parents=[common], help="every vote, one row each, as CSV or JSON Lines"
    )
    export.add_argument("--since", metavar="DATE", help="cast at or after (2026-11-01, UTC)")
    export.add_argument("--until", metavar="DATE", help="cast before")
    export.add_argument("--channel", help="only this channel's answers")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here, not stdout")
    export.set_defaults(func=_votes_export, existing_db=True)

    deliveries = sub.add_parser("deliveries", help="inspect and retry deliveries").add_subparsers(
        required=True, metavar="action"
    )
    ls = deliveries.add_parser("list", parents=[common], help="list deliveries, newest first")
    ls.add_argument(
        "--state", action="append", choices=[s.value for s in DeliveryState], default=[]
    )
    ls.add_argument("--limit", type=_limit, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_deliveries_list, existing_db=True)
    retry = deliveries.add_parser(
        "retry", parents=[common], help="requeue dead deliveries (all, or those named)"
    )
    retry.add_argument("ids", nargs="*", type=_delivery_id)
    retry.set_defaults(func=_deliveries_retry, existing_db=True)

    doctor = sub.add_parser(
        "doctor",
        parents=[common],
        help="check settings, database, Slack tokens and scopes, provider keys and hosts",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object per check")
    doctor.set_defaults(func=_doctor)

    key = sub.add_parser("secret-key", parents=[common], help="print a new FEEDBACK_SECRET_KEY")
    key.set_defaults(func=_secret_key)
    return p


def _provider_options() -> list[CliOption]:
    """Every provider's options, in registry order; one option per flag (providers sharing
    a field name share its option)."""
    options: dict[str, CliOption] = {}
    for spec in PROVIDERS.values():
        for option in spec.cli_options:
            options.setdefault(option.option, option)
    return list(options.values())


def _delivery_id(raw: str) -> int:
    try:
        return delivery_id(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{e} (a whole number, as `deliveries list` shows)"
        ) from None


def _limit(raw: str) -> int:
    value = number(raw, MAX_ID)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"`{raw}` is not a number from 1 to {MAX_ID}")
    return value


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    return await _serve(settings, FeedbackBot)


async def _worker(settings: Settings, args: argparse.Namespace) -> int:
    return await _serve(settings, DeliveryProcess)


async def _serve(settings: Settings, kind: Callable[..., FeedbackBot | DeliveryProcess]) -> int:
    """Start the bot (or the worker alone), run until SIGTERM or Ctrl-C, stop it cleanly."""
    redactor = Redactor(settings.secrets())
    setup_logging(settings.log_level, redactor, settings.feedback_log_format)
    process = kind(settings, redactor=redactor)
    await process.start()
    try:
        await _until_signalled()
    finally:
        await process.stop()
    return 0


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Through logging, not print: with the output pipe gone (the supervisor died), print
    # raises and the database thread would keep the process alive.
    log.info("shutting down")


def _answer_payload(args: argparse.Namespace) -> object:
    if args.json:
        return args.json
    fields = {"channel": args.channel, "ts": args.ts, "provider": args.provider}
    fields |= {o.field: getattr(args, o.field) for o in _provider_options() if o.item is None}
    fields["thread_ts"] = args.thread_ts
    payload: dict[str, object] = {k: v for k, v in fields.items() if v is not None}
    if args.post is not None:
        payload["post"] = {"text": args.post, "thread_ts": args.post_thread_ts}
    for option in _provider_options():
        if option.item is not None and getattr(args, option.field):
            payload[option.field] = [option.item(raw) for raw in getattr(args, option.field)]
    return payload


async def _answers_add(settings: Settings, args: argparse.Namespace) -> int:
    if args.post is not None:
        settings.require_slack()
    store = await Store.open(settings.feedback_db)
    # Also without --post: a `post` in --json, or the channel's "Was this helpful?" prompt,
    # needs Slack too.
    slack = None
    if settings.slack_bot_token is not None:
        slack = web_client(settings)
    try:
        answers = Answers(store, ChannelSettings(store), slack)
        try:
            registered = await answers.register(await answers.validate(_answer_payload(args)))
        except ValidationError as e:
            print(
                f"feedback-bot: invalid answer: {describe(answer_errors(e))}",
                file=sys.stderr,
            )
            return 2
        except PostError as e:
            print(f"feedback-bot: {e}", file=sys.stderr)
            return 1
    finally:
        await store.close()
    answer = answer_json(registered.answer)
    print(json.dumps({"status": registered.outcome.value, "answer": answer}))
    if registered.outcome is Registration.CONFLICT:
        where = f"{registered.answer.channel}/{registered.answer.ts}"
        print(f"feedback-bot: {where} is already mapped to another answer", file=sys.stderr)
        return 1
    return 0


async def _with_admin(settings: Settings, work: Callable[[AnswerAdmin], Awaitable[T]]) -> T:
    store = await Store.open(settings.feedback_db)
    try:
        return await work(AnswerAdmin(store))
    finally:
        await store.close()


def _no_answer(args: argparse.Namespace) -> int:
    print(f"feedback-bot: no answer is registered on {args.channel}/{args.ts}", file=sys.stderr)
    return 1


async def _answers_list(settings: Settings, args: argparse.Namespace) -> int:
    page = await _with_admin(
        settings, lambda admin: admin.list(args.channel, args.limit, args.cursor)
    )
    if args.json:
        for a in page.answers:
            print(json.dumps(answer_json(a)))
        if page.next_cursor:
            print(json.dumps({"next_cursor": page.next_cursor}))
        return 0
    if not page.answers:
        print("no answers")
    for a in page.answers:
        print(f"{a.channel}/{a.ts}  {a.provider:<10}  {a.target}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


async def _answers_show(settings: Settings, args: argparse.Namespace) -> int:
    detail = await _with_admin(settings, lambda admin: admin.show(args.channel, args.ts))
    if detail is None:
        return _no_answer(args)
    body = detail_json(detail)
    if args.json:
        print(json.dumps(body))
        return 0
    for key, value in body.items():
        if not isinstance(value, list):
            print(f"{key}: {value}")
    for source in detail.answer.sources:
        print(f"source: {source.content_id} ({source.label})")
    for v in detail.verdicts:
        slot = f"source {v.content_id}" if v.content_id else "answer"
        print(f"verdict ({slot}): {v.status.value}, {v.standing_votes} votes standing")
    for d in detail.deliveries:
        print(f"delivery {d.id}: {d.verdict.status.value} {d.state.value} ({d.attempts} tries)")
    return 0


async def _answers_remove(settings: Settings, args: argparse.Namespace) -> int:
    removal = await _with_admin(
        settings, lambda admin: admin.remove(args.channel, args.ts, "feedback-bot answers remove")
    )
    if removal is None:
        return _no_answer(args)
    print(json.dumps(removal_json(removal)))
    return 0


async def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every check passes, 1 otherwise."""

    def say(check: Check) -> None:
        print(json.dumps(check.json()) if args.json else check.line(), flush=True)

    return 0 if await diagnose(settings, say) else 1


async def _votes_export(settings: Settings, args: argparse.Namespace) -> int:
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


async def _deliveries_list(settings: Settings, args: argparse.Namespace) -> int:
    store = await Store.open(settings.feedback_db)
    try:
        rows = await store.list_deliveries([DeliveryState(s) for s in args.state], args.limit)
    finally:
        await store.close()
    if args.json:
        for d in rows:
            print(json.dumps(delivery_json(d)))
        return 0
    if not rows:
        print("no deliveries")
        return 0
    print(
        f"{'id':>6}  {'state':<10}  {'provider':<10}  {'verdict':<11}  {'tries':>5}  "
        f"{'created':<19}  message / error"
    )
    for d in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.created_at))
        where = f"{d.answer.channel}/{d.answer.ts}" + (f" [{d.content_id}]" if d.content_id else "")
        print(
            f"{d.id:>6}  {d.state.value:<10}  {d.answer.provider:<10}  "
            f"{d.verdict.status.value:<11}  {d.attempts:>5}  {created}  {where}"
        )
        if d.last_error:
            print(f"{'':>6}  └ {d.last_error}")
    return 0


async def _deliveries_retry(settings: Settings, args: argparse.Namespace) -> int:
    store = await Store.open(settings.feedback_db)
    try:
        requeued, superseded = await store.retry_dead(args.ids)
    finally:
        await store.close()
    later = " A running feedback-bot sends them within a second." if requeued else ""
    print(render.retried(requeued, superseded) + later)
    return 0


async def _secret_key(settings: Settings, args: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
