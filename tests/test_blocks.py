"""Pure checks of message composition."""

from __future__ import annotations

import re

import pytest

from bot.slack.blocks import escape, split_text


@pytest.mark.parametrize(
    "text",
    ["x" * 10_000, "&<>" * 3000, ("line of text\n" * 500), "a " * 5000, "ab&cd " * 2000],
)
def test_split_text_keeps_every_character_and_every_entity(text: str) -> None:
    escaped = escape(text)
    pieces = split_text(escaped, limit=3000)
    assert all(0 < len(p) <= 3000 for p in pieces)
    assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", escaped)
    for p in pieces:  # no piece starts or ends inside &amp; &lt; &gt;
        assert not re.search(r"&[a-z]{0,3}$", p), p[-6:]
        assert not re.match(r"^(amp|lt|gt|mp|p|t);", p), p[:6]


def test_split_prefers_paragraphs() -> None:
    text = "A" * 1500 + "\n\n" + "B" * 1400 + " " + "C" * 500
    assert split_text(text, limit=3000) == ["A" * 1500, "B" * 1400 + " " + "C" * 500]


def test_escape() -> None:
    assert escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
