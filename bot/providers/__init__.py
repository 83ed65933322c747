"""Providers: one module each, holding its client (behind the one `Provider` protocol) and
its `ProviderSpec`. `PROVIDERS` is the registry: everything that varies by provider is
looked up there. Each provider's registration model extends `registration.AnswerIn`, the
fields every registration shares. May import: bot.domain, bot.config and bot.support."""

from collections.abc import Mapping
from types import MappingProxyType

from bot.providers import aquilax, contextual, langfuse, langsmith
from bot.providers.aquilax import AquilaXProvider
from bot.providers.base import (
    Outcome,
    PermanentError,
    Provider,
    ProviderError,
    RetryableError,
    Sent,
    Skipped,
)
from bot.providers.contextual import ContextualProvider
from bot.providers.langfuse import LangfuseProvider
from bot.providers.langsmith import LangSmithProvider
from bot.providers.spec import CliOption, ProviderSpec

# name -> spec, in the order replies, forms and usage lines list them.
PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType(
    {spec.name: spec for spec in (contextual.SPEC, aquilax.SPEC, langsmith.SPEC, langfuse.SPEC)}
)

__all__ = [
    "PROVIDERS",
    "AquilaXProvider",
    "CliOption",
    "ContextualProvider",
    "LangSmithProvider",
    "LangfuseProvider",
    "Outcome",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderSpec",
    "RetryableError",
    "Sent",
    "Skipped",
]
