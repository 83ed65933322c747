"""Small pieces of English that every reply, log line and CLI message shares."""


def counted(n: int, one: str, many: str | None = None) -> str:
    """`1 vote`, `2 votes`: a count with its noun agreeing."""
    return f"{n} {one if n == 1 else (many or one + 's')}"
