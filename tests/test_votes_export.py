"""Votes leave the bot for analysis: `feedback-bot votes export` and GET /v1/votes, one row
per vote with its answer's ids, streamed in bounded memory."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import dataset
from bot.answers.admin import BadQuery, parse_time
from tests.credentials import API_TOKEN
from tests.harness import Harness
from tests.process import _clean_environ
from tests.slack_payloads import CHANNEL

OTHER = "C0OTHER001"
ALICE, BOB = "U0ALICE001", "U0BOB00001"


def export(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "votes", "export", "--db", db, *args],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_one_row_per_vote_with_its_answer_as_csv_jsonl_and_over_http(
    harness: Harness,
) -> None:
    h = harness
    c = await h.contextual_answer()
    q = await h.aquilax_answer(channel=OTHER)
    await h.slack.react(ALICE, "+1", c["ts"])
    await h.slack.react(BOB, "-1", c["ts"])
    await h.slack.unreact(BOB, "-1", c["ts"])
    await h.slack.react(ALICE, "triangular_flag_on_post", q["ts"], channel=OTHER)
    await h.http.delete(
        f"{h.base_url}/v1/answers/{OTHER}/{q['ts']}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )

    done = export(h.store.path, "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["user"], r["status"], r["origin"]) for r in rows] == [
        (ALICE, "thumbs_up", "reaction:+1"),
        (BOB, "thumbs_down", "reaction:-1"),
        (ALICE, "flagged", "reaction:triangular_flag_on_post"),
    ]
    alice, bob, flag = rows
    assert (alice["channel"], alice["ts"], alice["provider"]) == (CHANNEL, c["ts"], "contextual")
    assert alice["message_id"] == c["message_id"] and alice["agent_id"] == c["agent_id"]
    assert alice["withdrawn_at"] is None and bob["withdrawn_at"] is not None
    assert alice["cast_at"].endswith("+00:00")
    assert (flag["request_id"], flag["org"], flag["group"]) == (
        q["request_id"],
        q["org"],
        q["group"],
    )
    assert flag["orphaned"] is True and alice["orphaned"] is False

    done = export(h.store.path)  # CSV by default, with a header
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["user"] for r in table] == [ALICE, BOB, ALICE]
    assert table[0]["message_id"] == c["message_id"] and table[0]["withdrawn_at"] == ""
    # Booleans as JSON writes them, not Python's True/False.
    assert [r["orphaned"] for r in table] == ["false", "false", "true"]

    done = export(h.store.path, "--format", "jsonl", "--channel", OTHER)
    assert [json.loads(line)["vote_id"] for line in done.stdout.splitlines()] == [flag["vote_id"]]
    done = export(h.store.path, "--format", "jsonl", "--since", "2999-01-01")
    assert done.returncode == 0 and done.stdout == ""

    r = await h.http.get(
        f"{h.base_url}/v1/votes?channel={CHANNEL}",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line) for line in r.text.splitlines()] == [alice, bob]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=last-week", "an age such as 7d, 12h or 30m, or a date or time such as 2026-11-01"),
        ("since=2026-11-02&until=2026-11-01", "until must come after since"),
        ("channel=general", "is not a Slack channel id"),
        ("format=csv", "unknown parameter 'format'"),
    ],
)
async def test_bad_filters_are_400_and_exit_2(harness: Harness, query: str, reason: str) -> None:
    h = harness
    r = await h.http.get(
        f"{h.base_url}/v1/votes?{query}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert r.status_code == 400 and reason in r.json()["error"], r.text
    if not query.startswith("format"):
        args = [f"--{kv.split('=')[0]}={kv.split('=')[1]}" for kv in query.split("&")]
        done = export(h.store.path, *args)
        assert done.returncode == 2 and reason in done.stderr, done.stderr
    assert (await h.http.get(f"{h.base_url}/v1/votes")).status_code == 401


NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("7d", NOW - 7 * 86400),
        ("12h", NOW - 12 * 3600),
        (" 30M ", NOW - 30 * 60),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
        ("2026-12-01T09:30", datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()),
        ("2026-12-01T09:30:00Z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()),
        ("2026-12-01T11:30:00+02:00", datetime(2026, 12, 1, 9, 30, tzinfo=UTC).timestamp()),
    ],
)
def test_one_time_format_ages_dates_and_times(text: str, moment: float) -> None:
    assert parse_time(text, "since", now=NOW) == moment


@pytest.mark.parametrize("text", ["last-week", "7", "d7", "7w", "1234567d", "2026-13-01", ""])
def test_what_is_not_a_time_says_what_is(text: str) -> None:
    with pytest.raises(BadQuery, match=r"since must be an age such as 7d, 12h or 30m, or a date"):
        parse_time(text, "since", now=NOW)


async def test_the_api_takes_the_same_times(harness: Harness) -> None:
    h = harness
    c = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", c["ts"])
    for since, count in [("7d", 1), ("30m", 1), ("2999-01-01", 0)]:
        r = await h.http.get(
            f"{h.base_url}/v1/votes?since={since}",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert r.status_code == 200, r.text
        assert len(r.text.splitlines()) == count, since
    done = export(h.store.path, "--format", "jsonl", "--since", "1h", "--until", "2999-01-01")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    "command", [["votes", "export"], ["answers", "list", "--limit", "1000", "--json"]], ids=" ".join
)
def test_a_reader_that_stops_after_one_line_stops_the_export_quietly(
    tmp_path: Path, command: list[str]
) -> None:
    """`feedback-bot votes export | head -1`: far more than a pipe holds, so the export is
    still writing when the reader goes away."""
    db = tmp_path / "votes.db"
    dataset.build(db, 1_000, 5_000, cache=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *command, "--db", str(db)],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()
    process.stdout.close()  # what `head -1` does once it has its line
    try:
        code = process.wait(timeout=120)
    finally:
        if process.returncode is None:
            process.kill()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert code == 141


def _peak_rss_mb(db: Path, out: Path) -> float:
    """`votes export` in a process of its own; its peak resident memory in MB."""
    script = (
        "import resource, sys; from bot.cli import main;"
        f" code = main(['votes', 'export', '--format', 'jsonl', '--db', {str(db)!r},"
        f" '--output', {str(out)!r}]);"
        " print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr);"
        " sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def test_a_large_export_streams_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    dataset.build(small, 100, 1_000, cache=False)
    dataset.build(large, 20_000, 300_000, cache=False)
    base = _peak_rss_mb(small, tmp_path / "small.jsonl")
    peak = _peak_rss_mb(large, tmp_path / "large.jsonl")
    lines = sum(1 for _ in (tmp_path / "large.jsonl").open())
    assert lines == 300_000
    # Held in memory, 300,000 rows would take hundreds of MB; a page at a time, a few.
    assert peak - base < 25, (base, peak)
