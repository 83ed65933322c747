"""Where the database is, fit to show: FEEDBACK_DB's kind, and any URL with its password masked."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


# user:password@ in any URL (the password may hold an unescaped @: up to the last one), and
# a password=… query parameter (asyncpg takes either).
URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)[^\s'\"]*@")
QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)


def displayed(location: str) -> str:
    """FEEDBACK_DB (or any URL) fit for a log or an error: a password masked, however short
    or odd, in the URL's user part or in a `password=` query parameter."""
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:  # a port that is not a number, say: mask the whole user part
        return QUERY_PASSWORD.sub(r"\1***", URL_PASSWORD.sub(r"\1***@", location))
    if password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    return QUERY_PASSWORD.sub(r"\1***", urlunsplit(parts))
