"""The App Home's insights: what a digest shows, for the last 7 and 30 days of the whole
workspace, and the newest 👎 and 🚩 with what the voters said, for admins; a voter's own
count for everyone else."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.digest.report import approval
from bot.digest.schedule import DAY
from bot.slack.api import permalink
from bot.slack.blocks import EMOJI, escape
from storage import Store
from storage.models import PeriodFigures

WINDOWS = (7, 30)


async def admin_insights(store: Store, slack: AsyncWebClient, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = ["*Insights*"]
    newest: PeriodFigures | None = None
    for days in WINDOWS:
        start = now - days * DAY
        figures = await store.period_figures(None, start, now, start - days * DAY)
        newest = newest or figures
        lines.append(f"• Last {days} days: {summary(figures)}")
    assert newest is not None
    if newest.recent:
        lines.append("*Latest 👎 and 🚩*")
    links = {}
    for d in newest.recent:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            if link := await permalink(slack, d.channel, d.ts):
                links[(d.channel, d.ts)] = link
    lines += recent_lines(newest, links)
    return "\n".join(lines)


def summary(figures: PeriodFigures) -> str:
    answers = sum(g.answers for g in figures.groups)
    votes = sum(g.votes for g in figures.groups)
    verdicts = sum(g.verdicts for g in figures.groups)
    approving = sum(g.approving for g in figures.groups)
    before = [sum(p[i] for p in figures.previous.values()) for i in (0, 1)]
    now, was = approval(verdicts, approving), approval(before[0], before[1])
    rate = "no verdict" if now is None else f"approval *{now:.0f}%*"
    if now is not None and was is not None:
        rate += f" ({'▲' if now > was else '▼' if now < was else '='} from {was:.0f}%)"
    return (
        f"{answers} answers voted on, {votes} votes, {rate};"
        f" {figures.open_escalations} open escalations, {figures.dead} dead deliveries"
    )


def recent_lines(figures: PeriodFigures, links: Mapping[tuple[str, str], str]) -> list[str]:
    lines = []
    for d in figures.recent:
        link = links.get((d.channel, d.ts))
        answer = f"<{link}|an answer>" if link else f"an answer (`{d.ts}`)"
        said = f": “{escape(d.explanation[:200])}”" if d.explanation else ""
        category = f" _{escape(d.category)}_" if d.category else ""
        lines.append(
            f"• {EMOJI[d.status]}{category} by <@{d.user}> on {answer} in <#{d.channel}>{said}"
        )
    return lines


def own_votes(count: int) -> str:
    if not count:
        return "You have not voted on an answer yet."
    return f"Your votes standing on AI answers: *{count}*. Thank you: each one reaches the AI team."
