"""`/feedback` replies, as Slack mrkdwn: only text here, built from the values `execute`
gathered. Every reply a user can read is written in this module (help and usage lines
are the grammar's)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.admin import notices
from bot.answers.late_lookup import LookupStatus
from bot.config.channels import ChannelOptions
from bot.domain import VOTE_STATUSES, Delivery, Status
from bot.providers import PROVIDERS
from bot.slack.blocks import EMOJI
from bot.support.words import counted
from storage import DeliveryCounts
from storage.models import MetadataRegistration

NOT_ALLOWED = (
    "Only workspace admins and owners (and the users in FEEDBACK_ADMINS) can change"
    " feedback-bot. Anyone can use `help`, `status`, `stats` and `deliveries`."
)
SETUP_NEEDS_SECRET = (
    "Keys typed into Slack are stored encrypted, which needs FEEDBACK_SECRET_KEY in the bot's"
    " environment (make one with `feedback-bot secret-key`). Without it, set"
    f" {' and '.join(spec.key_variable for spec in PROVIDERS.values())}"
    " in the environment instead. Never paste a key into a channel."
)


@dataclass(frozen=True, slots=True)
class ProviderLine:
    """One provider in `status`."""

    label: str
    key: str  # KeyStatus.describe(): never the key itself
    reach: str  # what the TCP probe found
    last_delivery: float | None


def where(channel: str, workspace: bool) -> str:
    """The scope a setting applies to."""
    return "every channel (workspace default)" if workspace else f"<#{channel}>"


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


# ------------------------------------------------------------------ reports


def status_report(
    channel: str | None,
    config: ChannelOptions,
    providers: Sequence[ProviderLine],
    counts: DeliveryCounts,
    last_metadata: MetadataRegistration | None = None,
    lookup: LookupStatus | None = None,
    ask: str | None = None,
) -> str:
    title = f"<#{channel}>" if channel else "the workspace defaults"
    lines = [f"*feedback-bot status for {title}*"]
    lines += [f"• {line}" for line in _config_lines(config)]
    origin = config.origin("ask_agent") if "ask_agent" in config.origins else "environment"
    lines.append(f"• Ask the AI: {f'agent `{ask}`' if ask else 'off'} _({origin})_")
    lines += [f"• {line}" for line in notices.status_lines(config)]
    lines.append("*Answers that register themselves* (Slack message metadata)")
    lines.append(f"• Trusted apps: {_apps(config.trusted_apps)}")
    lines.append(
        f"• Late lookup of unknown reacted messages: {_on_off(config.late_lookup)}"
        f" _({config.origin('late_lookup')})_"
    )
    if lookup is not None and (config.late_lookup or lookup.waiting or lookup.missing_scopes):
        lines += [f"  ◦ {line}" for line in _lookup_lines(lookup)]
    if last_metadata is None:
        lines.append("• Last registration from metadata: never")
    else:
        last = last_metadata
        lines.append(
            f"• Last registration from metadata: {_ago(last.at)}, app `{last.app_id or '?'}`"
            f" ({_VIA[last.via]}), <#{last.channel}> `{last.ts}`"
        )
    lines.append("*Providers*")
    for p in providers:
        lines.append(
            f"• {p.label}: API key {p.key}; {p.reach}; last delivery {_ago(p.last_delivery)}"
        )
    lines.append(
        f"*Deliveries*: {counts.pending} pending, {counts.sending} sending,"
        f" {counts.dead} dead{_by_provider(counts)}"
        + (f", oldest waiting since {_ago(counts.oldest_pending_at)}" if counts.pending else "")
    )
    if counts.last_error:
        lines.append(f"Last error: {counts.last_error}")
    return "\n".join(lines)


def _by_provider(counts: DeliveryCounts) -> str:
    """` (contextual: 1 pending; langfuse: 2 pending, 1 dead)`: where the figures are, once
    more than one provider has any."""
    if len(counts.by_provider) < 2:
        return ""
    parts = []
    for provider, states in sorted(counts.by_provider.items()):
        figures = ", ".join(f"{n} {state}" for state, n in sorted(states.items()) if n)
        parts.append(f"{provider}: {figures}")
    return f" ({'; '.join(parts)})"


def _lookup_lines(lookup: LookupStatus) -> list[str]:
    lines = []
    if lookup.missing_scopes:
        scopes = " and ".join(lookup.missing_scopes)
        n = lookup.stopped_channels
        where = "" if lookup.stopped_everywhere else f" in {n} channel{'s' if n != 1 else ''}"
        lines.append(
            f"Late lookup stopped{where}: missing scope {scopes}. Add it under OAuth &"
            " Permissions and reinstall the app; the bot checks its scopes again every 10 min"
            " and after any `/feedback` setting change."
        )
    budget = (
        f"budget {lookup.per_minute} Slack call{'s' if lookup.per_minute != 1 else ''} a minute"
    )
    if lookup.paused_for > 0:
        budget += f", paused {math.ceil(lookup.paused_for)} s more: Slack said rate limited"
    else:
        budget += f", {lookup.left} left now"
    lines.append(f"{lookup.waiting} lookup{'s' if lookup.waiting != 1 else ''} waiting; {budget}")
    return lines


def stats_report(channel: str | None, days: int, counts: Mapping[str, Mapping[str, int]]) -> str:
    where = f"<#{channel}>" if channel else "all channels"
    period = "the last day" if days == 1 else f"the last {days} days"
    if not counts:
        return f"No votes in {where} in {period}."
    parts = []
    for status in VOTE_STATUSES:
        c = counts.get(status.value, {"cast": 0, "standing": 0})
        parts.append(
            f"{EMOJI[status]} {status.value}: *{c['cast']}* ({c['standing']} still standing)"
        )
    total = sum(c["cast"] for c in counts.values())
    return f"*Votes in {where} in {period}*: {total}\n" + "\n".join(f"• {p}" for p in parts)


def deliveries_report(counts: DeliveryCounts, dead: Sequence[Delivery]) -> str:
    head = f"*Deliveries*: {counts.pending} pending, {counts.dead} dead{_by_provider(counts)}."
    if not dead:
        return head
    lines = [head]
    for d in dead:
        lines.append(
            f"• #{d.id} {d.verdict.status.value} for <#{d.answer.channel}> `{d.answer.ts}`"
            f" ({d.target.describe()}): {d.last_error}"
        )
    if counts.dead > len(dead):
        lines.append(f"… and {counts.dead - len(dead)} more.")
    lines.append("Admins can requeue them with `/feedback retry` (or `retry <id> …`).")
    return "\n".join(lines)


def _emoji_list(emoji: Mapping[str, Status]) -> str:
    by_status: dict[Status, list[str]] = {}
    for name, status in sorted(emoji.items()):
        by_status.setdefault(status, []).append(f":{name}:")
    if not by_status:
        return "none (reactions count for nothing here)"
    return "; ".join(f"{' '.join(names)} → {s.value}" for s, names in by_status.items())


def _config_lines(config: ChannelOptions) -> list[str]:
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


_VIA = {
    "metadata": "metadata event",
    "scan": "`answers scan`",
    "lookup": "late lookup",
}


def _apps(apps: frozenset[str]) -> str:
    if not apps:
        return "none (no app's metadata registers answers here: `/feedback trust add <app id>`)"
    return ", ".join(f"`{a}`" for a in sorted(apps))


# ------------------------------------------------------------------ confirmations


def trusted(app_id: str, where: str) -> str:
    return (
        f"Answer metadata from app `{app_id}` now registers answers in {where}. Its answers"
        " are sent to the providers with your keys: trust only your own assistants."
    )


def already_trusted(app_id: str, where: str) -> str:
    return f"App `{app_id}` is already trusted in {where}."


def distrusted(app_id: str, where: str, *, workspace: bool) -> str:
    reply = (
        f"Answer metadata from app `{app_id}` no longer registers answers in {where}."
        " Answers it registered before stay."
    )
    if workspace:
        reply += " Channels that trust it themselves still do (`/feedback trust list` there)."
    return reply


def not_trusted_here(app_id: str, where: str, *, by_default: bool, by_workspace: bool) -> str:
    if by_default:
        return (
            f"App `{app_id}` is trusted by FEEDBACK_TRUSTED_APPS in the bot's environment:"
            " remove it there."
        )
    if by_workspace:
        return f"App `{app_id}` is trusted for the whole workspace: add `--workspace`."
    return f"App `{app_id}` is not trusted in {where}."


def trusted_listed(apps: frozenset[str], by_default: frozenset[str], where: str) -> str:
    if not apps:
        return f"No app is trusted in {where}: {_apps(apps)}"
    lines = [f"Apps whose answer metadata registers answers in {where}:"]
    for app in sorted(apps):
        note = " _(FEEDBACK_TRUSTED_APPS)_" if app in by_default else ""
        lines.append(f"• `{app}`{note}")
    return "\n".join(lines)


def late_lookup_needs(missing_scopes: Sequence[str], has_trusted: bool) -> str:
    notes = []
    if missing_scopes:
        notes.append(
            f"It needs the {' and '.join(missing_scopes)} scope(s), which the bot was not"
            " granted: add them under OAuth & Permissions and reinstall the app."
        )
    if not has_trusted:
        notes.append("No app is trusted here yet: `/feedback trust add <app id>`.")
    return "".join(f"\n{n}" for n in notes)


def retried(requeued: int, superseded: int, ids: Sequence[int] = ()) -> str:
    if requeued + superseded == 0:
        # A retry that changed nothing must not read like one that worked.
        which = f" {', '.join(map(str, ids))}" if ids else ""
        return (
            f"Nothing requeued: no dead delivery{which} of an answer still registered"
            " (`/feedback deliveries` lists the dead ones)."
        )
    reply = f"Requeued {counted(requeued, 'dead delivery', 'dead deliveries')}."
    if superseded:
        reply += f" Dropped {superseded} that a newer verdict for the same answer replaces."
    return reply


def provider_set(provider: str, where: str) -> str:
    return f"New answers in {where} default to *{provider}*."


def agent_set(agent_id: str, where: str) -> str:
    return f"The default Contextual agent for {where} is now `{agent_id}`."


def ask_set(agent_id: str | None, where: str) -> str:
    if agent_id is None:
        return f"Nobody answers questions asked in {where} now."
    return (
        f"Questions asked in {where} (a mention, a direct message, the assistant) are now"
        f" answered by the Contextual agent `{agent_id}`."
    )


def aquilax_set(org: str, group: str, where: str) -> str:
    return f"AquilaX org `{org}` and group `{group}` are now the default for {where}."


def emoji_listed(emoji: Mapping[str, Status], where: str) -> str:
    return f"Feedback emoji in {where}: {_emoji_list(emoji)}"


def emoji_added(name: str, status: Status, where: str) -> str:
    return f":{name}: now means *{status.value}* in {where}."


def emoji_removed(name: str, where: str) -> str:
    return f":{name}: no longer counts as feedback in {where}."


def not_an_emoji(name: str, where: str) -> str:
    return f":{name}: is not a feedback emoji in {where}."


def switched(name: str, on: bool, where: str) -> str:
    if name == "reactions":
        return f"Reactions {'count' if on else 'no longer count'} as feedback in {where}."
    if name == "form":
        verb = "now offer" if on else "no longer offer"
        return f"👎 and 🚩 reactions in {where} {verb} the “what went wrong?” form."
    if name == "late-lookup":
        return f"Reactions on messages in {where} that are not registered answers" + (
            " are now held while the bot looks the message up in Slack (one Web API call"
            " per such message); if a trusted app's answer metadata is on it, the answer"
            " is registered and the reactions count."
            if on
            else " are ignored again, without a lookup."
        )
    verb = "now get" if on else "no longer get"
    return f"Answers other apps post in {where} {verb} a “Was this helpful?” reply."


def key_forgotten(provider: str) -> str:
    return f"Forgot the {provider} key entered in Slack; the environment's is used, if set."


def reset_done(setting: str, where: str, workspace: bool) -> str:
    fallback = "the built-in default" if workspace else "the workspace default"
    return f"`{setting}` in {where} is back to {fallback}."
