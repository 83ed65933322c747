"""Logging that never prints a secret."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

# Token shapes worth hiding even when we were never told their value.
_TOKEN_SHAPES = re.compile(
    r"(xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?<=Bearer )[^\s'\"]+"
    r"|(?<=X-AX-KEY: )[^\s'\"]+)",
    re.IGNORECASE,
)
MASK = "[redacted]"


class Redactor:
    """Replaces known secret values and token-shaped strings with a mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for s in secrets:
            self.add(s)

    def add(self, secret: str) -> None:
        # Very short values would mask ordinary words; real keys are long.
        if len(secret) >= 8:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return _TOKEN_SHAPES.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record, tracebacks included."""

    def __init__(self, redactor: Redactor, fmt: str) -> None:
        super().__init__(fmt)
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (FEEDBACK_LOG_FORMAT=json), for log pipelines: time, level,
    logger, message, the traceback if any, and the fields a line carries (a delivery's
    slot, provider, verdict, result and attempt, say). Each string is redacted before it is
    written, so that JSON's escaping cannot hide a secret from the redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, self._redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            out["exception"] = self._redact(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it could not even parse (a NUL byte in a header, say) at
    ERROR with a traceback, after answering it 400 itself. It is the sender's mistake, not
    ours: one line at INFO says so, and a real error of ours still shows as it was."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = (
                "answered a malformed HTTP request with 400: %s",
                (str(error.message).strip() or type(error).__name__,),
            )
            record.exc_info = record.exc_text = None
        return True


# Libraries that talk a lot at DEBUG: aiosqlite logs every call to its thread, which
# drowns what the bot says about itself.
QUIET_ALWAYS = ("aiosqlite",)
QUIET_UNLESS_DEBUG = ("aiohttp.access", "slack_bolt", "slack_sdk")


def setup_logging(level: int, redactor: Redactor, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(redactor)
        if fmt == "json"
        else RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_ALWAYS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server.filters):
        server.addFilter(MalformedRequests())
    # Chatty libraries stay at WARNING unless we are debugging.
    if level > logging.DEBUG:
        for name in QUIET_UNLESS_DEBUG:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


class DropMessage(logging.Filter):
    """Drops one message, word for word (a dependency's warning that does not apply)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._message
