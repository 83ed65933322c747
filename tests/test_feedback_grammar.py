"""The `/feedback` grammar on its own: text in, a typed invocation out, each value checked
and converted once (the replies are tested end to end in test_commands.py)."""

from __future__ import annotations

import pytest

from bot.admin.grammar import USAGE, UsageError, help_text, parse_command
from bot.admin.invocations import (
    AddEmoji,
    ForgetKey,
    Help,
    ListEmoji,
    RemoveEmoji,
    Reset,
    Retry,
    SetAgent,
    SetAquilaX,
    SetProvider,
    Setup,
    ShowDeliveries,
    ShowStats,
    ShowStatus,
    Switch,
)
from bot.domain import Status


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("HELP", Help()),
        ("status --workspace", ShowStatus(workspace=True)),
        ("stats", ShowStats(days=30)),
        ("stats 7 --workspace", ShowStats(days=7, workspace=True)),
        ("deliveries", ShowDeliveries()),
        ("retry", Retry()),
        ("retry 17 0018", Retry(ids=(17, 18))),
        ("setup", Setup()),
        ("provider AquilaX", SetProvider("aquilax")),
        (
            "agent 3C90C3CC-0D44-4B50-8888-8DD25736052A",
            SetAgent("3c90c3cc-0d44-4b50-8888-8dd25736052a"),
        ),
        ("aquilax ORG o-1 group g_2 --workspace", SetAquilaX("o-1", "g_2", workspace=True)),
        ("emoji list", ListEmoji()),
        ("emoji add :+1::skin-tone-3: THUMBS_UP", AddEmoji("+1", Status.THUMBS_UP)),
        ("emoji remove tada", RemoveEmoji("tada")),
        ("form ON", Switch("form", True)),
        ("reactions off --workspace", Switch("reactions", False, workspace=True)),
        ("reset aquilax", Reset("aquilax")),
        ("reset Contextual-Key", ForgetKey("contextual")),
    ],
)
def test_text_becomes_a_typed_invocation(text: str, expected: object) -> None:
    assert parse_command(text) == expected


def test_what_needs_an_admin() -> None:
    reading = ("help", "status", "stats", "deliveries", "emoji list")
    assert not any(parse_command(text).changes for text in reading)
    changing = ("retry", "setup", "provider aquilax", "emoji remove tada", "prompt on")
    assert all(parse_command(text).changes for text in changing)
    assert (
        parse_command("form on").name == "form"
        and parse_command("reset contextual-key").name == "reset"
    )


def test_mistakes_name_the_problem_and_the_usage_line() -> None:
    with pytest.raises(UsageError) as e:
        parse_command("stats 366")
    assert str(e.value) == (
        f"`stats` expects a number of days from 1 to 365.\nUsage: `{USAGE['stats']}`"
    )
    with pytest.raises(UsageError, match="Try `/feedback help`"):
        parse_command("frobnicate")


def test_help_lists_every_usage_line() -> None:
    assert all(usage in help_text() for usage in USAGE.values())
