"""The replies of the commands that bring feedback to people (`escalate`, `digest`), what
they post in the channel they name, and their lines in `/feedback status`."""

from __future__ import annotations

from collections.abc import Sequence

from bot.config.channels import ChannelOptions
from bot.digest.schedule import DigestPlan
from bot.domain import DeliveryState, Triage
from storage.models import DigestRecord


def escalation_here(where: str, anonymous: bool, user: str) -> str:
    """Posted in the triage channel when it is chosen (which also proves the bot may)."""
    who = "without naming the voters" if anonymous else "with who voted"
    return (
        f"👋 <@{user}> chose this channel for feedback-bot's escalations: each answer in"
        f" {where} that gets a 👎 or 🚩 will show up here once, {who}, kept up to date as"
        " votes and explanations come in, with a *Resolved* button."
    )


def escalation_set(channel: str, where: str, anonymous: bool) -> str:
    named = "The voters are not named." if anonymous else "Who voted is shown."
    return (
        f"👎 and 🚩 on answers in {where} are now escalated to <#{channel}>. {named}"
        " `/feedback escalate off` stops it."
    )


def escalation_off(where: str) -> str:
    return f"Answers in {where} are no longer escalated. Messages already posted stay."


def digest_here(where: str, plan: DigestPlan, hour: int, user: str) -> str:
    when = "every day" if plan.period == "daily" else "every Monday"
    return (
        f"👋 <@{user}> chose this channel for feedback-bot's {plan.period} digest of {where}:"
        f" {when} at {hour:02d}:00 UTC, the votes, approval and what went wrong, with a chart."
    )


def digest_set(plan: DigestPlan, where: str, hour: int) -> str:
    when = "each day" if plan.period == "daily" else "each Monday"
    return (
        f"The {plan.period} digest of {where} goes to <#{plan.channel}> {when} at"
        f" {hour:02d}:00 UTC (FEEDBACK_DIGEST_HOUR). `/feedback digest now` posts one now."
    )


def digest_off(where: str) -> str:
    return f"No more digests of {where}."


def no_digest(where: str) -> str:
    return (
        f"{where} has no digest to post: choose where it goes first, with"
        " `/feedback digest #channel daily` (or weekly)."
    )


def digest_queued(plan: DigestPlan, queued: bool) -> str:
    if not queued:
        return f"That digest is already on its way to <#{plan.channel}>."
    return f"The digest ({plan.period}, ending now) is on its way to <#{plan.channel}>."


def status_lines(config: ChannelOptions) -> list[str]:
    triage = Triage.from_setting(config.escalate)
    escalation = "off"
    if triage is not None:
        voters = "voters not named" if triage.anonymous else "voters named"
        escalation = f"to <#{triage.channel}> ({voters})"
    plan = DigestPlan.from_setting(config.digest)
    digest = f"{plan.period} to <#{plan.channel}>" if plan is not None else "off"
    return [
        f"Escalations of 👎 and 🚩: {escalation} _({config.origin('escalate')})_",
        f"Digest: {digest} _({config.origin('digest')})_",
    ]


def digest_lines(records: Sequence[DigestRecord]) -> str:
    """The newest digests that are not posted (waiting for a retry, or dead), for
    `/feedback deliveries`; "" when every one was posted."""
    unsent = [r for r in records if r.state is not DeliveryState.DELIVERED]
    if not unsent:
        return ""
    lines = ["", "*Digests not posted*"]
    for r in unsent:
        scope = "the workspace" if r.run.scope == "*" else f"<#{r.run.scope}>"
        lines.append(
            f"• {r.run.period} digest of {scope} to <#{r.run.channel}>: {r.state.value}"
            f" after {r.run.attempts} tries{f': {r.last_error}' if r.last_error else ''}"
        )
    if any(r.state is DeliveryState.DEAD for r in unsent):
        lines.append("A dead digest is not tried again; `/feedback digest now` posts a new one.")
    return "\n".join(lines)
