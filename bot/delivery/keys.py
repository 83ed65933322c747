"""Provider API keys: from `/feedback setup` (encrypted at rest) or from the environment."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken

from bot.config.settings import Settings
from bot.providers import PROVIDERS
from bot.support.logs import Redactor
from storage import Store

log = logging.getLogger(__name__)

KeySource = Literal["setup", "environment", "none"]


class KeysError(Exception):
    """A key cannot be stored or read; the message says what to do."""


@dataclass(frozen=True, slots=True)
class KeyStatus:
    source: KeySource
    last4: str | None

    def describe(self) -> str:
        if self.source == "none":
            return "not set"
        return f"set (…{self.last4}, from {self.source})"


class Keys:
    """Keys entered in Slack win over the environment, which is the fallback.

    Decrypted keys live only in memory, and are registered with the log redactor.
    """

    def __init__(self, store: Store, settings: Settings, redactor: Redactor) -> None:
        self._store = store
        self._redactor = redactor
        secret = settings.feedback_secret_key
        self._fernet = Fernet(secret.get_secret_value().encode()) if secret else None
        env = {p: spec.environment_key(settings) for p, spec in PROVIDERS.items()}
        self._env = {p: v for p, v in env.items() if v is not None}
        for provider, key in self._env.items():
            self._redact(provider, key)
        self._stored: dict[str, str] = {}

    @property
    def can_store(self) -> bool:
        return self._fernet is not None

    async def load(self) -> None:
        """Decrypt the stored keys (at start-up). A key that no longer decrypts (the secret
        key changed) is skipped: the environment's key, if any, is used instead."""
        self._stored = {}
        if self._fernet is None:
            return
        for provider, (ciphertext, _) in (await self._store.provider_keys()).items():
            try:
                key = self._fernet.decrypt(ciphertext).decode()
            except InvalidToken:
                log.warning(
                    "the stored %s key does not decrypt with FEEDBACK_SECRET_KEY (was it"
                    " changed?): using the environment's key; enter it again with /feedback setup",
                    provider,
                )
                continue
            self._stored[provider] = key
            self._redact(provider, key)

    def _redact(self, provider: str, key: str) -> None:
        """Mask the key in every log line, and the parts of it a request sends alone (the
        secret half of Langfuse's pair)."""
        self._redactor.add(key)
        for part in PROVIDERS[provider].secret_parts(key):
            self._redactor.add(part)

    def get(self, provider: str) -> str | None:
        return self._stored.get(provider) or self._env.get(provider)

    def status(self, provider: str) -> KeyStatus:
        if provider in self._stored:
            return KeyStatus("setup", self._stored[provider][-4:])
        if provider in self._env:
            return KeyStatus("environment", self._env[provider][-4:])
        return KeyStatus("none", None)

    async def set(self, provider: str, key: str | None, user: str) -> None:
        """Store a key entered in Slack (None: forget it and fall back to the environment)."""
        if provider not in PROVIDERS:
            raise KeysError(f"unknown provider {provider!r}")
        if key is None:
            await self._store.set_provider_key(provider, None, "", user)
            self._stored.pop(provider, None)
            return
        if self._fernet is None:
            raise KeysError(
                "keys entered in Slack need FEEDBACK_SECRET_KEY to be stored encrypted; without"
                f" it, set {' / '.join(s.key_variable for s in PROVIDERS.values())} in the bot's"
                " environment"
            )
        self._redact(provider, key)
        await self._store.set_provider_key(
            provider, self._fernet.encrypt(key.encode()), key[-4:], user
        )
        self._stored[provider] = key
