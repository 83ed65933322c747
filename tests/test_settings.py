"""Start-up configuration: a bad setting stops the bot with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config.settings import SettingsError, load_settings
from bot.support.logs import Redactor
from storage.location import displayed
from tests.credentials import BOT_TOKEN, SIGNING_SECRET
from tests.process import _clean_environ


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *(args or ("run",))],
        env={**_clean_environ(), "PYTHONPATH": os.getcwd(), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


GOOD = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET", "signing secret"),
        ({**GOOD, "SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN", "must start with"),
        ({**GOOD, "SLACK_APP_TOKEN": "nope"}, "SLACK_APP_TOKEN", "xapp-"),
        ({**GOOD, "FEEDBACK_PORT": "eighty"}, "FEEDBACK_PORT", "0 to 65535"),
        ({**GOOD, "FEEDBACK_PORT": "70000"}, "FEEDBACK_PORT", "0 to 65535"),
        ({**GOOD, "CONTEXTUAL_BASE_URL": "api.contextual"}, "CONTEXTUAL_BASE_URL", "URL"),
        ({**GOOD, "FEEDBACK_API_TOKEN": "short"}, "FEEDBACK_API_TOKEN", "at least 16"),
        ({**GOOD, "FEEDBACK_LOG_LEVEL": "loud"}, "FEEDBACK_LOG_LEVEL", "DEBUG, INFO"),
        ({**GOOD, "FEEDBACK_ADMINS": "alice"}, "FEEDBACK_ADMINS", "Slack user ids"),
        ({**GOOD, "FEEDBACK_SECRET_KEY": "abc"}, "FEEDBACK_SECRET_KEY", "Fernet"),
        ({**GOOD, "FEEDBACK_WORKER": "elsewhere"}, "FEEDBACK_WORKER", "feedback-bot worker"),
    ],
)
def test_bad_setting_is_one_clear_line(
    tmp_path: Path, env: dict[str, str], variable: str, hint: str
) -> None:
    out = run(env, tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"feedback-bot: {variable} ")
    assert hint in lines[0]
    assert "Traceback" not in out.stderr
    for secret in (BOT_TOKEN, SIGNING_SECRET):
        assert secret not in out.stderr


def test_dotenv_file_is_read_and_a_refused_token_is_one_line(tmp_path: Path) -> None:
    # The token is well formed but Slack (here: nothing listening) cannot confirm it.
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_SIGNING_SECRET={SIGNING_SECRET}\n"
        "SLACK_API_URL=http://127.0.0.1:9/api/\nFEEDBACK_PORT=0\n"
    )
    out = run({}, tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("feedback-bot: cannot reach Slack")
    assert BOT_TOKEN not in out.stderr


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTUAL_API_KEY", "")
    monkeypatch.setenv("FEEDBACK_ADMINS", "U0ALICE001, U0BOB00001")
    s = load_settings(_env_file=None)
    assert s.contextual_api_key is None
    assert s.feedback_admins == ("U0ALICE001", "U0BOB00001")
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        s.require_slack()


def test_secrets_do_not_show_in_repr() -> None:
    s = load_settings(_env_file=None, slack_bot_token=BOT_TOKEN)
    assert BOT_TOKEN not in repr(s)
    assert BOT_TOKEN in s.secrets()


def test_a_postgresql_password_is_a_secret_to_redact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_DB", "postgresql://feedback:s3cr3t-Pa55@db.internal:5432/fb")
    s = load_settings(_env_file=None)
    assert "s3cr3t-Pa55" in s.secrets()
    assert Redactor(s.secrets())(f"database {s.feedback_db}") == (
        "database postgresql://feedback:[redacted]@db.internal:5432/fb"
    )
    # However short, a password never shows where FEEDBACK_DB is shown.
    assert displayed("postgresql://feedback:pw@db:5432/fb?sslmode=require") == (
        "postgresql://feedback:***@db:5432/fb?sslmode=require"
    )
    # asyncpg also takes the password as a query parameter: masked and redacted there too.
    monkeypatch.setenv("FEEDBACK_DB", "postgresql://feedback@db/fb?password=q-Secret-9&x=1")
    s = load_settings(_env_file=None)
    assert "q-Secret-9" in s.secrets()
    assert displayed(s.feedback_db) == "postgresql://feedback@db/fb?password=***&x=1"


def test_the_contextual_sdks_base_url_variable_is_accepted_and_ours_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CONTEXTUAL_BASE_URL", raising=False)
    monkeypatch.setenv("CONTEXTUAL_AI_BASE_URL", "https://sdk.contextual.internal/v1")
    s = load_settings(_env_file=None)
    assert str(s.contextual_base_url) == "https://sdk.contextual.internal/v1"
    monkeypatch.setenv("CONTEXTUAL_BASE_URL", "https://ours.contextual.internal/v1")
    s = load_settings(_env_file=None)
    assert str(s.contextual_base_url) == "https://ours.contextual.internal/v1"
    # The same from a .env file.
    monkeypatch.delenv("CONTEXTUAL_BASE_URL")
    monkeypatch.delenv("CONTEXTUAL_AI_BASE_URL")
    env = tmp_path / ".env"
    env.write_text("CONTEXTUAL_AI_BASE_URL=https://sdk.contextual.internal/v1\n")
    assert str(load_settings(_env_file=env).contextual_base_url).startswith("https://sdk.")
    env.write_text(
        "CONTEXTUAL_BASE_URL=https://ours.contextual.internal/v1\n"
        "CONTEXTUAL_AI_BASE_URL=https://sdk.contextual.internal/v1\n"
    )
    assert str(load_settings(_env_file=env).contextual_base_url).startswith("https://ours.")


def test_a_bad_url_under_the_sdks_name_is_one_line_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTEXTUAL_BASE_URL", raising=False)
    monkeypatch.setenv("CONTEXTUAL_AI_BASE_URL", "api.contextual")
    with pytest.raises(SettingsError) as e:
        load_settings(_env_file=None)
    assert str(e.value).startswith("CONTEXTUAL_BASE_URL (or CONTEXTUAL_AI_BASE_URL) is invalid")
    assert "\n" not in str(e.value)
