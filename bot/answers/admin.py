"""Looking registered answers up, listing and removing them: the one place behind
`GET`/`DELETE /v1/answers…` (bot/web/answers.py) and `feedback-bot answers list|show|remove`.

A removed answer's votes and delivery history stay (for statistics); its queued deliveries
are cancelled; later reactions on its message are ignored; the message may be registered
afresh (storage/store.py: remove_answer).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import TypeAdapter

from bot.answers.request import answer_json
from bot.domain import Answer, Delivery, SlotVerdict
from bot.providers.registration import ChannelId, SlackTs
from bot.support.words import counted
from storage import Removal, Store
from storage.models import EscalationState

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
SHOWN_DELIVERIES = 20
# The same rules as registration's, so that what one accepts the other finds.
_CHANNEL: TypeAdapter[str] = TypeAdapter(ChannelId)
_TS: TypeAdapter[str] = TypeAdapter(SlackTs)


class BadQuery(ValueError):
    """A parameter that cannot be taken; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AnswerPage:
    answers: list[Answer]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AnswerDetail:
    answer: Answer
    verdicts: list[SlotVerdict]
    deliveries: list[Delivery]  # newest first, SHOWN_DELIVERIES at most
    escalation: EscalationState | None = None  # brought to a triage channel, and resolved?


class AnswerAdmin:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(
        self, channel: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> AnswerPage:
        """Registered answers, newest first; `cursor` is the page's `next_cursor` before."""
        if channel is not None:
            channel = check_channel(channel)
        if not 1 <= limit <= MAX_LIMIT:
            raise BadQuery(f"limit must be a number from 1 to {MAX_LIMIT}")
        before = _decode(cursor) if cursor is not None else None
        answers, next_id = await self._store.list_answers(channel, limit, before)
        return AnswerPage(answers, _encode(next_id) if next_id is not None else None)

    async def show(self, channel: str, ts: str) -> AnswerDetail | None:
        answer = await self._store.find_answer(check_channel(channel), check_ts(ts))
        if answer is None:
            return None
        verdicts = await self._store.slot_verdicts(answer.id)
        deliveries = await self._store.list_deliveries(limit=SHOWN_DELIVERIES, answer_id=answer.id)
        escalation = await self._store.escalation_of(answer.id)
        return AnswerDetail(answer, verdicts, deliveries, escalation)

    async def remove(self, channel: str, ts: str, by: str) -> Removal | None:
        removal = await self._store.remove_answer(
            check_channel(channel), check_ts(ts), f"the answer was removed ({by})"
        )
        if removal is not None:
            log.info(
                "removed the answer on %s/%s (%s): %s kept, %s cancelled (%s)",
                channel,
                ts,
                ", ".join(t.describe() for t in removal.answer.targets),
                counted(removal.votes_kept, "vote"),
                counted(removal.deliveries_cancelled, "queued delivery", "queued deliveries"),
                by,
            )
        return removal


def check_channel(value: str) -> str:
    try:
        return _CHANNEL.validate_python(value)
    except ValueError:
        raise BadQuery(f"{value!r} is not a Slack channel id such as C0123ABCD") from None


def check_ts(value: str) -> str:
    try:
        return _TS.validate_python(value)
    except ValueError:
        raise BadQuery(f"{value!r} is not a Slack message ts such as 1700000000.000100") from None


# The one time format of every --since/--until (and of GET /v1/votes): an age back from now,
# or an ISO 8601 date or time.
TIME_FORMAT = (
    "an age such as 7d, 12h or 30m, or a date or time such as 2026-11-01 or"
    " 2026-11-01T09:30:00Z (UTC unless it says otherwise)"
)
_AGE = re.compile(r"([0-9]{1,6})([dhm])")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


def parse_time(value: str, name: str, now: float | None = None) -> float:
    """`value` as a Unix time: `7d`, `12h`, `30m` that long before `now`; or an ISO date
    (midnight) or time, UTC unless it names another offset."""
    text = value.strip()
    age = _AGE.fullmatch(text.lower())
    if age is not None:
        return (time.time() if now is None else now) - int(age[1]) * _UNIT[age[2]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name} must be {TIME_FORMAT}, not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _encode(answer_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{answer_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw[:1] == "a" and raw[1:].isdigit() and len(raw) < 20:
            return int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadQuery("cursor is not one this list gave (use next_cursor as it came)")


# ------------------------------------------------------------------ JSON, for the API and --json


def delivery_json(d: Delivery) -> dict[str, object]:
    return {
        "id": d.id,
        "state": d.state.value,
        "provider": d.target.provider,
        "target": d.target.key,
        "channel": d.answer.channel,
        "ts": d.answer.ts,
        "content_id": d.content_id or None,
        "verdict": d.verdict.status.value,
        "attempts": d.attempts,
        "created_at": d.created_at,
        "last_error": d.last_error,
    }


def detail_json(detail: AnswerDetail) -> dict[str, object]:
    labels = {s.content_id: s.label for s in detail.answer.sources}
    return {
        **answer_json(detail.answer),
        "verdicts": [
            {
                "content_id": v.content_id or None,
                **({"label": labels[v.content_id]} if v.content_id in labels else {}),
                "verdict": v.status.value,
                "standing_votes": v.standing_votes,
            }
            for v in detail.verdicts
        ],
        "deliveries": [delivery_json(d) for d in detail.deliveries],
        "escalation": None
        if detail.escalation is None
        else {
            "opened_at": detail.escalation.opened_at,
            "message": detail.escalation.message,
            "resolved_by": detail.escalation.resolved_by,
            "resolved_at": detail.escalation.resolved_at,
        },
    }


def removal_json(removal: Removal) -> dict[str, object]:
    return {
        "status": "removed",
        "answer": answer_json(removal.answer),
        "votes_kept": removal.votes_kept,
        "deliveries_cancelled": removal.deliveries_cancelled,
    }
