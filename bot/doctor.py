"""`feedback-bot doctor`: every check an operator would otherwise make by hand, in order,
each a ✓ or a ✗ with the fix. It never prints a secret: keys are shown by their last four
characters at most, and every line passes the redactor."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from cryptography.fernet import Fernet, InvalidToken
from slack_sdk.errors import SlackApiError

from bot.logs import Redactor
from bot.providers import PROVIDERS
from bot.settings import Settings
from bot.slack_api import granted_scopes, missing_history_scopes, slack_session, web_client
from storage import StorageError, Store
from storage.backend import displayed
from storage.db import DatabaseOpenError, SchemaTooNewError
from storage.migrations import MIGRATIONS

# The bot scopes manifest.yml asks for (tests/test_doctor.py holds the two together).
SCOPES = (
    "reactions:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "users:read",
    "metadata.message:read",
)
STUCK_AFTER = 15 * 60  # a delivery waiting this long means a provider has been failing


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool | None  # None: not applicable here (skipped)
    detail: str
    fix: str = ""

    def json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix or None}

    def line(self) -> str:
        mark = {True: "✓", False: "✗", None: "–"}[self.ok]
        text = f"{mark} {self.name}: {self.detail}"
        return f"{text}\n    → {self.fix}" if self.fix and not self.ok else text


async def diagnose(settings: Settings, say: Callable[[Check], None]) -> bool:
    """Run every check, handing each to `say` as it ends (redacted); True when none failed."""
    redact = Redactor(settings.secrets())
    failed = False

    def report(check: Check) -> None:
        nonlocal failed
        failed = failed or check.ok is False
        say(Check(check.name, check.ok, redact(check.detail), redact(check.fix)))

    mode = "Socket Mode" if settings.socket_mode else "HTTP"
    database = displayed(settings.feedback_db)
    report(Check("settings", True, f"read ({mode}, database {database})"))
    store = await _database(settings, report)
    async with slack_session() as session:
        await _slack(settings, session, report)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        stored = await store.provider_keys() if store is not None else {}
        for name, spec in PROVIDERS.items():
            report(_key(settings, name, spec.key_variable, spec.environment_key(settings), stored))
            report(await _reachable(http, spec.label, spec.base_url(settings)))
    report(_fernet(settings, stored))
    if store is not None:
        report(await _outbox(store))
        await store.close()
    return not failed


async def _database(settings: Settings, report: Callable[[Check], None]) -> Store | None:
    path = displayed(settings.feedback_db)
    try:
        store = await Store.open(settings.feedback_db)
    except (DatabaseOpenError, SchemaTooNewError) as e:
        report(Check("database", False, str(e), "set FEEDBACK_DB to a file feedback-bot can write"))
        return None
    problems = await store.health("feedback-bot doctor")
    if problems:
        report(Check("database", False, "; ".join(problems), "see the reason above"))
    else:
        report(Check("database", True, f"{path} opens, takes writes, schema {len(MIGRATIONS)}"))
    return store


async def _slack(
    settings: Settings, session: aiohttp.ClientSession, report: Callable[[Check], None]
) -> None:
    if settings.slack_bot_token is None:
        report(Check("Slack bot token", False, "SLACK_BOT_TOKEN is not set", _TOKEN_FIX))
        return
    slack = web_client(settings, session)
    try:
        me = await slack.auth_test()
    except SlackApiError as e:
        error = e.response.get("error", "unknown error")
        report(Check("Slack bot token", False, f"refused by Slack ({error})", _TOKEN_FIX))
        return
    except (aiohttp.ClientError, TimeoutError) as e:
        report(
            Check(
                "Slack bot token",
                False,
                f"cannot reach Slack at {slack.base_url} ({type(e).__name__})",
                "check SLACK_API_URL and the network (outbound HTTPS to slack.com)",
            )
        )
        return
    report(Check("Slack bot token", True, f"<@{me['user_id']}> in workspace {me['team_id']}"))
    granted = granted_scopes(me)
    missing = [s for s in SCOPES if s not in granted]
    if missing:
        report(
            Check(
                "Slack scopes",
                False,
                f"missing {', '.join(missing)}",
                "add them under OAuth & Permissions (or paste manifest.yml again), then"
                " reinstall the app to the workspace",
            )
        )
    else:
        report(Check("Slack scopes", True, f"all {len(SCOPES)} of manifest.yml granted"))
    history = missing_history_scopes(granted)
    report(
        Check(
            "Slack history scopes",
            None if history else True,
            f"{', '.join(history)} not granted (optional): `answers scan` and late lookup"
            " cannot read those channels"
            if history
            else "granted: `answers scan` and late lookup can read channels",
        )
    )
    if settings.slack_app_token is None:
        report(Check("Slack app token", None, "not set: HTTP mode, no Socket Mode"))
        return
    try:
        await slack.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as e:
        error = e.response.get("error", "unknown error")
        report(
            Check(
                "Slack app token",
                False,
                f"refused by Slack ({error})",
                "create an app-level token with connections:write under Basic Information,"
                " and set SLACK_APP_TOKEN to it",
            )
        )
        return
    report(Check("Slack app token", True, "opens a Socket Mode connection"))


_TOKEN_FIX = (
    "set SLACK_BOT_TOKEN to the bot token (xoxb-…) from your app's OAuth & Permissions page"
)


def _key(
    settings: Settings,
    name: str,
    variable: str,
    environment: str | None,
    stored: dict[str, tuple[bytes, str]],
) -> Check:
    label = PROVIDERS[name].label
    if name in stored and settings.feedback_secret_key is not None:
        return Check(f"{label} key", True, f"entered in Slack (…{stored[name][1]})")
    if environment:
        return Check(f"{label} key", True, f"from {variable} (…{environment[-4:]})")
    return Check(
        f"{label} key",
        False,
        "not set: its answers' feedback becomes dead deliveries",
        f"set {variable}, or enter it with /feedback setup",
    )


async def _reachable(http: aiohttp.ClientSession, label: str, url: str) -> Check:
    """Any HTTP answer from the provider's host counts: no key is sent."""
    try:
        async with http.get(url, allow_redirects=False) as r:
            status = r.status
    except (aiohttp.ClientError, TimeoutError) as e:
        return Check(
            f"{label} host",
            False,
            f"{url} unreachable ({type(e).__name__})",
            "check its base URL setting and the network (outbound HTTPS)",
        )
    return Check(f"{label} host", True, f"{url} answers (HTTP {status})")


def _fernet(settings: Settings, stored: dict[str, tuple[bytes, str]]) -> Check:
    if not stored:
        return Check("stored keys", None, "none entered in Slack")
    secret = settings.feedback_secret_key
    if secret is None:
        return Check(
            "stored keys",
            False,
            f"{len(stored)} entered in Slack, but FEEDBACK_SECRET_KEY is not set",
            "set FEEDBACK_SECRET_KEY to the key they were stored with",
        )
    fernet = Fernet(secret.get_secret_value().encode())
    broken = []
    for name, (ciphertext, _) in stored.items():
        try:
            fernet.decrypt(ciphertext)
        except InvalidToken:
            broken.append(PROVIDERS[name].label)
    if broken:
        return Check(
            "stored keys",
            False,
            f"{', '.join(broken)} do not decrypt with FEEDBACK_SECRET_KEY",
            "set the FEEDBACK_SECRET_KEY they were stored with, or enter them again with"
            " /feedback setup",
        )
    return Check("stored keys", True, f"{len(stored)} decrypt with FEEDBACK_SECRET_KEY")


async def _outbox(store: Store) -> Check:
    try:
        counts = await store.delivery_counts()
    except StorageError as e:
        return Check("outbox", False, str(e), "see the database check")
    waiting = time.time() - counts.oldest_pending_at if counts.oldest_pending_at else 0.0
    detail = f"{counts.pending} waiting, {counts.sending} sending, {counts.dead} dead"
    if counts.dead:
        return Check(
            "outbox",
            False,
            f"{detail}; last error: {counts.last_error}",
            "fix what the error says, then `feedback-bot deliveries retry`",
        )
    if waiting > STUCK_AFTER:
        return Check(
            "outbox",
            False,
            f"{detail}; the oldest has waited {waiting / 60:.0f} minutes",
            "a provider keeps failing: `feedback-bot deliveries list --state pending`",
        )
    return Check("outbox", True, detail)
