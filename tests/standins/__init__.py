"""Local stand-ins for Slack and the providers."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tests.standins.providers import ProviderStandIn
    from tests.standins.slack import SlackStandIn

# How long a test waits for something it expects before it calls it missing. A bound on a
# failure only: a passing test waits for the event itself, however soon it comes, so this
# is generous enough for a loaded two-core machine running the suite beside other work.
DEADLINE = 30.0


class Standins(NamedTuple):
    """The stand-ins one test runs against, in the order settings_for, Harness and World take
    them."""

    slack: SlackStandIn
    contextual: ProviderStandIn
    aquilax: ProviderStandIn
    langsmith: ProviderStandIn
    langfuse: ProviderStandIn

    @property
    def providers(self) -> tuple[ProviderStandIn, ...]:
        return self.contextual, self.aquilax, self.langsmith, self.langfuse
