from __future__ import annotations

import asyncio
import os
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import FeedbackBot
from bot.config.settings import Settings
from bot.delivery.worker import Backoff
from tests import postgres
from tests.credentials import (
    API_TOKEN,
    APP_TOKEN,
    AQUILAX_KEY,
    BOT_TOKEN,
    CONTEXTUAL_KEY,
    LANGFUSE_KEYS,
    LANGFUSE_PUBLIC_KEY,
    LANGFUSE_SECRET_KEY,
    LANGSMITH_KEY,
    SIGNING_SECRET,
)
from tests.harness import PROVIDER_TIMEOUT, Harness, SlackSide
from tests.process import World
from tests.standins import Standins
from tests.standins.providers import ProviderStandIn
from tests.standins.slack import SlackStandIn


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("feedback-bot")
    group.addoption("--long", action="store_true", help="the fault-injection suite at length")
    group.addoption("--rounds", type=int, default=None, help="fault-injection rounds")
    group.addoption("--seed", type=int, default=None, help="fault-injection random seed")


# Fast retries so fault scenarios finish in well under a second; the policy itself is the
# production one (exponential, jittered, Retry-After honoured), only the base is smaller.
TEST_BACKOFF = Backoff(base=0.05, cap=0.4)


@pytest.fixture
async def standins() -> AsyncIterator[Standins]:
    both = Standins(
        SlackStandIn(BOT_TOKEN, APP_TOKEN),
        ProviderStandIn("contextual", CONTEXTUAL_KEY, timeout=PROVIDER_TIMEOUT),
        ProviderStandIn("aquilax", AQUILAX_KEY, timeout=PROVIDER_TIMEOUT),
        ProviderStandIn("langsmith", LANGSMITH_KEY, timeout=PROVIDER_TIMEOUT),
        ProviderStandIn("langfuse", LANGFUSE_KEYS, timeout=PROVIDER_TIMEOUT),
    )
    for s in both:
        await s.start()
    yield both
    for s in both:
        await s.stop()


def settings_for(
    db: Path | str,
    slack: SlackStandIn,
    contextual: ProviderStandIn,
    aquilax: ProviderStandIn,
    langsmith: ProviderStandIn | None = None,
    langfuse: ProviderStandIn | None = None,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "contextual_api_key": CONTEXTUAL_KEY,
        "contextual_base_url": contextual.base_url,
        "aquilax_api_key": AQUILAX_KEY,
        "aquilax_base_url": aquilax.base_url,
        "langsmith_api_key": LANGSMITH_KEY,
        "langfuse_public_key": LANGFUSE_PUBLIC_KEY,
        "langfuse_secret_key": LANGFUSE_SECRET_KEY,
        "feedback_db": str(db),
        "feedback_host": "127.0.0.1",
        "feedback_port": 0,
        "feedback_api_token": API_TOKEN,
    }
    # Unconfigured, the bot would send to the real services: the port no one listens on.
    values["langsmith_base_url"] = langsmith.base_url if langsmith else "http://127.0.0.1:9"
    values["langfuse_base_url"] = langfuse.base_url if langfuse else "http://127.0.0.1:9"
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def env_for(settings: Settings) -> dict[str, str]:
    """The same settings as environment variables, for a bot in a subprocess."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None or value == ():
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        elif isinstance(value, tuple):
            value = ",".join(value)
        env[name.upper()] = str(value)
    return env


BACKENDS = ["sqlite", "postgresql"]
POSTGRES_URL = "FEEDBACK_TEST_POSTGRES"  # a server to use, as postgresql://user@host:port/db
POSTGRES_REQUIRED = "FEEDBACK_TEST_POSTGRES_REQUIRED"  # 1 (CI): no server is a failure


# A test that breaks one backend itself runs on that backend alone.
ONLY = {
    "sqlite_only": "sqlite",  # breaks the SQLite file (a full disk, a file replaced)
    "postgresql_only": "postgresql",  # breaks the PostgreSQL server
}


def pytest_configure(config: pytest.Config) -> None:
    for marker, backend in ONLY.items():
        config.addinivalue_line("markers", f"{marker}: the test runs on {backend} alone")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("database") if params is not None else None
        wrong = any(
            item.get_closest_marker(marker) and backend not in (None, only)
            for marker, only in ONLY.items()
        )
        (dropped if wrong else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server | None]:
    """The PostgreSQL server the postgresql half of the suite uses: FEEDBACK_TEST_POSTGRES,
    or a throwaway one started here (tests/postgres.py), with a template database already
    migrated so that each test's own database is a cheap copy."""
    url = os.environ.get(POSTGRES_URL)
    server: postgres.Server | None = None
    try:
        server = postgres.Server(url) if url else postgres.start()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        if os.environ.get(POSTGRES_REQUIRED) == "1":
            raise
        warnings.warn(f"PostgreSQL tests skipped: {e}", stacklevel=1)
        yield None
        return
    asyncio.run(postgres.prepare_template(server))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: postgres.Server | None
) -> str:
    """Where the bot keeps its data in this test: an SQLite file, or a fresh PostgreSQL
    database. Every test that runs the bot runs once on each."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback.db")
    if postgres_server is None:
        pytest.skip("no PostgreSQL server (install postgresql, or set FEEDBACK_TEST_POSTGRES)")
    return await postgres.new_database(postgres_server)


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    """Override in a test module to change the bot's settings."""
    return {}


@pytest.fixture
async def harness(
    database: str,
    standins: Standins,
    bot_overrides: dict[str, Any],
) -> AsyncIterator[Harness]:
    settings = settings_for(database, *standins, **bot_overrides)
    bot = FeedbackBot(settings, backoff=TEST_BACKOFF, provider_timeout=PROVIDER_TIMEOUT)
    await bot.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            side = SlackSide(http, f"http://127.0.0.1:{bot.port}/slack/events")
            h = Harness(bot, *standins, http, side)
            yield h
    finally:
        await bot.stop(grace=1.0)
    assert h.violations() == [], "requests that break the specs or Block Kit"


@pytest.fixture
async def world(tmp_path: Path, database: str, standins: Standins) -> AsyncIterator[World]:
    """For tests that run `feedback-bot run` processes (see tests/process.py)."""
    async with httpx.AsyncClient(timeout=10) as http:
        world = World(tmp_path, *standins, http, database=database)
        try:
            yield world
        finally:
            for bot in world.bots:  # a failed test must not leave a bot running
                await bot.ensure_stopped()


@pytest.fixture
async def socket_bot(database: str, standins: Standins) -> AsyncIterator[FeedbackBot]:
    """The bot in Socket Mode: events over the stand-in's WebSocket, no /slack/events."""
    settings = settings_for(
        database, *standins, slack_app_token=APP_TOKEN, slack_signing_secret=None
    )
    bot = FeedbackBot(settings, backoff=TEST_BACKOFF, provider_timeout=PROVIDER_TIMEOUT)
    await bot.start()
    yield bot
    await bot.stop(grace=1)
