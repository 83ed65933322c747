"""`feedback-bot answers add|list|show|remove`: register answers, look them up, remove one."""

from __future__ import annotations

import argparse
import json
import sys
import time
from uuid import UUID

import aiohttp
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError

from bot.answers.admin import AnswerAdmin, detail_json, removal_json
from bot.answers.register import Answers, PostError
from bot.answers.request import answer_errors, answer_json
from bot.answers.scan import ScanError, scan
from bot.answers.self_registration import MetadataRegistrar
from bot.cli.options import TIME_HELP, channel_arg, limit, time_arg, with_store
from bot.config.channels import ChannelSettings
from bot.config.settings import Settings
from bot.domain import Registration
from bot.providers import PROVIDERS, CliOption
from bot.slack.api import slack_session, web_client
from bot.support.validation import describe
from bot.support.words import counted
from storage import Store


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    answers = sub.add_parser(
        "answers", help="register AI answers, list, show, remove and scan them"
    ).add_subparsers(required=True, metavar="ACTION", title="actions")
    add_ = answers.add_parser(
        "add",
        parents=[common],
        help="map a Slack message to a provider answer",
        description="Map a Slack message (--channel, --ts) to a provider's answer, or post\n"
        "the answer (--post) and map that; or give the whole answer as --json.",
        epilog=ids_needed(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_.add_argument(
        "--json",
        metavar="JSON",
        help="the whole answer as one JSON object, as POST /v1/answers takes it",
    )
    add_.add_argument("--channel", metavar="CHANNEL", help="the channel id, e.g. C0123ABCD")
    add_.add_argument(
        "--ts", metavar="TS", help="the message's ts, e.g. 1700000000.000100 (not with --post)"
    )
    add_.add_argument(
        "--provider",
        choices=list(PROVIDERS),
        metavar="PROVIDER",
        help=f"{' or '.join(PROVIDERS)} (default: the channel's, set with /feedback provider)",
    )
    for option in provider_options():
        if option.item is not None:
            add_.add_argument(
                option.option,
                dest=option.field,
                action="append",
                default=[],
                metavar=option.metavar or option.field.upper(),
                help=option.help or _option_help(option.field),
            )
        else:
            add_.add_argument(
                option.option,
                dest=option.field,
                metavar=option.metavar or option.field.upper(),
                help=option.help or _option_help(option.field),
            )
    add_.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="K=V,…",
        help="one more target, e.g. provider=langfuse,trace_id=abc (or a JSON object);"
        " repeat for several. With --provider, its target comes first",
    )
    add_.add_argument("--thread-ts", metavar="TS", help="the thread the existing message is in")
    add_.add_argument(
        "--post",
        metavar="TEXT",
        help="post TEXT as the answer, with feedback buttons, instead of mapping --ts",
    )
    add_.add_argument("--post-thread-ts", metavar="TS", help="with --post: post in this thread")
    add_.set_defaults(func=add)
    ls_answers = answers.add_parser(
        "list", parents=[common], help="list registered answers, newest first"
    )
    ls_answers.add_argument(
        "--channel", metavar="CHANNEL", type=channel_arg, help="only this channel's (C0123ABCD)"
    )
    ls_answers.add_argument(
        "--limit", type=limit, default=50, metavar="N", help="at most N answers (default 50)"
    )
    ls_answers.add_argument(
        "--cursor", metavar="CURSOR", help="continue where a --json listing said next_cursor"
    )
    ls_answers.add_argument("--json", action="store_true", help="one JSON object per line")
    ls_answers.set_defaults(func=list_answers, existing_db=True)
    show_ = answers.add_parser(
        "show", parents=[common], help="an answer's mapping, verdicts and deliveries"
    )
    _message_arguments(show_)
    show_.add_argument("--json", action="store_true", help="as JSON")
    show_.set_defaults(func=show, existing_db=True)
    remove_ = answers.add_parser(
        "remove",
        parents=[common],
        help="remove a mapping (votes and history kept; queued deliveries cancelled)",
    )
    _message_arguments(remove_)
    remove_.set_defaults(func=remove, existing_db=True)
    scan_ = answers.add_parser(
        "scan",
        parents=[common],
        help="register the answers a channel's messages carry in their metadata (recovery)",
    )
    scan_.add_argument(
        "--channel", required=True, type=channel_arg, metavar="CHANNEL", help="the channel id"
    )
    scan_.add_argument(
        "--since",
        type=time_arg,
        metavar="TIME",
        help=f"only messages newer than TIME: {TIME_HELP} (default: the whole history)",
    )
    scan_.add_argument("--json", action="store_true", help="the counts as one JSON object")
    scan_.set_defaults(func=scan_channel)


def _message_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channel", metavar="CHANNEL", help="the channel id, e.g. C0123ABCD")
    parser.add_argument("ts", metavar="TS", help="the message's ts, e.g. 1700000000.000100")


def _option_help(field: str) -> str:
    """What an id option of `answers add` is, for the providers that take it."""
    takers = [s for s in PROVIDERS.values() if field in s.answer_in.model_fields]
    uuid = any(s.answer_in.model_fields[field].annotation is UUID for s in takers)
    kind = " (a UUID)" if uuid else ""
    return f"{' and '.join(s.label for s in takers)}: the answer's {field}{kind}"


def ids_needed() -> str:
    """`answers add --help`'s epilog: the ids each provider needs, from its registration
    model, and those a channel default can fill in."""
    lines = ["The ids each provider needs, besides --channel and --ts (or --post):"]
    options = {o.field: o for o in provider_options()}
    for spec in PROVIDERS.values():
        head = spec.name
        for name, field in spec.answer_in.model_fields.items():
            option = options.get(name)
            if option is None:
                continue
            if option.item is not None:
                note = "optional, repeatable"
            elif name in spec.channel_defaults:
                note = "or the channel's default (/feedback)"
            else:
                note = "" if field.is_required() else "optional"
            usage = f"{option.option} {option.metavar or name.upper()}"
            lines.append(f"  {head:<11} {usage:<26} {note}".rstrip())
            head = ""
    lines.append(
        "An answer for several providers: repeat --target provider=…,<id>=… (after the"
        ' --provider options\' own target, if any), or give --json with a "targets" list.'
    )
    return "\n".join(lines)


def provider_options() -> list[CliOption]:
    """Every provider's options, in registry order; one option per flag (providers sharing
    a field name share its option)."""
    options: dict[str, CliOption] = {}
    for spec in PROVIDERS.values():
        for option in spec.cli_options:
            options.setdefault(option.option, option)
    return list(options.values())


def answer_payload(args: argparse.Namespace) -> object:
    if args.json:
        return args.json
    fields = {"channel": args.channel, "ts": args.ts, "provider": args.provider}
    fields |= {o.field: getattr(args, o.field) for o in provider_options() if o.item is None}
    fields["thread_ts"] = args.thread_ts
    payload: dict[str, object] = {k: v for k, v in fields.items() if v is not None}
    if args.post is not None:
        payload["post"] = {"text": args.post, "thread_ts": args.post_thread_ts}
    for option in provider_options():
        if option.item is not None and getattr(args, option.field):
            payload[option.field] = [option.item(raw) for raw in getattr(args, option.field)]
    if not args.targets:
        return payload
    # A list of targets: the one the single-form options name (if any), then each --target.
    placement = {k: payload.pop(k) for k in ("channel", "ts", "thread_ts", "post") if k in payload}
    first = [payload] if payload else []
    return placement | {"targets": first + [target_option(raw) for raw in args.targets]}


def target_option(raw: str) -> object:
    """A --target: a JSON object, or provider=…,id=… pairs (the value is text, as typed)."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            return text  # the registration's validation says it is not an object
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    return {key.strip(): value.strip() for key, _, value in pairs}


async def add(settings: Settings, args: argparse.Namespace) -> int:
    if args.post is not None:
        settings.require_slack()
    store = await Store.open(settings.feedback_db)
    # Also without --post: a `post` in --json, or the channel's "Was this helpful?" prompt,
    # needs Slack too.
    slack = None
    if settings.slack_bot_token is not None:
        slack = web_client(settings)
    try:
        answers = Answers(store, ChannelSettings(store, settings.feedback_trusted_apps), slack)
        try:
            registered = await answers.register(await answers.validate(answer_payload(args)))
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


def no_answer(args: argparse.Namespace, doing: str = "") -> int:
    print(
        f"feedback-bot: {doing}no answer is registered on {args.channel}/{args.ts}",
        file=sys.stderr,
    )
    return 1


async def list_answers(settings: Settings, args: argparse.Namespace) -> int:
    page = await with_store(
        settings, lambda store: AnswerAdmin(store).list(args.channel, args.limit, args.cursor)
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
        print(f"{a.channel}/{a.ts}  {a.providers:<10}  {' '.join(t.key for t in a.targets)}")
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}")
    return 0


async def show(settings: Settings, args: argparse.Namespace) -> int:
    detail = await with_store(
        settings, lambda store: AnswerAdmin(store).show(args.channel, args.ts)
    )
    if detail is None:
        return no_answer(args)
    body = detail_json(detail)
    if args.json:
        print(json.dumps(body))
        return 0
    for key, value in body.items():
        if not isinstance(value, list | dict) and key != "escalation":
            print(f"{key}: {value}")
    if len(detail.answer.targets) > 1:
        for t in detail.answer.targets:
            print(f"target {t.position}: {t.describe()}")
    for source in detail.answer.sources:
        print(f"source: {source.content_id} ({source.label})")
    for v in detail.verdicts:
        slot = f"source {v.content_id}" if v.content_id else "answer"
        print(f"verdict ({slot}): {v.status.value}, {counted(v.standing_votes, 'vote')} standing")
    for d in detail.deliveries:
        print(
            f"delivery {d.id} to {d.target.describe()}: {d.verdict.status.value}"
            f" {d.state.value} ({d.attempts} tries)"
        )
    if (e := detail.escalation) is not None:
        resolved = (
            f"resolved by {e.resolved_by} at {_when(e.resolved_at)}" if e.resolved_at else "open"
        )
        message = e.message or "not posted yet"
        print(f"escalation: opened {_when(e.opened_at)}, {resolved}, message {message}")
    return 0


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at or 0))


async def remove(settings: Settings, args: argparse.Namespace) -> int:
    removal = await with_store(
        settings,
        lambda store: AnswerAdmin(store).remove(
            args.channel, args.ts, "feedback-bot answers remove"
        ),
    )
    if removal is None:
        # Removed already, or never registered: either way nothing changed, and a script
        # that meant to remove something should hear it.
        return no_answer(args, doing="nothing removed: ")
    print(json.dumps(removal_json(removal)))
    return 0


async def scan_channel(settings: Settings, args: argparse.Namespace) -> int:
    settings.require_bot_token()
    async with slack_session() as session:
        # Patient with Slack's rate limits: a long history is many pages.
        slack = web_client(settings, session, rate_limit_retries=10)
        try:
            me = await slack.auth_test()
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as e:
            print(
                f"feedback-bot: cannot use Slack ({_reason(e)}): run `feedback-bot doctor`",
                file=sys.stderr,
            )
            return 1
        store = await Store.open(settings.feedback_db)
        try:
            channels = ChannelSettings(store, settings.feedback_trusted_apps)
            answers = Answers(store, channels, slack)
            registrar = MetadataRegistrar(answers, channels, str(me["bot_id"]))
            counts = await scan(slack, registrar, args.channel, args.since)
        except ScanError as e:
            print(f"feedback-bot: {e}", file=sys.stderr)
            return 1
        finally:
            await store.close()
    if args.json:
        print(json.dumps({"channel": args.channel, **counts.json()}))
        return 0
    print(f"{args.channel}: {counts.messages} messages read, {counts.found} with answer metadata")
    print(f"  registered     {counts.registered}")
    print(f"  already known  {counts.known}")
    print(f"  conflicts      {counts.conflicts}  (mapped to another answer: left as they are)")
    print(f"  invalid        {counts.invalid}  (the log says why)")
    print(f"  removed        {counts.removed}  (removed by an admin: left removed)")
    print(f"  untrusted      {counts.untrusted}", end="")
    if counts.untrusted_apps:
        apps = ", ".join(sorted(counts.untrusted_apps))
        print(f"  (from {apps}: `/feedback trust add <app id>` to count them)")
    else:
        print()
    return 0


def _reason(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error", "unknown_error"))
    return type(error).__name__
