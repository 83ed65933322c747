"""When digests are due: the `digest` setting of a scope, and the periods it makes due.

A daily digest covers the 24 hours before FEEDBACK_DIGEST_HOUR (UTC) each day; a weekly one
the seven days before that hour on Mondays. The newest period that has ended is due, once
(storage's digest runs are the record): a bot that was down at the hour posts it when it
comes back, and a digest set up at 10:00 starts with the next period, not the one that
ended before it was set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from storage.models import DigestRun

SETTING = "digest"  # the setting's key, per channel or for the workspace
PERIODS: tuple[str, ...] = ("daily", "weekly")
Period = Literal["daily", "weekly"]
DAY = 86400.0
LENGTH = {"daily": DAY, "weekly": 7 * DAY}


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """Where a scope's digest goes, how often, and since when it is set."""

    channel: str
    period: Period
    since: float

    def setting(self) -> dict[str, object]:
        return {"channel": self.channel, "period": self.period, "since": self.since}

    @classmethod
    def from_setting(cls, value: Any) -> DigestPlan | None:
        if not isinstance(value, dict) or value.get("period") not in PERIODS:
            return None
        if not isinstance(value.get("channel"), str):
            return None
        return cls(value["channel"], value["period"], float(value.get("since") or 0.0))


def last_end(period: str, now: float, hour: int) -> float:
    """When the newest period that has ended by `now` ended."""
    at = datetime.fromtimestamp(now, UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    if at.timestamp() > now:
        at -= timedelta(days=1)
    if period == "weekly":
        at -= timedelta(days=at.weekday())  # back to Monday
    return at.timestamp()


def due_runs(plans: Iterable[tuple[str, Any]], now: float, hour: int) -> list[DigestRun]:
    """The runs due by `now` for the stored `digest` settings ((scope, value) pairs)."""
    due = []
    for scope, value in plans:
        plan = DigestPlan.from_setting(value)
        if plan is None:
            continue
        end = last_end(plan.period, now, hour)
        if end > plan.since:
            due.append(DigestRun(scope, plan.period, end - LENGTH[plan.period], end, plan.channel))
    return due


def run_now(scope: str, plan: DigestPlan, now: float) -> DigestRun:
    """/feedback digest now: the plan's period length, ending now."""
    return DigestRun(scope, "now", now - LENGTH[plan.period], now, plan.channel)
