"""`feedback-bot deliveries list|retry`: inspect the outbox, requeue dead deliveries."""

from __future__ import annotations

import argparse
import json
import sys
import time

from bot.admin import render
from bot.answers.admin import delivery_json
from bot.cli.options import delivery_arg, limit, with_store
from bot.config.settings import Settings
from bot.domain import DeliveryState


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    deliveries = sub.add_parser("deliveries", help="inspect and retry deliveries").add_subparsers(
        required=True, metavar="ACTION", title="actions"
    )
    ls = deliveries.add_parser("list", parents=[common], help="list deliveries, newest first")
    states = [s.value for s in DeliveryState]
    ls.add_argument(
        "--state",
        action="append",
        choices=states,
        default=[],
        metavar="STATE",
        help=f"only those in STATE: {', '.join(states)}; repeat for several (default: all)",
    )
    ls.add_argument(
        "--limit", type=limit, default=50, metavar="N", help="at most N deliveries (default 50)"
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=list_deliveries, existing_db=True)
    retry_ = deliveries.add_parser(
        "retry", parents=[common], help="requeue dead deliveries (all, or those named)"
    )
    retry_.add_argument(
        "ids",
        nargs="*",
        type=delivery_arg,
        metavar="ID",
        help="a delivery id, as `deliveries list` shows it (default: every dead one)",
    )
    retry_.set_defaults(func=retry, existing_db=True)


async def list_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    states = [DeliveryState(s) for s in args.state]
    rows = await with_store(settings, lambda store: store.list_deliveries(states, args.limit))
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
        where += f" → {d.target.key}"
        print(
            f"{d.id:>6}  {d.state.value:<10}  {d.target.provider:<10}  "
            f"{d.verdict.status.value:<11}  {d.attempts:>5}  {created}  {where}"
        )
        if d.last_error:
            print(f"{'':>6}  └ {d.last_error}")
    return 0


async def retry(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 1 when nothing, or not all that was named, was requeued: a retry that changed
    nothing should not look like one that worked."""
    requeued, superseded = await with_store(settings, lambda store: store.retry_dead(args.ids))
    named = len(set(args.ids))
    if requeued + superseded == 0:
        which = f" with id {', '.join(map(str, args.ids))}" if args.ids else ""
        print(
            f"feedback-bot: nothing requeued: no dead delivery{which} of an answer still"
            " registered (`feedback-bot deliveries list --state dead` lists the dead ones)",
            file=sys.stderr,
        )
        return 1
    later = " A running feedback-bot sends them within a second." if requeued else ""
    print(render.retried(requeued, superseded) + later)
    if named and requeued + superseded < named:
        print(
            f"feedback-bot: {named - requeued - superseded} of the {named} named were not"
            " requeued: not dead, or their answer was removed",
            file=sys.stderr,
        )
        return 1
    return 0
