"""Provider keys at rest: encrypted, and a changed FEEDBACK_SECRET_KEY degrades gracefully."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config.settings import Settings
from bot.delivery.keys import Keys, KeysError
from bot.support.logs import Redactor
from storage import Store

ENV_KEY = "env-contextual-key-123456"
TYPED_KEY = "typed-contextual-key-abcdef"


def settings(secret: str | None) -> Settings:
    return Settings(_env_file=None, contextual_api_key=ENV_KEY, feedback_secret_key=secret)  # type: ignore[call-arg]


async def test_a_changed_secret_key_falls_back_to_the_environment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "f.db")
    try:
        redactor = Redactor()
        first = Keys(store, settings(Fernet.generate_key().decode()), redactor)
        await first.set("contextual", TYPED_KEY, "U0ADMIN001")
        assert first.get("contextual") == TYPED_KEY
        assert redactor(f"key={TYPED_KEY}") == "key=[redacted]"

        rotated = Keys(store, settings(Fernet.generate_key().decode()), Redactor())
        await rotated.load()
        assert rotated.get("contextual") == ENV_KEY
        assert rotated.status("contextual").source == "environment"
        assert "does not decrypt" in caplog.text and TYPED_KEY not in caplog.text

        without = Keys(store, settings(None), Redactor())
        with pytest.raises(KeysError, match="FEEDBACK_SECRET_KEY"):
            await without.set("contextual", TYPED_KEY, "U0ADMIN001")
    finally:
        await store.close()
