"""Rows as both backends read and write them: the column lists their queries share, the
values their inserts take, and the converters from a row (an sqlite3.Row or an asyncpg
Record, both read by column name) to the types the store hands out. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from bot.domain import (
    ESCALATION,
    ESCALATION_TARGET,
    WITHDRAWN,
    Answer,
    Delivery,
    DeliveryState,
    Provenance,
    SlotVerdict,
    Source,
    Status,
    StoredVote,
    Target,
    Verdict,
    Vote,
    VoteChange,
)
from storage.models import (
    DayFigures,
    DeliveryCounts,
    DigestRecord,
    DigestRun,
    Downvote,
    GroupFigures,
    HeldMessage,
    MetadataRegistration,
    PeriodFigures,
    ResolvedEscalation,
    SourceFigures,
)


class Row(Protocol):
    """A row of either driver: read by column name or position."""

    def __getitem__(self, key: int | str, /) -> Any: ...


# Enums by stored value. A dict lookup, not Enum's call (~1 µs each): several are read on
# every vote and every claimed delivery.
_STATUS: dict[str, Status] = {s.value: s for s in Status}
_STATE: dict[str, DeliveryState] = {s.value: s for s in DeliveryState}


# ---------------------------------------------------------------------------------- answers

# The columns answer_from_row reads but `targets` and `sources`, which each backend
# aggregates its own way into JSON arrays: of TARGET_COLUMNS' values, and of [content_id,
# label, target].
ANSWER_FIELDS = "a.id, a.channel, a.ts, a.posted_by_bot, a.thread_ts, a.prompt_ts"

# A target's columns in answer_targets, in Target's order (its position aside).
TARGET_COLUMNS = (
    "provider, agent_id, message_id, request_id, org, grp, run_id, trace_id, observation_id"
)

# The columns add_answer inserts, in answer_values' order (both backends insert these).
ANSWER_INSERT = (
    "channel, ts, posted_by_bot, thread_ts, created_at, registered_via, registered_by_app,"
    " metadata_ts"
)
ANSWER_INSERT_COUNT = ANSWER_INSERT.count(",") + 1
TARGET_INSERT = f"answer_id, position, {TARGET_COLUMNS}"
TARGET_INSERT_COUNT = TARGET_INSERT.count(",") + 1


def answer_values(answer: Answer, provenance: Provenance | None, now: float) -> tuple[Any, ...]:
    """The values of ANSWER_INSERT's columns, in its order."""
    return (
        answer.channel,
        answer.ts,
        int(answer.posted_by_bot),
        answer.thread_ts,
        now,
        provenance.via if provenance else None,
        provenance.app_id if provenance else None,
        provenance.metadata_ts if provenance else None,
    )


def target_values(answer_id: int, answer: Answer) -> list[tuple[Any, ...]]:
    """The rows of TARGET_INSERT's columns for the answer's targets."""
    return [(answer_id, t.position, *t.ids()) for t in answer.targets]


def source_values(answer_id: int, answer: Answer) -> list[tuple[Any, ...]]:
    """answer_sources' rows (answer_id, position, content_id, label, target)."""
    return [(answer_id, i, s.content_id, s.label, s.target) for i, s in enumerate(answer.sources)]


def answer_from_row(row: Row) -> Answer:
    targets = tuple(
        Target(p, a, m, r, o, g, run, trace, obs, position=i)
        for i, (p, a, m, r, o, g, run, trace, obs) in enumerate(json.loads(row["targets"]))
    )
    sources = tuple(
        Source(cid, label, target) for cid, label, target in json.loads(row["sources"] or "[]")
    )
    return Answer(
        id=row["id"],
        channel=row["channel"],
        ts=row["ts"],
        targets=targets,
        sources=sources,
        posted_by_bot=bool(row["posted_by_bot"]),
        thread_ts=row["thread_ts"],
        prompt_ts=row["prompt_ts"],
    )


def metadata_registration_from_row(row: Row) -> MetadataRegistration:
    return MetadataRegistration(
        row["channel"],
        row["ts"],
        row["created_at"],
        row["registered_via"],
        row["registered_by_app"],
    )


# ------------------------------------------------------------------------------------ votes

# What an export row holds, in order (bot/votes/export.py names them for CSV and JSON).
EXPORT_COLUMNS = (
    "v.id, a.channel, a.ts, t.provider, t.agent_id, t.message_id, t.request_id, t.org,"
    " t.grp, v.content_id, v.user_id, v.status, v.origin, v.explanation, v.category,"
    " v.cast_at, v.withdrawn_at, a.removed_at IS NOT NULL, t.run_id, t.trace_id, t.observation_id"
)
# What the export reads EXPORT_COLUMNS from: the vote, its answer, and the target its slot
# goes to first (a source's own target; the answer's first for the answer itself). Each
# backend adds the column of all the answer's targets, `provider:id` separated by spaces.
EXPORT_FROM = (
    "votes v JOIN answers a ON a.id = v.answer_id"
    " LEFT JOIN answer_sources s ON s.answer_id = v.answer_id AND s.content_id = v.content_id"
    " JOIN answer_targets t ON t.answer_id = v.answer_id AND t.position = coalesce(s.target, 0)"
)
# A target's provider and the id that names the answer there (each has exactly one of these).
TARGET_NAME = "t2.provider || ':' || coalesce(t2.message_id, t2.request_id, t2.run_id, t2.trace_id)"


def standing_vote(row: Row | None) -> tuple[int, Status] | None:
    """A user's standing vote from one origin (columns id, status), if there is one."""
    return (row["id"], _STATUS[row["status"]]) if row is not None else None


def vote_from_row(row: Row) -> Vote:
    """A standing vote as the verdict reads it (id, user_id, status, explanation, category)."""
    return Vote(
        row["id"], row["user_id"], _STATUS[row["status"]], row["explanation"], row["category"]
    )


def stored_vote_from_row(row: Row) -> StoredVote:
    return StoredVote(
        id=row["id"],
        answer_id=row["answer_id"],
        content_id=row["content_id"],
        user=row["user_id"],
        origin=row["origin"],
        status=_STATUS[row["status"]],
        explanation=row["explanation"],
        category=row["category"],
        is_standing=bool(row["standing"]),
    )


def slot_verdict(content_id: str, newest: str | None, standing: int) -> SlotVerdict:
    """A slot's verdict: its newest standing vote's status, or removed when none stands."""
    return SlotVerdict(
        content_id, Status(newest) if newest is not None else WITHDRAWN.status, int(standing)
    )


def vote_stats_from_rows(rows: Iterable[Row]) -> dict[str, dict[str, int]]:
    """Rows of (status, votes cast, votes standing) per status."""
    return {r[0]: {"cast": int(r[1]), "standing": int(r[2])} for r in rows}


# ------------------------------------------------------------------------------- the outbox

# The columns delivery_from_row reads but the answer's (the backend's ANSWER_COLUMNS).
DELIVERY_FIELDS = (
    "d.id AS delivery_id, d.target, d.content_id, d.status, d.explanation, d.category, d.state,"
    " d.attempts, d.next_attempt_at, d.created_at, d.last_error, d.provider_ref"
)


def verdict_from_row(row: Row) -> Verdict:
    return Verdict(_STATUS[row["status"]], row["explanation"], row["category"])


def slot_row(row: Row) -> tuple[int, DeliveryState, Verdict]:
    """A recent delivery row of a slot as settling reads it (storage/rules.py: settle)."""
    return row["id"], _STATE[row["state"]], verdict_from_row(row)


def delivery_from_row(row: Row) -> Delivery:
    return _delivery(row, _STATE[row["state"]], row["attempts"])


def claimed_from_row(row: Row) -> Delivery:
    """A row claimed this turn, read before the claim marked it: it is sending now, with one
    attempt more."""
    return _delivery(row, DeliveryState.SENDING, row["attempts"] + 1)


def _delivery(row: Row, state: DeliveryState, attempts: int) -> Delivery:
    answer = answer_from_row(row)
    return Delivery(
        id=row["delivery_id"],
        answer=answer,
        target=(
            ESCALATION_TARGET if row["target"] == ESCALATION else answer.targets[row["target"]]
        ),
        content_id=row["content_id"],
        verdict=verdict_from_row(row),
        state=state,
        attempts=attempts,
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        provider_ref=row["provider_ref"],
    )


# The outbox's rows waiting, in flight or dead, per provider of their target.
# Escalations (no answer's target) count as "slack".
COUNTS_BY_PROVIDER = (
    "SELECT coalesce(t.provider, 'slack'), d.state, count(*) FROM deliveries d"
    " LEFT JOIN answer_targets t ON t.answer_id = d.answer_id AND t.position = d.target"
    " WHERE d.state IN ('pending', 'sending', 'dead') GROUP BY 1, d.state"
)


def delivery_counts_from_rows(
    counts: Row, last_error: Row | None, by_provider: Iterable[Row] = ()
) -> DeliveryCounts:
    """The outbox's counts (pending, sending, dead, the oldest pending row's creation), its
    newest error, if any, and COUNTS_BY_PROVIDER's rows."""
    split: dict[str, dict[str, int]] = {}
    for row in by_provider:
        split.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
    return DeliveryCounts(
        pending=int(counts[0]),
        sending=int(counts[1]),
        dead=int(counts[2]),
        oldest_pending_at=float(counts[3]) if counts[3] is not None else None,
        last_error=last_error[0] if last_error else None,
        by_provider=split,
    )


# ---------------------------------------------------------------------------- held reactions


def held_values(
    channel: str, ts: str, change: VoteChange, event_id: str | None, now: float
) -> tuple[Any, ...]:
    """The columns `hold` inserts, in its order (both backends insert these)."""
    status = change.status.value if change.status else None
    return (channel, ts, change.user, change.origin, change.action, status, event_id, now)


def held_reaction_from_row(answer_id: int, row: Row) -> tuple[int, VoteChange, float]:
    """A held reaction (id, user_id, origin, action, status, received_at) as a change to the
    answer now on its message: its row id, the change, and when it came."""
    status = _STATUS[row["status"]] if row["status"] else None
    change = VoteChange(answer_id, row["user_id"], row["origin"], row["action"], status)
    return int(row["id"]), change, float(row["received_at"])


def held_message_from_row(row: Row) -> HeldMessage:
    """A message's held reactions (channel, ts, n: how many, first_at: the first's arrival)."""
    return HeldMessage(row["channel"], row["ts"], int(row["n"]), row["first_at"])


# ------------------------------------------------------------------------- digests

# The answer's agent, as a period's figures group by it: its first target's Contextual
# agent, else that target's provider.
FIRST_AGENT = (
    "(SELECT coalesce(t.agent_id, t.provider) FROM answer_targets t"
    " WHERE t.answer_id = a.id AND t.position = 0)"
)


def digest_run_values(run: DigestRun) -> tuple[str, str, float, float, str]:
    """A run's columns as digest_runs' inserts list them."""
    return run.scope, run.period, run.period_start, run.period_end, run.channel


def period_figures_from_rows(
    verdicts: Sequence[Any],
    cast: Sequence[Any],
    categories: Sequence[Any],
    explained: Sequence[Any],
    recent: Sequence[Any],
    sources: Sequence[Any],
    open_escalations: int,
    resolved: Sequence[Any],
    dead: int,
    *,
    days: int,
) -> PeriodFigures:
    """The rows of a backend's `period_figures` as PeriodFigures. `days`: how long the
    previous period is, as verdict days count from its start."""
    current: dict[tuple[str, str], list[int]] = {}
    previous: dict[tuple[str, str], tuple[int, int]] = {}
    day_figures: list[DayFigures] = []
    for channel, agent, day, count, approving in verdicts:
        key = (str(channel), str(agent))
        if day < days:
            seen = previous.get(key, (0, 0))
            previous[key] = (seen[0] + int(count), seen[1] + int(approving))
            continue
        figures = current.setdefault(key, [0, 0, 0, 0])
        figures[2] += int(count)
        figures[3] += int(approving)
        day_figures.append(DayFigures(str(channel), int(day) - days, int(count), int(approving)))
    for channel, agent, votes, answers in cast:
        figures = current.setdefault((str(channel), str(agent)), [0, 0, 0, 0])
        figures[0], figures[1] = int(answers), int(votes)
    return PeriodFigures(
        groups=tuple(
            GroupFigures(channel, agent, *counts)
            for (channel, agent), counts in sorted(current.items())
        ),
        previous=previous,
        days=tuple(sorted(day_figures, key=lambda d: (d.channel, d.day))),
        categories=tuple((str(c), int(n)) for c, n in categories),
        explained=tuple(downvote_from_row(r) for r in explained),
        recent=tuple(downvote_from_row(r) for r in recent),
        sources=tuple(SourceFigures(str(label), int(up), int(down)) for label, up, down in sources),
        open_escalations=open_escalations,
        resolved=tuple(ResolvedEscalation(c, ts, by, at) for c, ts, by, at in resolved),
        dead=dead,
    )


def downvote_from_row(row: Any) -> Downvote:
    return Downvote(row[0], row[1], row[2], Status(row[3]), row[4], row[5], row[6])


def digest_record_from_row(r: Row) -> DigestRecord:
    """A row of `list_digests`: id, scope, period, period_start, period_end, channel,
    attempts, state, last_error, updated_at."""
    run = DigestRun(r[1], r[2], r[3], r[4], r[5], id=r[0], attempts=r[6])
    return DigestRecord(run, _STATE[r[7]], r[8], r[9])
