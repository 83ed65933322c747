"""`feedback-bot deliveries list|retry` against the database of a running bot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import Harness, wait_until
from tests.process import _clean_environ


def cli(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd(), "FEEDBACK_DB": h.store.path},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


async def test_list_and_retry_dead_deliveries(harness: Harness) -> None:
    h = harness
    h.contextual.fail(401, body={"detail": "Invalid API key"})
    a = await h.contextual_answer()
    await h.slack.react("U0ALICE001", "+1", a["ts"])

    async def dead() -> bool:
        return (await h.store.delivery_counts()).dead == 1

    await wait_until(dead)
    table = cli(h, "deliveries", "list", "--state", "dead").stdout
    assert "dead" in table and "thumbs_up" in table and a["ts"] in table
    assert "HTTP 401" in table and "Invalid API key" in table
    [row] = [
        json.loads(line)
        for line in cli(h, "deliveries", "list", "--json").stdout.split("\n")
        if line
    ]
    assert (row["state"], row["verdict"], row["provider"]) == ("dead", "thumbs_up", "contextual")
    assert cli(h, "deliveries", "list", "--state", "pending").stdout.strip() == "no deliveries"

    out = cli(h, "deliveries", "retry").stdout
    assert out.startswith("requeued 1 dead deliveries")
    # The running bot notices the requeued row on its next poll.
    await h.contextual.wait_for(1, timeout=5)
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]
    assert cli(h, "deliveries", "retry").stdout.startswith("requeued 0")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["deliveries", "retry", "99999999999999999999999"], "is not a delivery id"),
        (["deliveries", "retry", "17", "²"], "is not a delivery id"),
        (["deliveries", "list", "--limit", "99999999999999999999999"], "is not a number from 1"),
        (["deliveries", "list", "--limit", "-1"], "is not a number from 1"),
    ],
)
def test_bad_numbers_are_a_clear_error(tmp_path: Path, args: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**_clean_environ(), "FEEDBACK_DB": str(tmp_path / "feedback.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
