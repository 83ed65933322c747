"""Configuration from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

# What each variable should hold, used to turn a validation error into one clear line.
# A Slack app id, as the app's Basic Information page shows it.
APP_ID = re.compile(r"A[A-Z0-9]{2,30}")

EXPECTED: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from your Slack app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "the signing secret from your Slack app's Basic Information page",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for Socket Mode",
    "SLACK_API_URL": "the Slack Web API base URL, e.g. https://slack.com/api/",
    "CONTEXTUAL_API_KEY": "your Contextual AI API key",
    "CONTEXTUAL_BASE_URL": "the Contextual AI API base URL, e.g. https://api.contextual.ai/v1",
    "AQUILAX_API_KEY": "your AquilaX personal access token",
    "AQUILAX_BASE_URL": "the AquilaX base URL, e.g. https://aquilax.ai",
    "LANGSMITH_API_KEY": "your LangSmith API key (lsv2_…)",
    "LANGSMITH_BASE_URL": "the LangSmith API base URL, e.g. https://api.smith.langchain.com",
    "LANGSMITH_FEEDBACK_KEY": "the feedback key votes are recorded under, 1 to 180 characters"
    " (default user_feedback)",
    "LANGFUSE_PUBLIC_KEY": "your Langfuse project's public key (pk-lf-…)",
    "LANGFUSE_SECRET_KEY": "your Langfuse project's secret key (sk-lf-…)",
    "LANGFUSE_BASE_URL": "the Langfuse base URL, e.g. https://cloud.langfuse.com",
    "LANGFUSE_SCORE_NAME": "the score name votes are recorded under, 1 to 200 characters"
    " (default user-feedback)",
    "FEEDBACK_DB": "the path of the SQLite database file, e.g. ./feedback.db, or a PostgreSQL"
    " URL, postgresql://user:password@host:5432/dbname",
    "FEEDBACK_HOST": "the address to listen on, e.g. 0.0.0.0",
    "FEEDBACK_PORT": "a TCP port number from 0 to 65535 (0 picks a free one)",
    "FEEDBACK_API_TOKEN": "a shared secret of at least 16 characters for POST /v1/answers",
    "FEEDBACK_LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "FEEDBACK_LOG_FORMAT": "text (one line per record) or json (one JSON object per line)",
    "FEEDBACK_PROVIDER_TIMEOUT": "seconds a provider request may take, from 0.1 to 120",
    "FEEDBACK_ADMINS": "a comma-separated list of Slack user ids (U…) allowed to change settings",
    "FEEDBACK_TRUSTED_APPS": "a comma-separated list of Slack app ids (A…) whose message"
    " metadata registers answers in every channel",
    "FEEDBACK_WORKER": "inline (`feedback-bot run` sends deliveries) or separate (a"
    " `feedback-bot worker` process beside it sends them)",
    "FEEDBACK_METRICS": "1 to serve Prometheus metrics at /metrics, 0 (the default) not to",
    "FEEDBACK_LOOKUP_PER_MINUTE": "how many Slack calls a minute late lookup may make, from 1"
    " to 1000 (default 20; 1 for a commercially distributed app outside the Marketplace)",
    "FEEDBACK_ASK_AGENT": "the id (a UUID) of the Contextual agent that answers questions asked"
    " in Slack, in every channel that does not say otherwise with /feedback ask",
    "FEEDBACK_DIGEST_HOUR": "the hour (UTC) digests are posted at, from 0 to 23 (default 9)",
    "FEEDBACK_SECRET_KEY": "a Fernet key (32 url-safe base64 bytes); make one with "
    "`feedback-bot secret-key`",
}


# Second names some variables are read under, the ones other tools use; the first wins.
ALIASES: dict[str, str] = {
    "CONTEXTUAL_BASE_URL": "CONTEXTUAL_AI_BASE_URL",
    "LANGSMITH_BASE_URL": "LANGSMITH_ENDPOINT",
    "LANGFUSE_BASE_URL": "LANGFUSE_HOST",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line fit for the console."""


def _check_prefix(value: SecretStr | None, prefix: str) -> SecretStr | None:
    if value is not None and not value.get_secret_value().startswith(prefix):
        raise ValueError(f"must start with {prefix}")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `FOO=` means "not set", so that a .env copied from .env.example works as it is.
        env_ignore_empty=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")
    contextual_api_key: SecretStr | None = None
    # CONTEXTUAL_AI_BASE_URL is what Contextual's SDK reads; ours wins when both are set.
    contextual_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.contextual.ai/v1"),
        validation_alias=AliasChoices("contextual_base_url", "contextual_ai_base_url"),
    )
    aquilax_api_key: SecretStr | None = None
    aquilax_base_url: AnyHttpUrl = AnyHttpUrl("https://aquilax.ai")
    langsmith_api_key: SecretStr | None = None
    # LANGSMITH_ENDPOINT and LANGFUSE_HOST are what their SDKs read; ours win when both are set.
    langsmith_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.smith.langchain.com"),
        validation_alias=AliasChoices("langsmith_base_url", "langsmith_endpoint"),
    )
    langsmith_feedback_key: str = Field(
        default="user_feedback", min_length=1, max_length=180, pattern=r"\S"
    )
    langfuse_public_key: SecretStr | None = None
    langfuse_secret_key: SecretStr | None = None
    langfuse_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://cloud.langfuse.com"),
        validation_alias=AliasChoices("langfuse_base_url", "langfuse_host"),
    )
    langfuse_score_name: str = Field(
        default="user-feedback", min_length=1, max_length=200, pattern=r"\S"
    )
    feedback_db: str = Field(default="./feedback.db", min_length=1)
    feedback_host: str = Field(default="0.0.0.0", min_length=1)
    feedback_port: int = Field(default=3000, ge=0, le=65535)
    feedback_api_token: SecretStr | None = None
    feedback_log_level: LogLevel = "INFO"
    feedback_log_format: Literal["text", "json"] = "text"
    feedback_provider_timeout: float = Field(default=10.0, ge=0.1, le=120.0)
    feedback_admins: Annotated[tuple[str, ...], NoDecode] = ()
    feedback_trusted_apps: Annotated[tuple[str, ...], NoDecode] = ()
    feedback_secret_key: SecretStr | None = None
    feedback_worker: Literal["inline", "separate"] = "inline"
    feedback_metrics: bool = False
    # Late lookup's budget of conversations.history/replies calls (bot/answers/late_lookup.py).
    feedback_lookup_per_minute: int = Field(default=20, ge=1, le=1000)
    # The Contextual agent that answers questions (bot/ask/); unset, the bot answers nobody.
    feedback_ask_agent: UUID | None = None
    # The hour (UTC) digests are posted at: daily ones each day, weekly ones on Mondays.
    feedback_digest_hour: int = Field(default=9, ge=0, le=23)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, v: SecretStr | None) -> SecretStr | None:
        return _check_prefix(v, "xoxb-")

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: SecretStr | None) -> SecretStr | None:
        return _check_prefix(v, "xapp-")

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "contextual_api_key",
        "aquilax_api_key",
        "langsmith_api_key",
        "langfuse_public_key",
        "langfuse_secret_key",
        "feedback_api_token",
        "feedback_secret_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: object) -> object:
        # An empty `FOO=` line in .env means "not set", not "set to nothing".
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("feedback_api_token")
    @classmethod
    def _api_token_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return v

    @field_validator("feedback_log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @field_validator("feedback_admins", mode="before")
    @classmethod
    def _admins(cls, v: object) -> object:
        if isinstance(v, str):
            ids = tuple(part.strip() for part in v.split(",") if part.strip())
            bad = [i for i in ids if not re.fullmatch(r"[UW][A-Z0-9]{2,}", i)]
            if bad:
                raise ValueError(f"not a Slack user id: {bad[0]}")
            return ids
        return v

    @field_validator("feedback_trusted_apps", mode="before")
    @classmethod
    def _trusted_apps(cls, v: object) -> object:
        if isinstance(v, str):
            ids = tuple(part.strip() for part in v.split(",") if part.strip())
            bad = [i for i in ids if not APP_ID.fullmatch(i)]
            if bad:
                raise ValueError(f"not a Slack app id: {bad[0]}")
            return ids
        return v

    @field_validator("feedback_secret_key")
    @classmethod
    def _fernet(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            from cryptography.fernet import Fernet

            try:
                Fernet(v.get_secret_value().encode())
            except ValueError as e:
                raise ValueError("is not a valid Fernet key") from e
        return v

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def slack_api_base(self) -> str:
        """The Web API base URL with the trailing slash slack_sdk needs."""
        return str(self.slack_api_url).rstrip("/") + "/"

    @property
    def log_level(self) -> int:
        return int(logging.getLevelName(self.feedback_log_level))

    def secrets(self) -> list[str]:
        """Every secret value configured, for log redaction."""
        values = [
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.contextual_api_key,
            self.aquilax_api_key,
            self.langsmith_api_key,
            self.langfuse_public_key,
            self.langfuse_secret_key,
            self.feedback_api_token,
            self.feedback_secret_key,
        ]
        secrets = [v.get_secret_value() for v in values if v is not None]
        # A PostgreSQL URL's password: postgresql://user:password@host/db, or ?password=….
        if "://" in self.feedback_db:
            with contextlib.suppress(ValueError):  # a URL asyncpg would refuse anyway
                parts = urlsplit(self.feedback_db)
                passwords = [parts.password, *parse_qs(parts.query).get("password", [])]
                secrets += [p for p in passwords if p]
        return secrets

    def require_bot_token(self) -> None:
        """Commands that call Slack's Web API (`answers scan`) need the bot token only."""
        if self.slack_bot_token is None:
            raise SettingsError(_missing("SLACK_BOT_TOKEN"))

    def require_slack(self) -> None:
        """`run` needs Slack credentials; the admin CLI commands do not."""
        self.require_bot_token()
        if not self.socket_mode and self.slack_signing_secret is None:
            raise SettingsError(
                _missing("SLACK_SIGNING_SECRET") + " (or set SLACK_APP_TOKEN for Socket Mode)"
            )


def _missing(var: str) -> str:
    return f"{var} is not set: it should hold {EXPECTED[var]}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raise SettingsError with one line naming the first bad variable.
    `overrides` are fields (validated as the environment is) and pydantic-settings' own
    arguments such as `_env_file`."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        var = str(first["loc"][0]).upper() if first["loc"] else "settings"
        reason = first["msg"].removeprefix("Value error, ")
        # The error names the field, whichever of its names held the value.
        shown = f"{var} (or {ALIASES[var]})" if var in ALIASES else var
        raise SettingsError(
            f"{shown} is invalid ({reason}): it should hold {EXPECTED.get(var, 'a valid value')}"
        ) from None
