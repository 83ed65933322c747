"""The digest's text (Slack mrkdwn) and its chart's series, from a period's figures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from bot.digest.schedule import DAY
from bot.slack.blocks import EMOJI, escape
from storage.models import DigestRun, PeriodFigures

TOP_CHANNELS = 5  # lines on the chart
COMMENT_LIMIT = 3800  # the digest rides as the chart's comment; Slack allows about 4,000


def approval(verdicts: int, approving: int) -> float | None:
    """The share of verdicts that are thumbs_up, in percent; None without a verdict."""
    return 100.0 * approving / verdicts if verdicts else None


def days_of(run: DigestRun) -> list[date]:
    start = datetime.fromtimestamp(run.period_start, UTC).date()
    count = max(1, round((run.period_end - run.period_start) / DAY))
    return [start + timedelta(days=i) for i in range(count)]


def chart_series(
    run: DigestRun, figures: PeriodFigures, names: Mapping[str, str]
) -> dict[str, list[float | None]]:
    """Approval per day per channel, for the channels with the most verdicts (at most
    five), each day with no verdict a gap."""
    days = len(days_of(run))
    per: dict[str, list[list[int]]] = {}
    for d in figures.days:
        if 0 <= d.day < days:
            cells = per.setdefault(d.channel, [[0, 0] for _ in range(days)])
            cells[d.day][0] += d.verdicts
            cells[d.day][1] += d.approving
    busiest = sorted(per, key=lambda c: (-sum(v for v, _ in per[c]), c))[:TOP_CHANNELS]
    return {f"#{names.get(c, c)}": [approval(v, a) for v, a in per[c]] for c in busiest}


def title(run: DigestRun, scope_name: str) -> str:
    end = datetime.fromtimestamp(run.period_end, UTC)
    length = "day" if run.period_end - run.period_start <= DAY + 1 else "week"
    return f"Feedback for {scope_name}: the {length} to {end:%a %d %b %H:%M} UTC"


def render(
    run: DigestRun,
    figures: PeriodFigures,
    names: Mapping[str, str],
    permalinks: Mapping[tuple[str, str], str],
) -> str:
    """The digest as mrkdwn: per channel and agent, then what went wrong, sources,
    escalations and dead deliveries."""
    scope = "the workspace" if run.scope == "*" else f"#{names.get(run.scope, run.scope)}"
    lines = [f"*{escape(title(run, scope))}*"]
    if not figures.groups:
        lines.append("No votes in this period.")
    for g in figures.groups:
        now = approval(g.verdicts, g.approving)
        before = figures.previous.get((g.channel, g.agent))
        was = approval(*before) if before else None
        rate = "no verdict" if now is None else f"approval *{now:.0f}%*"
        if now is not None and was is not None:
            delta = now - was
            arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
            rate += f" ({arrow} {abs(delta):.0f} pts from {was:.0f}%)"
        elif now is not None:
            rate += " (none the period before)"
        lines.append(
            f"• <#{g.channel}> · `{escape(g.agent)}`: {g.answers} answers voted on,"
            f" {g.votes} votes, {rate}"
        )
    if figures.categories:
        top = ", ".join(f"{escape(c)} ({n})" for c, n in figures.categories)
        lines.append(f"*Top 👎 categories:* {top}")
    for d in figures.explained[:3]:
        link = permalinks.get((d.channel, d.ts))
        answer = f"<{link}|an answer>" if link else "an answer"
        said = escape((d.explanation or "")[:200])
        category = f" _{escape(d.category)}_" if d.category else ""
        lines.append(f"> {EMOJI[d.status]}{category} “{said}” on {answer} in <#{d.channel}>")
    if figures.sources:
        worst = ", ".join(f"{escape(s.label)} ({s.up} 👍 / {s.down} 👎)" for s in figures.sources)
        lines.append(f"*Lowest-rated sources:* {worst}")
    escalations = f"*Escalations:* {figures.open_escalations} open"
    if figures.resolved:
        by = ", ".join(dict.fromkeys(f"<@{r.by}>" for r in figures.resolved))
        escalations += f"; {len(figures.resolved)} resolved in the period (by {by})"
    lines.append(escalations)
    if figures.dead:
        lines.append(
            f"*Dead deliveries:* {figures.dead} (`/feedback deliveries` lists them,"
            " `/feedback retry` sends them again)"
        )
    text = "\n".join(lines)
    if len(text) <= COMMENT_LIMIT:
        return text
    # Whole lines only: a cut inside a link or a mention would show its markup.
    return text[: text.rfind("\n", 0, COMMENT_LIMIT - 1)] + "\n…"
