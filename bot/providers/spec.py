"""What the rest of the bot knows about a provider. Each provider module declares one
`ProviderSpec` beside its client; `bot.providers.PROVIDERS` collects them, and the wiring,
`/feedback status` and `setup`, the registration schema and the CLI iterate it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from bot.config.settings import Settings
from bot.domain import Answer
from bot.providers.base import Provider
from bot.providers.registration import AnswerIn

# How the wiring builds a client: the shared HTTP session, the base URL from the settings,
# and a callable giving the current key (setup can change it while the bot runs).
ClientFactory = Callable[[aiohttp.ClientSession, str, Callable[[], str | None]], Provider]


@dataclass(frozen=True, slots=True)
class CliOption:
    """An option of `feedback-bot answers add` that fills one registration field."""

    field: str  # the registration field, e.g. "agent_id"
    flag: str = ""  # default: --agent-id for agent_id
    metavar: str | None = None
    help: str | None = None
    # Set for a repeatable option: each use adds item(raw) to the field's list.
    item: Callable[[str], object] | None = None

    @property
    def option(self) -> str:
        return self.flag or "--" + self.field.replace("_", "-")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str  # the `provider` of answers, keys and deliveries, e.g. "contextual"
    label: str  # in replies and error messages, e.g. "Contextual"
    key_setting: str  # the Settings field holding its key from the environment
    key_label: str  # the key's field in the setup form
    base_url_setting: str  # the Settings field holding its base URL
    answer_in: type[AnswerIn]  # the registration model, tagged `provider: Literal[name]`
    answer_ids: Callable[[Answer], dict[str, object]]  # its ids as the API shows them
    client: ClientFactory
    # What a verdict of `removed` means for it: None when the client sends it (the
    # provider withdraws the feedback); else why the client records it as skipped.
    removed: str | None = None
    # Registration fields a channel's settings can fill in: field -> ChannelOptions attribute.
    channel_defaults: Mapping[str, str] = field(default_factory=dict)
    cli_options: tuple[CliOption, ...] = ()

    @property
    def key_variable(self) -> str:
        """The environment variable of its key, e.g. CONTEXTUAL_API_KEY."""
        return self.key_setting.upper()

    def base_url(self, settings: Settings) -> str:
        return str(getattr(settings, self.base_url_setting))

    def environment_key(self, settings: Settings) -> str | None:
        secret = getattr(settings, self.key_setting)
        return secret.get_secret_value() if secret is not None else None
