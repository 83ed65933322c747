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

from bot.cli.key_probe import PROBE_KEY, send_probe
from bot.config.channels import WORKSPACE
from bot.config.settings import Settings
from bot.providers import PROVIDERS, ProviderSpec
from bot.slack.api import granted_scopes, missing_history_scopes, slack_session, web_client
from bot.support.logs import Redactor
from storage import StorageError, Store
from storage.errors import DatabaseOpenError, SchemaTooNewError
from storage.location import displayed
from storage.sqlite.migrations import MIGRATIONS

# The bot scopes manifest.yml asks for (tests/test_doctor.py holds the two together).
SCOPES = (
    "reactions:read",
    "chat:write",
    "chat:write.public",
    "commands",
    "users:read",
    "metadata.message:read",
    "files:write",
    "channels:read",
)
# Those manifest.yml adds for Ask the AI, checked where an agent answers (FEEDBACK_ASK_AGENT);
# channels:history and groups:history have their own check (history, below).
ASK_SCOPES = ("app_mentions:read", "im:history", "assistant:write")
STUCK_AFTER = 15 * 60  # a delivery waiting this long means a provider has been failing
AUDIT_LIMIT = 1_000_000  # every change of a setting, in practice


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool | None  # None: not applicable here (skipped), or it could not be checked
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
    store, opened = await _database(settings)
    # Closed whatever happens: `say` raises when nobody reads the output any more (`| head`),
    # and an open store's thread would keep the process alive.
    try:
        report(opened)
        late = await late_lookup_scopes(store) if store is not None else []
        async with slack_session() as session:
            await _slack(settings, session, report, late)
        stored = await store.provider_keys() if store is not None else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for name, spec in PROVIDERS.items():
                key = _effective_key(settings, name, stored)
                if key is not None:
                    redact.add(key.value)
                report(await _key(settings, spec, key))
                report(await _reachable(http, spec.label, spec.base_url(settings)))
        report(_fernet(settings, stored))
        if store is not None:
            report(await _outbox(store))
    finally:
        if store is not None:
            await store.close()
    return not failed


async def _database(settings: Settings) -> tuple[Store | None, Check]:
    path = displayed(settings.feedback_db)
    try:
        store = await Store.open(settings.feedback_db)
    except (DatabaseOpenError, SchemaTooNewError) as e:
        fix = "set FEEDBACK_DB to a file feedback-bot can write"
        return None, Check("database", False, str(e), fix)
    try:
        problems = await store.health("feedback-bot doctor")
    except BaseException:
        await store.close()
        raise
    if problems:
        return store, Check("database", False, "; ".join(problems), "see the reason above")
    return store, Check("database", True, f"{path} opens, takes writes, schema {len(MIGRATIONS)}")


async def _slack(
    settings: Settings,
    session: aiohttp.ClientSession,
    report: Callable[[Check], None],
    late_lookup: list[str],
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
    wanted = SCOPES + (ASK_SCOPES if settings.feedback_ask_agent is not None else ())
    missing = [s for s in wanted if s not in granted]
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
        report(Check("Slack scopes", True, f"all {len(wanted)} of manifest.yml granted"))
    report(_history(missing_history_scopes(granted), late_lookup))
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


def _history(missing: list[str], late_lookup: list[str]) -> Check:
    """The history scopes are optional, until late lookup is on somewhere: then a reaction
    on a message nobody registered is held for a lookup that cannot read the message."""
    name = "Slack history scopes"
    if not missing:
        return Check(name, True, "granted: `answers scan` and late lookup can read channels")
    if not late_lookup:
        return Check(
            name,
            None,
            f"{', '.join(missing)} not granted (optional): `answers scan` and late lookup"
            " cannot read those channels",
        )
    where = ", ".join("the workspace" if s == WORKSPACE else s for s in late_lookup)
    return Check(
        name,
        False,
        f"late lookup is on ({where}), but {', '.join(missing)} not granted: it cannot read"
        " the messages it looks up, and their reactions never count",
        f"add {' and '.join(missing)} under OAuth & Permissions, then reinstall the app to the"
        " workspace (or turn late lookup off: /feedback late-lookup off)",
    )


async def late_lookup_scopes(store: Store) -> list[str]:
    """The scopes (WORKSPACE, or channel ids) that switch late lookup on.

    Settings are stored by scope (bot/config/channels.py), and the store lists a scope's
    settings only when asked for that scope. Every change of a setting is in the audit
    log, though, so the scopes it names for late_lookup are all that can set it; their
    values now come from the settings themselves."""
    try:
        entries = await store.audit_log(limit=AUDIT_LIMIT)
        scopes = {WORKSPACE} | {e.scope for e in entries if e.key == "late_lookup"}
        values = await store.config_values(sorted(scopes))
    except StorageError:
        return []  # the database check says why
    return sorted(scope for scope, key, value in values if key == "late_lookup" and value is True)


@dataclass(frozen=True, slots=True)
class Key:
    value: str
    entered: bool  # in Slack (/feedback setup), not from the environment


def _effective_key(
    settings: Settings, name: str, stored: dict[str, tuple[bytes, str]]
) -> Key | None:
    """The key the bot would send, as bot/delivery/keys.py picks it: the one entered in Slack
    when it decrypts, else the environment's."""
    secret = settings.feedback_secret_key
    if name in stored and secret is not None:
        fernet = Fernet(secret.get_secret_value().encode())
        try:
            return Key(fernet.decrypt(stored[name][0]).decode(), entered=True)
        except InvalidToken:
            pass  # the "stored keys" check says so
    environment = PROVIDERS[name].environment_key(settings)
    return Key(environment, entered=False) if environment else None


async def _key(settings: Settings, spec: ProviderSpec, key: Key | None) -> Check:
    name = f"{spec.label} key"
    if key is None:
        return Check(
            name,
            False,
            "not set: its answers' feedback becomes dead deliveries",
            f"set {spec.key_variable}, or enter it with /feedback setup",
        )
    last4 = key.value[-4:]
    if key.entered:
        origin, fix = f"entered in Slack (…{last4})", "enter the right one with /feedback setup"
    else:
        origin = f"from {spec.key_variable} (…{last4})"
        fix = f"set {spec.key_variable} to the right one (or enter it with /feedback setup)"
    # How the answer to the probe (bot/cli/key_probe.py: send_probe) is read:
    # - 401, 403: the key is refused (Contextual and AquilaX answer so to a wrong key), ✗;
    # - 2xx: the provider took the request, so it took the key, ✓;
    # - 408, 429, 5xx, no answer: the provider did not get as far as the key: "could not
    #   check" (–), as a retry later may tell;
    # - any other refusal (404, 400, 422 …) may come before or after the key was looked at
    #   (a base URL that misses the API answers 404 to anything). The same request with a key
    #   that cannot be valid tells: refused as unauthorized, it shows that the server checks
    #   keys there before refusing the target, so it accepted ours, ✓; else "could not check".
    url = spec.base_url(settings)
    probe = await send_probe(spec, url, key.value)
    if probe.status in (401, 403):
        return Check(name, False, f"{origin}: {spec.label} refuses it (HTTP {probe.status})", fix)
    if probe.status is not None and 200 <= probe.status < 300:
        return Check(name, True, f"{origin}, accepted by {spec.label}")
    if probe.status is None or probe.status in (408, 429) or probe.status >= 500:
        return Check(
            name,
            None,
            f"{origin}; could not check it: {probe.said(spec.label)}",
            "run `feedback-bot doctor` again later",
        )
    control = await send_probe(spec, url, PROBE_KEY)
    if control.status in (401, 403):
        return Check(name, True, f"{origin}, accepted by {spec.label}")
    return Check(
        name,
        None,
        f"{origin}; could not check it: {probe.said(spec.label)} with it, and"
        f" {control.said(spec.label)} with a made-up key",
        f"check {spec.base_url_setting.upper()} ({url})",
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
    dead_at = [f"{p} {s['dead']}" for p, s in sorted(counts.by_provider.items()) if s.get("dead")]
    if dead_at:
        detail += f" ({', '.join(dead_at)})"
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
