"""Provider clients: one module per provider behind one `Provider` protocol."""

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

__all__ = [
    "AquilaXProvider",
    "ContextualProvider",
    "Outcome",
    "PermanentError",
    "Provider",
    "ProviderError",
    "RetryableError",
    "Sent",
    "Skipped",
]
