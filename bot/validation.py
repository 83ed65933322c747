"""pydantic's validation errors in words: the one format the 400s, 422s, logs and the CLI
use to say what is wrong with a payload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


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
