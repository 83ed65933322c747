"""`/feedback`: parsing the sub-commands and carrying them out. Replies are Slack mrkdwn."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.config import WORKSPACE, ChannelConfig, Config
from bot.delivery import DeliveryWorker
from bot.domain import VOTE_STATUSES, Status, normalise_emoji
from bot.keys import Keys
from bot.providers import PROVIDERS
from bot.settings import Settings
from storage import DeliveryState, Store

USAGE: Mapping[str, str] = {
    "help": "/feedback help",
    "status": "/feedback status [--workspace]",
    "stats": "/feedback stats [days] [--workspace]",
    "deliveries": "/feedback deliveries",
    "provider": f"/feedback provider {'|'.join(PROVIDERS)} [--workspace]",
    "agent": "/feedback agent <Contextual agent id> [--workspace]",
    "aquilax": "/feedback aquilax org <org> group <group> [--workspace]",
    "emoji": "/feedback emoji add :emoji: thumbs_up|thumbs_down|flagged | emoji remove :emoji:"
    " | emoji list [--workspace]",
    "reactions": "/feedback reactions on|off [--workspace]",
    "form": "/feedback form on|off [--workspace]",
    "prompt": "/feedback prompt on|off [--workspace]",
    "reset": "/feedback reset provider|agent|aquilax|emoji|reactions|form|prompt"
    + "".join(f"|{name}-key" for name in PROVIDERS)
    + " [--workspace]",
    "retry": "/feedback retry [delivery id …]",
    "setup": "/feedback setup",
}
READING = frozenset({"help", "status", "stats", "deliveries"})
RESETTABLE: Mapping[str, tuple[str, ...]] = {
    "provider": ("provider",),
    "agent": ("agent_id",),
    "aquilax": ("aquilax_org", "aquilax_group"),
    "emoji": ("emoji",),
    "reactions": ("reactions",),
    "form": ("reaction_form",),
    "prompt": ("prompt",),
}
KEY_RESETS = {f"{name}-key": name for name in PROVIDERS}
SWITCHES = {"reactions": "reactions", "form": "reaction_form", "prompt": "prompt"}
EMOJI_NAME = re.compile(r"^:?[a-z0-9_+'\-]+(::skin-tone-[2-6])?:?$")
AQUILAX_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_DAYS = 365
MAX_ID = 2**63 - 1  # SQLite's largest integer
_DIGITS = re.compile(r"[0-9]+")

EMOJI_OF = {Status.THUMBS_UP: "👍", Status.THUMBS_DOWN: "👎", Status.FLAGGED: "🚩"}

NOT_ALLOWED = (
    "Only workspace admins and owners (and the users in FEEDBACK_ADMINS) can change"
    " feedback-bot. Anyone can use `help`, `status`, `stats` and `deliveries`."
)


class UsageError(Exception):
    def __init__(self, problem: str, command: str | None = None) -> None:
        usage = USAGE.get(command or "", None)
        lines = [problem]
        lines.append(f"Usage: `{usage}`" if usage else "Try `/feedback help`.")
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class Invocation:
    name: str
    args: tuple[str, ...] = ()
    workspace: bool = False

    @property
    def changes(self) -> bool:
        """Does this sub-command change anything (and so need an admin)?"""
        if self.name == "emoji":
            return self.args[0] != "list"
        return self.name not in READING


def parse(text: str) -> Invocation:
    """Validate a `/feedback` command line; raises UsageError with a usage line."""
    tokens = text.split()
    workspace = "--workspace" in tokens
    tokens = [t for t in tokens if t != "--workspace"]
    if not tokens:
        return Invocation("help")
    name, args = tokens[0].lower(), tuple(tokens[1:])
    if name not in USAGE:
        raise UsageError(f"There is no `{name}` sub-command.")
    check = _CHECKS.get(name)
    if check is not None:
        args = check(args)
    return Invocation(name, args, workspace)


def _none(args: tuple[str, ...]) -> tuple[str, ...]:
    if args:
        raise ValueError("takes no arguments")
    return args


def _one_of(*choices: str) -> object:
    def check(args: tuple[str, ...]) -> tuple[str, ...]:
        if len(args) != 1 or args[0].lower() not in choices:
            raise ValueError(f"expects one of {', '.join(choices)}")
        return (args[0].lower(),)

    return check


def _agent(args: tuple[str, ...]) -> tuple[str, ...]:
    if len(args) != 1:
        raise ValueError("expects one agent id")
    try:
        return (str(uuid.UUID(args[0])),)
    except ValueError:
        raise ValueError(f"`{args[0]}` is not an agent id (a UUID)") from None


def _aquilax(args: tuple[str, ...]) -> tuple[str, ...]:
    if len(args) != 4 or args[0].lower() != "org" or args[2].lower() != "group":
        raise ValueError("expects `org <org> group <group>`")
    for value in (args[1], args[3]):
        if not AQUILAX_ID.match(value):
            raise ValueError(f"`{value}` is not an AquilaX id (letters, digits, - and _)")
    return args[1], args[3]


def _emoji_name(raw: str) -> str:
    if not EMOJI_NAME.match(raw.lower()):
        raise ValueError(f"`{raw}` is not an emoji name like :thumbsup:")
    return normalise_emoji(raw)


def _emoji(args: tuple[str, ...]) -> tuple[str, ...]:
    action = args[0].lower() if args else ""
    if action == "list" and len(args) == 1:
        return ("list",)
    if action == "remove" and len(args) == 2:
        return "remove", _emoji_name(args[1])
    if action == "add" and len(args) == 3:
        status = args[2].lower()
        if status not in {s.value for s in VOTE_STATUSES}:
            raise ValueError(f"`{args[2]}` is not a status: use thumbs_up, thumbs_down or flagged")
        return "add", _emoji_name(args[1]), status
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


def _days(args: tuple[str, ...]) -> tuple[str, ...]:
    if not args:
        return ("30",)
    days = number(args[0], MAX_DAYS) if len(args) == 1 else None
    if days is None or days < 1:
        raise ValueError(f"expects a number of days from 1 to {MAX_DAYS}")
    return (str(days),)


def _ids(args: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(delivery_id(a)) for a in args)


def _reset(args: tuple[str, ...]) -> tuple[str, ...]:
    if len(args) != 1 or (args[0].lower() not in RESETTABLE and args[0].lower() not in KEY_RESETS):
        raise ValueError("expects one setting to reset")
    return (args[0].lower(),)


def _checked(name: str, check: object) -> object:
    def run(args: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return check(args)  # type: ignore[operator, no-any-return]
        except ValueError as e:
            raise UsageError(f"`{name}` {e}.", name) from None

    return run


_CHECKS = {
    name: _checked(name, check)
    for name, check in {
        "help": _none,
        "status": _none,
        "deliveries": _none,
        "setup": _none,
        "provider": _one_of(*PROVIDERS),
        "agent": _agent,
        "aquilax": _aquilax,
        "emoji": _emoji,
        "reactions": _one_of("on", "off"),
        "form": _one_of("on", "off"),
        "prompt": _one_of("on", "off"),
        "stats": _days,
        "retry": _ids,
        "reset": _reset,
    }.items()
}


def help_text() -> str:
    lines = ["*feedback-bot* turns 👍 👎 🚩 on AI answers into feedback for the AI platform."]
    lines.append("Settings apply to this channel; add `--workspace` for every channel's default.")
    lines += [f"• `{usage}`" for usage in USAGE.values()]
    lines.append("Changing settings, `retry` and `setup` are for workspace admins.")
    return "\n".join(lines)


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _ago(at: float | None) -> str:
    if at is None:
        return "never"
    seconds = max(0, int(time.time() - at))
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{seconds} s ago"


async def probe(url: str, timeout: float = 3.0) -> str:
    """Can we open a TCP connection to the provider? No request is sent."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        return f"{host} unreachable ({type(e).__name__})"
    writer.close()
    return f"{host} reachable ({(time.perf_counter() - started) * 1000:.0f} ms)"


class Admin:
    """Carries out parsed sub-commands. Permission checks happen before this (in the handler)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        keys: Keys,
        settings: Settings,
        worker: DeliveryWorker,
    ) -> None:
        self._store = store
        self._config = config
        self._keys = keys
        self._settings = settings
        self._worker = worker

    async def run(self, inv: Invocation, user: str, channel: str) -> str:
        scope = WORKSPACE if inv.workspace else channel
        where = "every channel (workspace default)" if inv.workspace else f"<#{channel}>"
        match inv.name:
            case "help":
                return help_text()
            case "status":
                return await self.status(None if inv.workspace else channel)
            case "stats":
                return await self.stats(None if inv.workspace else channel, int(inv.args[0]))
            case "deliveries":
                return await self.deliveries()
            case "retry":
                return await self.retry([int(i) for i in inv.args])
            case "provider":
                await self._config.set(scope, "provider", inv.args[0], user)
                return f"New answers in {where} default to *{inv.args[0]}*."
            case "agent":
                await self._config.set(scope, "agent_id", inv.args[0], user)
                return f"The default Contextual agent for {where} is now `{inv.args[0]}`."
            case "aquilax":
                org, group = inv.args
                await self._config.set(scope, "aquilax_org", org, user)
                await self._config.set(scope, "aquilax_group", group, user)
                return f"AquilaX org `{org}` and group `{group}` are now the default for {where}."
            case "emoji":
                return await self.emoji(inv, scope, where, user)
            case "reactions" | "form" | "prompt":
                on = inv.args[0] == "on"
                await self._config.set(scope, SWITCHES[inv.name], on, user)
                return _switch_reply(inv.name, on, where)
            case "reset":
                return await self.reset(inv.args[0], scope, where, user)
        raise UsageError(f"There is no `{inv.name}` sub-command.")  # pragma: no cover

    async def status(self, channel: str | None) -> str:
        config = await self._config.for_channel(channel)
        counts = await self._store.delivery_counts()
        title = f"<#{channel}>" if channel else "the workspace defaults"
        lines = [f"*feedback-bot status for {title}*"]
        lines += [f"• {line}" for line in _config_lines(config)]
        lines.append("*Providers*")
        specs = PROVIDERS.values()
        probes = await asyncio.gather(*(probe(spec.base_url(self._settings)) for spec in specs))
        for spec, reach in zip(specs, probes, strict=True):
            last = await self._store.last_delivered_at(spec.name)
            lines.append(
                f"• {spec.label}:"
                f" API key {self._keys.status(spec.name).describe()}; {reach};"
                f" last delivery {_ago(last)}"
            )
        lines.append(
            f"*Deliveries*: {counts.pending} pending, {counts.sending} sending,"
            f" {counts.dead} dead"
            + (f", oldest waiting since {_ago(counts.oldest_pending_at)}" if counts.pending else "")
        )
        if counts.last_error:
            lines.append(f"Last error: {counts.last_error}")
        return "\n".join(lines)

    async def stats(self, channel: str | None, days: int) -> str:
        counts = await self._store.vote_stats(channel, time.time() - days * 86400)
        where = f"<#{channel}>" if channel else "all channels"
        period = "the last day" if days == 1 else f"the last {days} days"
        if not counts:
            return f"No votes in {where} in {period}."
        parts = []
        for status in VOTE_STATUSES:
            c = counts.get(status.value, {"cast": 0, "standing": 0})
            parts.append(
                f"{EMOJI_OF[status]} {status.value}: *{c['cast']}* ({c['standing']} still standing)"
            )
        total = sum(c["cast"] for c in counts.values())
        return f"*Votes in {where} in {period}*: {total}\n" + "\n".join(f"• {p}" for p in parts)

    async def deliveries(self) -> str:
        counts = await self._store.delivery_counts()
        dead = await self._store.list_deliveries([DeliveryState.DEAD], limit=10)
        head = f"*Deliveries*: {counts.pending} pending, {counts.dead} dead."
        if not dead:
            return head
        lines = [head]
        for d in dead:
            lines.append(
                f"• #{d.id} {d.verdict.status.value} for <#{d.answer.channel}> `{d.answer.ts}`"
                f" ({d.answer.provider}): {d.last_error}"
            )
        if counts.dead > len(dead):
            lines.append(f"… and {counts.dead - len(dead)} more.")
        lines.append("Admins can requeue them with `/feedback retry` (or `retry <id> …`).")
        return "\n".join(lines)

    async def retry(self, ids: list[int]) -> str:
        requeued, superseded = await self._store.retry_dead(ids)
        if requeued:
            self._worker.notify()
        reply = f"Requeued {requeued} dead deliveries."
        if superseded:
            reply += f" Dropped {superseded} that a newer verdict for the same answer replaces."
        return reply

    async def emoji(self, inv: Invocation, scope: str, where: str, user: str) -> str:
        current = await self._config.for_channel(None if scope == WORKSPACE else scope)
        if inv.args[0] == "list":
            return f"Feedback emoji in {where}: {_emoji_list(current.emoji)}"
        emoji_map = {name: status.value for name, status in current.emoji.items()}
        name = inv.args[1]
        if inv.args[0] == "add":
            emoji_map[name] = inv.args[2]
            await self._config.set(scope, "emoji", emoji_map, user)
            return f":{name}: now means *{inv.args[2]}* in {where}."
        if name not in emoji_map:
            raise UsageError(f":{name}: is not a feedback emoji in {where}.", "emoji")
        del emoji_map[name]
        await self._config.set(scope, "emoji", emoji_map, user)
        return f":{name}: no longer counts as feedback in {where}."

    async def reset(self, what: str, scope: str, where: str, user: str) -> str:
        if what in KEY_RESETS:
            await self._keys.set(KEY_RESETS[what], None, user)
            name = what.replace("-", " ")
            return f"Forgot the {name} entered in Slack; the environment's is used, if set."
        for key in RESETTABLE[what]:
            await self._config.set(scope, key, None, user)
        fallback = "the workspace default" if scope != WORKSPACE else "the built-in default"
        return f"`{what}` in {where} is back to {fallback}."


def _switch_reply(name: str, on: bool, where: str) -> str:
    if name == "reactions":
        return f"Reactions {'count' if on else 'no longer count'} as feedback in {where}."
    if name == "form":
        verb = "now offer" if on else "no longer offer"
        return f"👎 and 🚩 reactions in {where} {verb} the “what went wrong?” form."
    verb = "now get" if on else "no longer get"
    return f"Answers other apps post in {where} {verb} a “Was this helpful?” reply."


def _emoji_list(emoji: Mapping[str, Status]) -> str:
    by_status: dict[Status, list[str]] = {}
    for name, status in sorted(emoji.items()):
        by_status.setdefault(status, []).append(f":{name}:")
    if not by_status:
        return "none (reactions count for nothing here)"
    return "; ".join(f"{' '.join(names)} → {s.value}" for s, names in by_status.items())


def _config_lines(config: ChannelConfig) -> list[str]:
    def src(*keys: str) -> str:
        origins = {config.origin(k) for k in keys}
        return f"_({'/'.join(sorted(origins))})_"

    return [
        f"Provider for new answers: {config.provider or 'not set (answers must name one)'}"
        f" {src('provider')}",
        f"Contextual agent: {config.agent_id or 'not set'} {src('agent_id')}",
        f"AquilaX org / group: {config.aquilax_org or 'not set'} /"
        f" {config.aquilax_group or 'not set'} {src('aquilax_org', 'aquilax_group')}",
        f"Reactions count: {_on_off(config.reactions)} {src('reactions')}",
        f"👎/🚩 reactions offer the form: {_on_off(config.reaction_form)} {src('reaction_form')}",
        f"“Was this helpful?” under other apps' answers: {_on_off(config.prompt)} {src('prompt')}",
        f"Emoji: {_emoji_list(config.emoji)} {src('emoji')}",
    ]
