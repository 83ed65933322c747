"""What the rest of the bot knows about a provider. Each provider module declares one
`ProviderSpec` beside its client; `bot.providers.PROVIDERS` collects them, and the wiring,
`/feedback status` and `setup`, the registration schema and the CLI iterate it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from bot.config.settings import Settings
from bot.domain import Answer, Status, Target, Verdict
from bot.providers.base import Provider
from bot.providers.registration import AnswerIn, TargetIn

# How the wiring builds a client: the shared HTTP session, the base URL from the settings,
# a callable giving the current key (setup can change it while the bot runs), and the
# provider's own options as keywords (`ProviderSpec.options`).
ClientFactory = Callable[..., Provider]


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


# The doctor's usual probe: a 👎 on a target that cannot exist.
PROBE_FEEDBACK = Verdict(Status.THUMBS_DOWN)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str  # the `provider` of answers, keys and deliveries, e.g. "contextual"
    label: str  # in replies and error messages, e.g. "Contextual"
    key_setting: str  # the Settings field holding its key from the environment
    key_label: str  # the key's field in the setup form
    base_url_setting: str  # the Settings field holding its base URL
    answer_in: type[AnswerIn]  # the single form's model, tagged `provider: Literal[name]`
    answer_ids: Callable[[Answer, Target], dict[str, object]]  # a target's ids, as shown
    target_in: type[TargetIn]  # a target's model in a list of targets, tagged the same way
    client: ClientFactory
    # What a verdict of `removed` means for it: None when the client sends it (the
    # provider withdraws the feedback); else why the client records it as skipped.
    removed: str | None = None
    # Registration fields a channel's settings can fill in: field -> ChannelOptions attribute.
    channel_defaults: Mapping[str, str] = field(default_factory=dict)
    cli_options: tuple[CliOption, ...] = ()
    # The variables its key is made of, when not just key_setting's (Langfuse: two halves).
    key_variables: str = ""
    # Its key as the environment gives it, when not just key_setting's value.
    environment: Callable[[Settings], str | None] | None = None
    # What the doctor's key probe sends (bot/cli/key_probe.py): a feedback on a target that
    # cannot exist, or, where a feedback on an unknown target might be kept (Langfuse takes
    # scores for traces it has not seen yet), the removal of one, which deletes nothing.
    probe_verdict: Verdict = PROBE_FEEDBACK
    # The client's keyword options from the settings (LangSmith's feedback key, say).
    options: Callable[[Settings], Mapping[str, str]] = lambda _settings: {}
    # What is wrong with a key entered in the setup form beyond its length, or None.
    check_key: Callable[[str], str | None] = lambda _key: None
    # The parts of a key the log redactor must mask too (the secret half of a pair).
    secret_parts: Callable[[str], list[str]] = lambda _key: []

    @property
    def key_variable(self) -> str:
        """The environment variable(s) of its key, e.g. CONTEXTUAL_API_KEY."""
        return self.key_variables or self.key_setting.upper()

    def build(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        api_key: Callable[[], str | None],
        base_url: str | None = None,
    ) -> Provider:
        """Its client, configured from the settings (`base_url` overrides theirs)."""
        url = base_url if base_url is not None else self.base_url(settings)
        return self.client(session, url, api_key, **self.options(settings))

    def base_url(self, settings: Settings) -> str:
        return str(getattr(settings, self.base_url_setting))

    def environment_key(self, settings: Settings) -> str | None:
        if self.environment is not None:
            return self.environment(settings)
        secret = getattr(settings, self.key_setting)
        return secret.get_secret_value() if secret is not None else None
