"""The `/feedback` grammar: the sub-commands, their usage lines (and so `help`, here and
nowhere else), and `parse`, which turns a command line into a typed invocation
(`invocations`), checking each value once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping

from bot.admin.invocations import (
    AddEmoji,
    DigestNow,
    ForgetKey,
    Help,
    Invocation,
    ListEmoji,
    ListTrusted,
    RemoveEmoji,
    Reset,
    Retry,
    SetAgent,
    SetAquilaX,
    SetAsk,
    SetDigest,
    SetEscalation,
    SetProvider,
    Setup,
    ShowDeliveries,
    ShowStats,
    ShowStatus,
    Switch,
    Trust,
)
from bot.config.settings import APP_ID
from bot.domain import VOTE_STATUSES, Status, normalise_emoji
from bot.providers import PROVIDERS

USAGE: Mapping[str, str] = {
    "help": "/feedback help",
    "status": "/feedback status [--workspace]",
    "stats": "/feedback stats [days] [--workspace]",
    "deliveries": "/feedback deliveries",
    "provider": f"/feedback provider {'|'.join(PROVIDERS)} [--workspace]",
    "agent": "/feedback agent <Contextual agent id> [--workspace]",
    "aquilax": "/feedback aquilax org <org> group <group> [--workspace]",
    "ask": "/feedback ask <Contextual agent id>|off [--workspace]",
    "emoji": "/feedback emoji add :emoji: thumbs_up|thumbs_down|flagged | emoji remove :emoji:"
    " | emoji list [--workspace]",
    "reactions": "/feedback reactions on|off [--workspace]",
    "form": "/feedback form on|off [--workspace]",
    "prompt": "/feedback prompt on|off [--workspace]",
    "trust": "/feedback trust add <app id> | trust remove <app id> | trust list [--workspace]",
    "late-lookup": "/feedback late-lookup on|off [--workspace]",
    "reset": "/feedback reset provider|agent|aquilax|ask|emoji|reactions|form|prompt|trust"
    "|late-lookup|escalate|digest"
    + "".join(f"|{name}-key" for name in PROVIDERS)
    + " [--workspace]",
    "escalate": "/feedback escalate #channel|off [--anonymous] [--workspace]",
    "digest": "/feedback digest #channel daily|weekly | digest off | digest now [--workspace]",
    "retry": "/feedback retry [delivery id …]",
    "setup": "/feedback setup",
}
# What `reset <setting>` clears: the configuration keys behind each setting.
RESETTABLE: Mapping[str, tuple[str, ...]] = {
    "provider": ("provider",),
    "agent": ("agent_id",),
    "aquilax": ("aquilax_org", "aquilax_group"),
    "ask": ("ask_agent",),
    "emoji": ("emoji",),
    "reactions": ("reactions",),
    "form": ("reaction_form",),
    "prompt": ("prompt",),
    "trust": ("trusted_apps",),
    "late-lookup": ("late_lookup",),
    "escalate": ("escalate",),
    "digest": ("digest",),
}
KEY_RESETS = {f"{name}-key": name for name in PROVIDERS}
# The on|off sub-commands and the configuration key each one sets.
SWITCHES = {
    "reactions": "reactions",
    "form": "reaction_form",
    "prompt": "prompt",
    "late-lookup": "late_lookup",
}
EMOJI_NAME = re.compile(r"^:?[a-z0-9_+'\-]+(::skin-tone-[2-6])?:?$")
AQUILAX_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# A channel as Slack sends it with should_escape on (<#C123|name>, or <#C123> when Slack
# has no name to give), or its bare id.
CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$|^([CG][A-Z0-9]{2,})$")
MAX_DAYS = 365
MAX_ID = 2**63 - 1  # SQLite's largest integer
_DIGITS = re.compile(r"[0-9]+")


class UsageError(Exception):
    def __init__(self, problem: str, command: str | None = None) -> None:
        usage = USAGE.get(command or "", None)
        lines = [problem]
        lines.append(f"Usage: `{usage}`" if usage else "Try `/feedback help`.")
        super().__init__("\n".join(lines))


def help_text() -> str:
    lines = ["*feedback-bot* turns 👍 👎 🚩 on AI answers into feedback for the AI platform."]
    lines.append("Settings apply to this channel; add `--workspace` for every channel's default.")
    lines += [f"• `{usage}`" for usage in USAGE.values()]
    lines.append("Changing settings, `retry` and `setup` are for workspace admins.")
    return "\n".join(lines)


def parse_command(text: str) -> Invocation:
    """Validate a `/feedback` command line; raises UsageError with a usage line."""
    tokens = text.split()
    workspace = "--workspace" in tokens
    tokens = [t for t in tokens if t != "--workspace"]
    if not tokens:
        return Help()
    name, args = tokens[0].lower(), tuple(tokens[1:])
    if name not in USAGE:
        raise UsageError(f"There is no `{name}` sub-command.")
    try:
        return _SUB_COMMANDS[name](args, workspace)
    except ValueError as e:
        raise UsageError(f"`{name}` {e}.", name) from None


# Each takes the arguments after the sub-command, and raises ValueError with the problem.
_Build = Callable[[tuple[str, ...], bool], Invocation]


def _none(make: Callable[..., Invocation]) -> _Build:
    def build(args: tuple[str, ...], workspace: bool) -> Invocation:
        if args:
            raise ValueError("takes no arguments")
        return make(workspace=workspace)

    return build


def _one_of(args: tuple[str, ...], *choices: str) -> str:
    if len(args) != 1 or args[0].lower() not in choices:
        raise ValueError(f"expects one of {', '.join(choices)}")
    return args[0].lower()


def _provider(args: tuple[str, ...], workspace: bool) -> SetProvider:
    return SetProvider(_one_of(args, *PROVIDERS), workspace=workspace)


def _switch(setting: str) -> _Build:
    def build(args: tuple[str, ...], workspace: bool) -> Switch:
        return Switch(setting, _one_of(args, "on", "off") == "on", workspace=workspace)

    return build


def _agent(args: tuple[str, ...], workspace: bool) -> SetAgent:
    if len(args) != 1:
        raise ValueError("expects one agent id")
    try:
        return SetAgent(str(uuid.UUID(args[0])), workspace=workspace)
    except ValueError:
        raise ValueError(f"`{args[0]}` is not an agent id (a UUID)") from None


def _ask(args: tuple[str, ...], workspace: bool) -> SetAsk:
    if len(args) != 1:
        raise ValueError("expects one agent id, or off")
    if args[0].lower() == "off":
        return SetAsk(None, workspace=workspace)
    try:
        return SetAsk(str(uuid.UUID(args[0])), workspace=workspace)
    except ValueError:
        raise ValueError(f"`{args[0]}` is not an agent id (a UUID) or off") from None


def _aquilax(args: tuple[str, ...], workspace: bool) -> SetAquilaX:
    if len(args) != 4 or args[0].lower() != "org" or args[2].lower() != "group":
        raise ValueError("expects `org <org> group <group>`")
    for value in (args[1], args[3]):
        if not AQUILAX_ID.match(value):
            raise ValueError(f"`{value}` is not an AquilaX id (letters, digits, - and _)")
    return SetAquilaX(args[1], args[3], workspace=workspace)


def _emoji_name(raw: str) -> str:
    if not EMOJI_NAME.match(raw.lower()):
        raise ValueError(f"`{raw}` is not an emoji name like :thumbsup:")
    return normalise_emoji(raw)


def _emoji(args: tuple[str, ...], workspace: bool) -> ListEmoji | AddEmoji | RemoveEmoji:
    action = args[0].lower() if args else ""
    if action == "list" and len(args) == 1:
        return ListEmoji(workspace=workspace)
    if action == "remove" and len(args) == 2:
        return RemoveEmoji(_emoji_name(args[1]), workspace=workspace)
    if action == "add" and len(args) == 3:
        status = args[2].lower()
        if status not in {s.value for s in VOTE_STATUSES}:
            raise ValueError(f"`{args[2]}` is not a status: use thumbs_up, thumbs_down or flagged")
        return AddEmoji(_emoji_name(args[1]), Status(status), workspace=workspace)
    raise ValueError("expects `add :emoji: <status>`, `remove :emoji:` or `list`")


def number(raw: str, largest: int) -> int | None:
    """`raw` as a number from 0 to `largest`, or None. Only ASCII digits count:
    str.isdigit() also passes "²", which int() refuses."""
    if not _DIGITS.fullmatch(raw) or len(raw) > len(str(largest)) or int(raw) > largest:
        return None
    return int(raw)


def delivery_id(raw: str) -> int:
    """A delivery id as typed; ValueError unless SQLite can hold it."""
    value = number(raw, MAX_ID)
    if value is None:
        raise ValueError(f"`{raw}` is not a delivery id")
    return value


def _stats(args: tuple[str, ...], workspace: bool) -> ShowStats:
    if not args:
        return ShowStats(workspace=workspace)
    days = number(args[0], MAX_DAYS) if len(args) == 1 else None
    if days is None or days < 1:
        raise ValueError(f"expects a number of days from 1 to {MAX_DAYS}")
    return ShowStats(days=days, workspace=workspace)


def _retry(args: tuple[str, ...], workspace: bool) -> Retry:
    return Retry(ids=tuple(delivery_id(a) for a in args), workspace=workspace)


def _trust(args: tuple[str, ...], workspace: bool) -> ListTrusted | Trust:
    action = args[0].lower() if args else ""
    if action == "list" and len(args) == 1:
        return ListTrusted(workspace=workspace)
    if action in ("add", "remove") and len(args) == 2:
        app_id = args[1].upper()
        if not APP_ID.fullmatch(app_id):
            raise ValueError(
                f"`{args[1]}` is not a Slack app id (A… on the app's Basic Information page)"
            )
        return Trust(app_id, action == "add", workspace=workspace)
    raise ValueError("expects `add <app id>`, `remove <app id>` or `list`")


def _reset(args: tuple[str, ...], workspace: bool) -> Reset | ForgetKey:
    what = args[0].lower() if len(args) == 1 else ""
    if what in KEY_RESETS:
        return ForgetKey(KEY_RESETS[what], workspace=workspace)
    if what not in RESETTABLE:
        raise ValueError("expects one setting to reset")
    return Reset(what, workspace=workspace)


def channel_id(raw: str) -> str:
    """A channel as typed: Slack's escaped form or a bare id; ValueError otherwise."""
    found = CHANNEL.match(raw)
    if found is None:
        if raw.startswith("#"):
            raise ValueError(
                f"got `{raw}` as plain text: pick the channel from Slack's list as you type #,"
                " so that it arrives as a link, or give its id (C…, under the channel's name"
                " › About)"
            )
        raise ValueError(f"`{raw}` is not a channel: give #channel, or its id (C…)")
    return found.group(1) or found.group(2)


def _escalate(args: tuple[str, ...], workspace: bool) -> SetEscalation:
    anonymous = "--anonymous" in args
    rest = [a for a in args if a != "--anonymous"]
    if len(rest) != 1:
        raise ValueError("expects one channel, or off")
    if rest[0].lower() == "off":
        return SetEscalation(None, workspace=workspace)
    return SetEscalation(channel_id(rest[0]), anonymous, workspace=workspace)


def _digest(args: tuple[str, ...], workspace: bool) -> SetDigest | DigestNow:
    first = args[0].lower() if args else ""
    if first in ("now", "off") and len(args) == 1:
        return (
            DigestNow(workspace=workspace)
            if first == "now"
            else SetDigest(None, workspace=workspace)
        )
    if len(args) != 2:
        raise ValueError("expects a channel and daily or weekly, or off, or now")
    channel = channel_id(args[0])
    period = args[1].lower()
    if period not in ("daily", "weekly"):
        raise ValueError(f"`{args[1]}` is not a period: use daily or weekly (or off)")
    return SetDigest(channel, period, workspace=workspace)


_SUB_COMMANDS: Mapping[str, _Build] = {
    "help": _none(Help),
    "status": _none(ShowStatus),
    "deliveries": _none(ShowDeliveries),
    "setup": _none(Setup),
    "provider": _provider,
    "agent": _agent,
    "aquilax": _aquilax,
    "ask": _ask,
    "escalate": _escalate,
    "digest": _digest,
    "emoji": _emoji,
    "reactions": _switch("reactions"),
    "form": _switch("form"),
    "prompt": _switch("prompt"),
    "late-lookup": _switch("late-lookup"),
    "trust": _trust,
    "stats": _stats,
    "retry": _retry,
    "reset": _reset,
}
