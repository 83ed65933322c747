"""The provider registry: what each ProviderSpec declares holds up against the settings, the
channel configuration, the registration model and the client. A new provider's spec gets
these checks for free."""

from __future__ import annotations

import typing

import aiohttp
import pytest

from bot.channel_settings import KEYS, ChannelOptions
from bot.domain import REMOVED, Answer
from bot.providers import PROVIDERS, PermanentError, ProviderSpec, Skipped
from bot.registration import AnswerIn
from bot.settings import EXPECTED, Settings

SPECS = list(PROVIDERS.values())


def test_the_registry_is_keyed_by_name_in_a_stable_order() -> None:
    assert list(PROVIDERS) == ["contextual", "aquilax"]
    assert all(name == spec.name for name, spec in PROVIDERS.items())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_registration_model_is_tagged_with_the_name(spec: ProviderSpec) -> None:
    assert issubclass(spec.answer_in, AnswerIn)
    tag = spec.answer_in.model_fields["provider"].annotation
    assert typing.get_args(tag) == (spec.name,)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_its_settings_exist_are_explained_and_the_key_is_a_redacted_secret(
    spec: ProviderSpec,
) -> None:
    assert spec.key_setting in Settings.model_fields
    assert spec.base_url_setting in Settings.model_fields
    assert spec.key_variable in EXPECTED
    assert spec.base_url_setting.upper() in EXPECTED
    settings = Settings(_env_file=None, **{spec.key_setting: "a-key-from-the-env-1234"})  # type: ignore[arg-type]
    assert spec.environment_key(settings) == "a-key-from-the-env-1234"
    assert "a-key-from-the-env-1234" in settings.secrets()
    blank = Settings(_env_file=None, **{spec.key_setting: " "})  # type: ignore[arg-type]
    assert spec.environment_key(blank) is None
    assert spec.base_url(blank).startswith("https://")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_defaults_options_and_shown_ids_name_real_fields(spec: ProviderSpec) -> None:
    fields = spec.answer_in.model_fields
    for field, setting in spec.channel_defaults.items():
        assert field in fields
        assert setting in KEYS and hasattr(ChannelOptions(), setting)
    for option in spec.cli_options:
        assert option.field in fields and option.option.startswith("--")
    shown = spec.answer_ids(Answer(channel="C0123ABCD", ts="1700000000.000100", provider=spec.name))
    assert set(shown) <= set(fields)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_the_client_does_with_a_removal_what_the_spec_declares(spec: ProviderSpec) -> None:
    answer = Answer(channel="C0123ABCD", ts="1700000000.000100", provider=spec.name)
    async with aiohttp.ClientSession() as session:
        client = spec.client(session, "http://127.0.0.1:9", lambda: None)
        assert client.name == spec.name
        if spec.removed is None:
            # It would send the removal: with no key, it fails for want of one.
            with pytest.raises(PermanentError, match=spec.key_variable):
                await client.send(answer, "", REMOVED)
        else:
            assert await client.send(answer, "", REMOVED) == Skipped(spec.removed)
