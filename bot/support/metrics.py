"""Prometheus metrics (FEEDBACK_METRICS=1): what the bot counts, in one place.

Each bot has its own registry, no global state. When metrics are off nothing is built and
the call sites skip (they hold `Metrics | None`), so the ack path pays nothing for them.
The outbox gauges are read from the database when /metrics is scraped.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from storage import Store

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Slack wants an ack within 3 s; the buckets are fine where acks live (milliseconds).
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)
PROVIDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "feedback_events",
            "Requests from Slack (events, interactions, commands) by type and outcome",
            ["type", "outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "feedback_ack_seconds",
            "Time from a Slack request's arrival to its acknowledgement",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.votes = Counter("feedback_votes", "Votes cast, by status", ["status"], registry=r)
        self.withdrawals = Counter(
            "feedback_votes_withdrawn", "Votes withdrawn (a reaction removed, say)", registry=r
        )
        self.verdict_changes = Counter(
            "feedback_verdict_changes", "Changes of verdict queued for a provider", registry=r
        )
        self.deliveries = Counter(
            "feedback_deliveries",
            "Delivery outcomes: delivered, retried, dead, skipped, superseded",
            ["provider", "outcome"],
            registry=r,
        )
        self.provider_seconds = Histogram(
            "feedback_provider_request_seconds",
            "Time a provider took to answer a feedback request (any outcome)",
            ["provider"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.slack_errors = Counter(
            "feedback_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error",
            ["method", "error"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "feedback_outbox_depth", "Deliveries waiting or in flight", ["state"], registry=r
        )
        self.outbox_dead = Gauge("feedback_outbox_dead", "Deliveries that are dead", registry=r)
        self.outbox_by_provider = Gauge(
            "feedback_outbox_by_provider",
            "Deliveries waiting, in flight or dead, by the provider of their target",
            ["provider", "state"],
            registry=r,
        )
        self._providers_seen: set[str] = set()
        self.oldest_pending = Gauge(
            "feedback_outbox_oldest_pending_seconds",
            "Age of the oldest delivery still waiting (0 when none)",
            registry=r,
        )

    def request(self, kind: str, status: int, seconds: float) -> None:
        outcome = (
            "acked"
            if status < 300
            else "refused"
            if status == 503
            else "rejected"
            if status < 500
            else "error"
        )
        self.events.labels(kind, outcome).inc()
        self.ack_seconds.observe(seconds)

    def slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method, error).inc()

    async def render(self) -> bytes:
        """The exposition text, with the outbox read now."""
        counts = await self._store.delivery_counts()
        self.outbox_depth.labels("pending").set(counts.pending)
        self.outbox_depth.labels("sending").set(counts.sending)
        self.outbox_dead.set(counts.dead)
        # A provider whose rows are all gone reads 0, not its last figure.
        self._providers_seen.update(counts.by_provider)
        for provider in self._providers_seen:
            for state in ("pending", "sending", "dead"):
                n = counts.by_provider.get(provider, {}).get(state, 0)
                self.outbox_by_provider.labels(provider, state).set(n)
        oldest = counts.oldest_pending_at
        self.oldest_pending.set(max(0.0, time.time() - oldest) if oldest else 0.0)
        return generate_latest(self.registry)
