"""The deploy artefacts say what the code does: .env.example lists every setting, the
Dockerfile runs the README's commands and its health check tells a healthy bot from a
sick one, the license is the one pyproject declares."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config.settings import EXPECTED, Settings
from tests.dbtools import replace_under
from tests.harness import Harness
from tests.process import _clean_environ

ROOT = Path(__file__).resolve().parent.parent


def _example_keys() -> list[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]


def test_env_example_lists_every_setting_once_with_a_comment() -> None:
    keys = _example_keys()
    assert sorted(keys) == sorted(name.upper() for name in Settings.model_fields)
    assert len(keys) == len(set(keys))
    assert set(keys) == set(EXPECTED)  # and each has its one-line error hint
    commented = False  # a comment since the last blank line
    for line in (ROOT / ".env.example").read_text().splitlines():
        if not line.strip():
            commented = False
        elif line.startswith("#"):
            commented = True
        else:
            assert commented, f"{line} has no comment above it"


def test_a_env_copied_from_the_example_starts_with_the_defaults(tmp_path: Path) -> None:
    text = (ROOT / ".env.example").read_text()
    text = text.replace("SLACK_BOT_TOKEN=\n", "SLACK_BOT_TOKEN=xoxb-1-2-example\n")
    (tmp_path / ".env").write_text(text)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.config.settings import load_settings; "
            "s = load_settings(); print(s.feedback_db, s.feedback_port, s.feedback_worker)",
        ],
        cwd=tmp_path,
        env=_clean_environ() | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["./feedback.db", "3000", "inline"]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _instruction(name: str) -> str:
    """One Dockerfile instruction, continuation lines joined."""
    text = _dockerfile().replace("\\\n", " ")
    [line] = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return line.removeprefix(f"{name} ").strip()


def _env(name: str) -> str:
    """One variable of the Dockerfile's ENV (name=value pairs, one ENV instruction)."""
    pairs = dict(pair.split("=", 1) for pair in _instruction("ENV").split())
    return pairs[name]


def test_the_dockerfile_runs_the_readmes_first_command() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n\(test -x (\S+) \|\| \((.+)\)\) && (.+)\n```", readme)
    assert first is not None, "the README's first command: install once, then run"
    installed, setup, start = first.groups()
    assert start.startswith(installed)  # it skips the install only when it can run
    run_lines = [
        x.removeprefix("RUN ").strip()
        for x in _dockerfile().replace("\\\n", " ").splitlines()
        if x.startswith("RUN ")
    ]
    assert setup in run_lines
    # The README's start, as the image's ENTRYPOINT and CMD: `feedback-bot` found on PATH
    # where the install step put it (in WORKDIR), `run` when `docker run` names no command.
    program, *arguments = start.split()
    entrypoint, command = json.loads(_instruction("ENTRYPOINT")), json.loads(_instruction("CMD"))
    assert entrypoint == [Path(program).name] and command == arguments == ["run"]
    path = _env("PATH").split(":")
    assert path[0] == str(Path(_instruction("WORKDIR")) / Path(program).parent)
    assert path[-1] == "$PATH"  # the image's own PATH after it
    assert _instruction("USER") != "root"
    assert "/data" in _instruction("VOLUME")
    assert "FEEDBACK_DB=/data/" in _instruction("ENV")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--version"], "feedback-bot "),
        (["doctor", "--json"], '"check": "settings"'),
        (["run"], "SLACK_BOT_TOKEN is not set"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_docker_run_image_command_runs_feedback_bot(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    """`docker run IMAGE [command]` as the image would run it: the ENTRYPOINT looked up on
    the Dockerfile's PATH (its venv there being this checkout's), then the command (with no
    Slack token set, `run` stops at once, saying so; doctor reports)."""
    venv_bin = Path(_instruction("WORKDIR")) / ".venv" / "bin"
    here = Path(sys.prefix) / "bin"
    path = _env("PATH").replace(str(venv_bin), str(here)).replace("$PATH", "/usr/bin:/bin")
    entrypoint = json.loads(_instruction("ENTRYPOINT"))
    program = shutil.which(entrypoint[0], path=path)
    assert program == str(here / entrypoint[0]), path
    done = subprocess.run(
        [program, *entrypoint[1:], *args],
        env={**_clean_environ(), "PATH": path, "FEEDBACK_DB": str(tmp_path / "feedback.db")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert expected in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_the_readmes_first_command_installs_once(tmp_path: Path) -> None:
    """Run twice in a checkout whose .venv already holds feedback-bot, it starts the bot
    without installing again (here `run` stops at once: no Slack token)."""
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(\(test -x .+)\n```", readme)
    assert first is not None
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "feedback-bot").symlink_to(Path(sys.executable).parent / "feedback-bot")
    (venv / "pip").write_text("#!/bin/sh\necho pip ran >&2\nexit 9\n")
    (venv / "pip").chmod(0o755)
    out = subprocess.run(
        ["bash", "-c", first.group(1)],
        cwd=tmp_path,
        env=_clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "pip ran" not in out.stderr
    assert out.returncode == 2 and "SLACK_BOT_TOKEN is not set" in out.stderr


@pytest.mark.sqlite_only  # it breaks the SQLite file itself
@pytest.mark.parametrize("healthy", [True, False])
async def test_the_dockerfiles_health_check_follows_healthz(
    harness: Harness, healthy: bool, tmp_path: Path
) -> None:
    command = json.loads(_instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    assert command[0].endswith("/python")
    path, aside = Path(harness.store.path), tmp_path / "aside.db"
    if not healthy:
        replace_under(path, aside)  # /healthz is 503 until it is put back
    check = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env=os.environ | {"FEEDBACK_PORT": str(harness.bot.port)},
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(check.communicate(), 20)
    if not healthy:
        os.replace(aside, path)
    assert (check.returncode == 0) is healthy, stderr


def test_the_license_is_the_one_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_systemd_unit_runs_the_installed_bot_and_stops_it_with_sigterm() -> None:
    unit = (ROOT / "docs" / "feedback-bot.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[:1].isalpha()
    )
    assert settings["ExecStart"].endswith("/.venv/bin/feedback-bot run")
    assert settings["KillSignal"] == "SIGTERM"
    assert settings["User"] != "root"
    assert settings["Environment"].startswith("FEEDBACK_DB=/var/lib/feedback-bot/")
