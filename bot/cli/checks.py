"""`feedback-bot doctor` and `feedback-bot secret-key`: setting the bot up."""

from __future__ import annotations

import argparse
import json

from cryptography.fernet import Fernet

from bot.cli.doctor import Check, diagnose
from bot.config.settings import Settings


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    doctor_ = sub.add_parser(
        "doctor",
        parents=[common],
        help="check settings, database, Slack tokens and scopes, provider keys and hosts",
    )
    doctor_.add_argument("--json", action="store_true", help="one JSON object per check")
    doctor_.set_defaults(func=doctor, settings_errors_are_checks=True)

    key = sub.add_parser("secret-key", parents=[common], help="print a new FEEDBACK_SECRET_KEY")
    key.set_defaults(func=secret_key)


async def doctor(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 when every check passes, 1 otherwise."""

    def say(check: Check) -> None:
        print(json.dumps(check.json()) if args.json else check.line(), flush=True)

    return 0 if await diagnose(settings, say) else 1


async def secret_key(settings: Settings, args: argparse.Namespace) -> int:
    print(Fernet.generate_key().decode())
    return 0
