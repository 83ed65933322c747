"""pydantic's validation errors in words: the one format the 400s, 422s, logs and the CLI
use to say what is wrong with a payload; and the shapes of the ids Slack sends."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError


def error_list(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as {type, loc, msg}: no URLs, no inputs (they may hold secrets), and
    a validator's own message without pydantic's "Value error, " prefix."""
    return [
        {
            "type": e["type"],
            "loc": list(e["loc"]),
            "msg": e["msg"].removeprefix("Value error, "),
        }
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    ]


def describe(errors: Iterable[Mapping[str, Any]], limit: int | None = None) -> str:
    """`event.item: Field required; …`, short enough for a log line or an HTTP error."""
    parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors]
    return "; ".join(parts[:limit])


# ------------------------------------------------------------------ the shapes of Slack's ids
#
# What Slack sends is signed, but anyone with the signing secret, or a bug upstream, can put
# anything in a field; these bounds keep a 10,000-character "user" out of the votes table
# and out of every dedupe key built from it. They are generous on purpose: Enterprise Grid
# ids (E…, W…) and newer ids run longer than the classic nine or eleven characters.
# `[0-9]`, not `\d`: in Python `\d` also matches other scripts' digits.

SLACK_ID = re.compile(r"[A-Z0-9]{1,64}")  # U…, W…, C…, T…, E…, A…, B…, V…
EVENT_ID = re.compile(r"[A-Za-z0-9]{1,64}")  # Ev… mixes cases
SLACK_TS = re.compile(r"[0-9]{1,16}\.[0-9]{1,16}")  # a message's ts, action_ts, event_ts


def _shaped(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"should be {what}")
        return value

    return AfterValidator(check)


SlackId = Annotated[str, _shaped(SLACK_ID, "a Slack id: 1 to 64 capital letters and digits")]
EventId = Annotated[str, _shaped(EVENT_ID, "a Slack event id: 1 to 64 letters and digits")]
SlackTs = Annotated[
    str, _shaped(SLACK_TS, "a Slack timestamp such as 1700000000.000100 (digits.digits)")
]
