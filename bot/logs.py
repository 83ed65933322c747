"""Logging that never prints a secret."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

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


def setup_logging(level: int, redactor: Redactor) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless we are debugging.
    if level > logging.DEBUG:
        for name in ("aiohttp.access", "slack_bolt", "slack_sdk"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))
