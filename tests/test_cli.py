"""`feedback-bot deliveries list|retry` against the database of a running bot."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from bot.cli import Masker
from bot.cli import _parser as cli_parser
from tests.credentials import BOT_TOKEN, SIGNING_SECRET
from tests.harness import Harness, wait_until
from tests.process import _clean_environ


def cli(h: Harness, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd(), "FEEDBACK_DB": h.store.path},
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
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
    assert out.startswith("Requeued 1 dead delivery.")
    # The running bot notices the requeued row on its next poll.
    await h.contextual.wait_for(1, timeout=5)
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]


async def test_a_retry_that_changes_nothing_says_so_and_exits_1(harness: Harness) -> None:
    h = harness
    h.contextual.fail(401, body={"detail": "Invalid API key"})
    a = await h.contextual_answer()
    await h.slack.react("U0ALICE001", "+1", a["ts"])

    async def dead() -> bool:
        return (await h.store.delivery_counts()).dead == 1

    await wait_until(dead)
    [row] = [json.loads(x) for x in cli(h, "deliveries", "list", "--json").stdout.splitlines()]
    done = cli(h, "deliveries", "retry", "9999", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert "nothing requeued: no dead delivery with id 9999 of an answer" in done.stderr
    assert (await h.store.delivery_counts()).dead == 1  # untouched
    # One of two named: the one is requeued, and the other is said.
    done = cli(h, "deliveries", "retry", str(row["id"]), "9999", check=False)
    assert done.returncode == 1 and done.stdout.startswith("Requeued 1 dead delivery.")
    assert "1 of the 2 named were not requeued" in done.stderr
    await h.settled()
    done = cli(h, "deliveries", "retry", check=False)
    assert done.returncode == 1
    assert "nothing requeued: no dead delivery of an answer still registered" in done.stderr


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


def _unusable_db(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A FEEDBACK_DB that cannot be opened, even by root, and what the error should say."""
    if case == "directory":
        path = tmp_path / "feedback.db"
        path.mkdir()
        return path, f"{path} is a directory"
    if case == "under a file":
        (tmp_path / "data").write_text("a file where a directory should be\n")
        path = tmp_path / "data" / "feedback.db"
        return path, f"{tmp_path / 'data'} is a file, not a directory"
    if case == "read-only directory":
        # chmod does not stop root, and tests may run as root; /proc stops everyone.
        if not Path("/proc/self").is_dir():
            pytest.skip("needs Linux's /proc")
        path = Path("/proc/feedback-bot-test.db")
        return path, f"{path} cannot be created or written"
    path = tmp_path / "notes.db"
    path.write_text("These are my notes, not an SQLite database.\n" * 20)
    return path, f"{path} is not an SQLite database"


CASES = ["directory", "under a file", "not a database", "read-only directory"]
ADD = ["answers", "add", "--json", json.dumps({"channel": "C0FEEDBK01", "ts": "1.1"})]


@pytest.mark.parametrize(
    ("command", "case"),
    [(["run"], case) for case in CASES]
    + [(["deliveries", "list"], case) for case in CASES]
    + [(["deliveries", "retry"], "not a database"), (ADD, "under a file")],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_an_unusable_database_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], case: str
) -> None:
    path, reason = _unusable_db(tmp_path, case)
    before = sorted((p, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*"))
    env = {
        **_clean_environ(),
        "FEEDBACK_DB": str(path),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached: the database comes first
        "FEEDBACK_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    if command[0] == "deliveries" and not path.exists():
        # A command that only reads refuses before it tries to create the file.
        assert line == f"feedback-bot: no database at {path} (set FEEDBACK_DB or --db)"
    else:
        assert line.startswith("feedback-bot: FEEDBACK_DB cannot be opened"), line
        assert reason in line and "it should hold the path of the SQLite database file" in line
    assert done.stdout == ""
    assert sorted((p, p.read_bytes() if p.is_file() else None) for p in tmp_path.rglob("*")) == (
        before
    )


def _feedback_bot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**_clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_version() -> None:
    done = _feedback_bot(Path.cwd(), "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"feedback-bot {version('feedback-bot')}"


@pytest.mark.parametrize(
    "command", [["deliveries", "list"], ["deliveries", "retry"], ["worker"]], ids=" ".join
)
def test_commands_that_read_refuse_to_create_a_database(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "typo.db"
    done = _feedback_bot(tmp_path, *command, FEEDBACK_DB=str(missing))
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"feedback-bot: no database at {missing} (set FEEDBACK_DB or --db)"
    )
    assert list(tmp_path.iterdir()) == []  # nothing created, not even ./feedback.db


async def test_db_and_env_file_work_before_and_after_the_command(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react("U0ALICE001", "+1", a["ts"])
    await h.settled()
    wrong = str(tmp_path / "elsewhere.db")
    (tmp_path / ".env").write_text(f"FEEDBACK_DB={wrong}\n")
    settings = tmp_path / "prod.env"
    settings.write_text(f"FEEDBACK_DB={h.store.path}\n")
    for args in (
        ["--db", h.store.path, "deliveries", "list", "--json"],
        [f"--db={h.store.path}", "deliveries", "list", "--json"],
        ["--env-file", str(settings), "deliveries", "list", "--json"],
        ["--env-file", str(settings), "deliveries", "list", "--json", "--db", h.store.path],
        # Given before and after the command, the one after it wins.
        ["--db", wrong, "deliveries", "list", "--json", "--db", h.store.path],
    ):
        # (The environment wins over any .env file, and --db over the environment.)
        env = {"FEEDBACK_DB": wrong} if "--env-file" not in args else {}
        done = _feedback_bot(tmp_path, *args, **env)
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout)["ts"] == a["ts"], args
    done = _feedback_bot(tmp_path, "--db", h.store.path, "deliveries", "list", "--db", wrong)
    assert done.returncode == 2 and f"no database at {wrong}" in done.stderr


PASSWORD = "pw-Never-Shown-3x"
URL = f"postgresql://feedback:{PASSWORD}@127.0.0.1:9/feedback"


@pytest.mark.parametrize(
    "args",
    [
        ["--db", URL, "deliveries", "lst"],
        ["--db", URL, "deliveries", "list", "--bogus"],
        ["--db", URL, "deliveries", "list"],  # it cannot connect: the error names the URL
        [f"--db={URL}", "nope"],
        [URL, "deliveries", "list"],
        ["deliveries", "list", "--db", URL, "--state", "everything"],
        ["deliveries", "list", "--limit", URL],
        ["deliveries", "list", f"--dbb={URL}"],
        ["migrate-db", "--from", "x.db", "--to", URL, "--extra"],
        ["--db", "postgresql://u:short@127.0.0.1:9/db", "nope"],
        ["--db", "postgresql://u:p@ss word@127.0.0.1:9/db", "nope"],  # unescaped @ and space
        ["--db", f"postgresql://u@127.0.0.1:9/db?password={PASSWORD}", "deliveries", "list"],
    ],
    ids=lambda args: " ".join(a.replace(PASSWORD, "PW") for a in args),
)
def test_no_error_shows_a_database_password(tmp_path: Path, args: list[str]) -> None:
    done = _feedback_bot(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    out = done.stdout + done.stderr
    for secret in (PASSWORD, "short", "p@ss word", "ss word"):
        assert secret not in out, out
    assert "Traceback" not in out
    assert "***" in out or "usage:" in out, out


def test_the_help_says_what_every_option_takes() -> None:
    parser = cli_parser(Masker([]))
    seen = 0
    for name, command in _commands(parser):
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                continue
            seen += 1
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            if action.nargs != 0:
                assert action.metavar, f"{name} {action.option_strings or action.dest}: no metavar"
    assert seen > 30
    done = _feedback_bot(Path.cwd(), "answers", "add", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "The ids each provider needs" in text
    contextual = text[text.index("  contextual ") : text.index("  aquilax ")]
    assert "--agent-id AGENT_ID" in contextual and "--message-id MESSAGE_ID" in contextual
    assert "--request-id REQUEST_ID" in text[text.index("  aquilax ") :]


def _commands(
    parser: argparse.ArgumentParser, name: str = "feedback-bot"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _commands(sub, f"{name} {sub_name}")
    return found


@pytest.mark.parametrize(
    "command",
    [
        ["votes", "export", "--since"],
        ["votes", "export", "--until"],
        ["answers", "scan", "--channel", "C0FEEDBK01", "--since"],
    ],
    ids=" ".join,
)
def test_every_since_and_until_takes_the_same_times(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "feedback.db"
    _feedback_bot(tmp_path, "answers", "add", "--json", json.dumps(_AQUILAX), "--db", str(db))
    for good in ("7d", "12h", "30m", "2026-12-01", "2026-12-01T09:30", "2026-12-01T09:30:00Z"):
        done = _feedback_bot(tmp_path, *command, good, "--db", str(db))
        # votes export runs; answers scan gets past its options, to the missing Slack token.
        assert "argument --" not in done.stderr, (good, done.stderr)
        assert done.returncode == (0 if command[0] == "votes" else 2), (good, done.stderr)
    for bad in ("last-week", "7 days", "2026-13-01", "1e9"):
        done = _feedback_bot(tmp_path, *command, bad, "--db", str(db))
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"`{bad}` is not an age such as 7d, 12h or 30m, or a date or time" in done.stderr


_AQUILAX = {
    "channel": "C0FEEDBK01",
    "ts": "1700000000.000100",
    "provider": "aquilax",
    "request_id": "77e81bbc-3e7f-47b9-87fa-681b5d2f54e6",
    "org": "o",
    "group": "g",
}


async def test_db_and_env_file_say_which_database(harness: Harness, tmp_path: Path) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react("U0ALICE001", "+1", a["ts"])
    await h.settled()
    wrong = str(tmp_path / "elsewhere.db")
    # --db wins over FEEDBACK_DB.
    done = _feedback_bot(
        tmp_path, "deliveries", "list", "--json", "--db", h.store.path, FEEDBACK_DB=wrong
    )
    assert done.returncode == 0, done.stderr
    [row] = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["ts"] == a["ts"] and row["state"] == "delivered"
    # --env-file instead of ./.env; ./.env is not read then.
    (tmp_path / ".env").write_text(f"FEEDBACK_DB={wrong}\n")
    settings = tmp_path / "prod.env"
    settings.write_text(f"FEEDBACK_DB={h.store.path}\n")
    done = _feedback_bot(tmp_path, "deliveries", "list", "--json", "--env-file", str(settings))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ts"] == a["ts"]
    done = _feedback_bot(tmp_path, "deliveries", "list", "--env-file", str(tmp_path / "none.env"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"feedback-bot: --env-file {tmp_path / 'none.env'}: no such file"


def test_answers_add_may_create_the_database(tmp_path: Path) -> None:
    done = _feedback_bot(
        tmp_path, "answers", "add", "--json", json.dumps(_AQUILAX), "--db", "new.db"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "created"
    assert (tmp_path / "new.db").is_file()
