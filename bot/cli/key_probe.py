"""The doctor's key probe: one feedback, through the provider's own client, for a target that
cannot exist, to learn from the HTTP status whether the provider takes a key. No provider has
a read-only endpoint to check a key with; feedback on the nil UUID changes nothing anywhere."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import cast

import aiohttp

from bot.domain import Answer, Target
from bot.domain import Provider as ProviderName
from bot.providers import PROVIDERS, ProviderError, ProviderSpec

# For the nil UUID, which no agent, message, request, run or trace has, in an org and group
# no one can have made, so no provider can apply it. What is sent is each provider's
# `probe_verdict`: a feedback, or the removal of one that cannot exist.
NIL = "00000000-0000-0000-0000-000000000000"
PROBE_ANSWER = Answer(channel="C0DOCTOR", ts="0.000000", targets=())
PROBE_TARGET = Target(
    provider=cast(ProviderName, next(iter(PROVIDERS))),  # each probe puts its own
    agent_id=NIL,
    message_id=NIL,
    request_id=NIL,
    run_id=NIL,
    trace_id=NIL,
    org="feedback-bot-doctor",
    group="feedback-bot-doctor",
)
# A key that cannot be valid: the control the doctor compares a key's answer with.
PROBE_KEY = "feedback-bot-doctor:not-a-key"  # a pair, for Langfuse's public:secret


@dataclass(frozen=True, slots=True)
class Probe:
    status: int | None  # None: no HTTP answer
    error: str = ""

    def said(self, label: str) -> str:
        return f"{label} answered HTTP {self.status}" if self.status else self.error


async def send_probe(spec: ProviderSpec, url: str, key: str) -> Probe:
    """One feedback for a target that cannot exist, through the provider's own client, so
    that the request is exactly what deliveries send (its path, its key's header) and the
    provider must authenticate it before it can refuse it.

    The client raises on a refusal and tells no status; a trace hook sees the status."""
    statuses: list[int] = []

    async def on_end(
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        statuses.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, trace_configs=[trace]) as http:
        client = spec.client(http, url, lambda: key)
        target = replace(PROBE_TARGET, provider=cast(ProviderName, spec.name))
        answer = replace(PROBE_ANSWER, targets=(target,))
        try:
            await client.send(answer, target, "", spec.probe_verdict)
        except ProviderError as e:
            return Probe(statuses[-1] if statuses else None, str(e))
    return Probe(statuses[-1] if statuses else None, "no request made")
