"""Prometheus metrics (FEEDBACK_METRICS=1) on the bot's HTTP server, in both modes: what
each counter says after real requests, and /metrics off by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import FeedbackBot
from tests.conftest import TEST_BACKOFF, settings_for
from tests.credentials import APP_TOKEN
from tests.harness import PROVIDER_TIMEOUT, Harness, wait_until
from tests.slack_payloads import CHANNEL, event_envelope, new_ts, new_uuid, reaction_event
from tests.standins import Standins

ALICE, BOB = "U0ALICE001", "U0BOB00001"


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_metrics": True}


async def scrape(http: httpx.AsyncClient, base: str) -> dict[tuple[str, tuple], float]:
    r = await http.get(f"{base}/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def test_requests_votes_verdicts_deliveries_and_the_outbox_are_counted(
    harness: Harness,
) -> None:
    h = harness
    a = await h.contextual_answer()
    # Settled after each: a change that undoes one still queued is no change to send.
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.settled()
    await h.slack.react(BOB, "-1", a["ts"])
    await h.settled()
    await h.slack.unreact(BOB, "-1", a["ts"])
    await h.settled()
    await h.slack.post('{"type": "event_callback"}', secret="wrong-secret-wrong-secret")
    m = await scrape(h.http, h.base_url)
    events = "feedback_events_total"
    assert m[(events, (("outcome", "acked"), ("type", "reaction_added")))] == 2
    assert m[(events, (("outcome", "acked"), ("type", "reaction_removed")))] == 1
    assert m[(events, (("outcome", "rejected"), ("type", "unsigned")))] == 1
    assert m[("feedback_ack_seconds_count", ())] == 4
    assert m[("feedback_votes_total", (("status", "thumbs_up"),))] == 1
    assert m[("feedback_votes_total", (("status", "thumbs_down"),))] == 1
    assert m[("feedback_votes_withdrawn_total", ())] == 1
    assert m[("feedback_verdict_changes_total", ())] == 3
    delivered = m[
        ("feedback_deliveries_total", (("outcome", "delivered"), ("provider", "contextual")))
    ]
    assert delivered == 3 == len(h.contextual.received)  # one per change, each settled
    assert m[("feedback_provider_request_seconds_count", (("provider", "contextual"),))] == 3
    assert m[("feedback_outbox_depth", (("state", "pending"),))] == 0
    assert m[("feedback_outbox_oldest_pending_seconds", ())] == 0


async def test_retries_the_queue_and_slack_errors_show(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    h.contextual.fail(503, retry_after="60")  # the send waits a minute in the queue
    await h.slack.react(ALICE, "+1", a["ts"])

    async def queued() -> bool:
        counts = await h.store.delivery_counts()
        return counts.pending == 1 and counts.last_error is not None  # the send failed

    await wait_until(queued)
    h.slack_api.errors["chat.postMessage"] = "not_in_channel"
    r = await h.register(
        {
            "channel": CHANNEL,
            "provider": "contextual",
            "agent_id": new_uuid(),
            "message_id": new_uuid(),
            "post": {"text": "hello"},
        }
    )
    assert r.status_code == 502
    m = await scrape(h.http, h.base_url)
    retried = ("feedback_deliveries_total", (("outcome", "retried"), ("provider", "contextual")))
    assert m[retried] == 1
    assert m[("feedback_outbox_depth", (("state", "pending"),))] == 1
    assert m[("feedback_outbox_oldest_pending_seconds", ())] > 0
    slack_error = (
        "feedback_slack_api_errors_total",
        (("error", "not_in_channel"), ("method", "chat.postMessage")),
    )
    assert m[slack_error] == 1


async def test_metrics_are_off_by_default(tmp_path: Path, standins: Standins) -> None:
    bot = FeedbackBot(settings_for(tmp_path / "f.db", *standins), backoff=TEST_BACKOFF)
    await bot.start()
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{bot.port}/metrics")
        assert r.status_code == 404
    finally:
        await bot.stop(grace=1)


async def test_socket_mode_serves_metrics_and_counts_envelopes(
    tmp_path: Path, standins: Standins
) -> None:
    slack, contextual, _ = standins[:3]
    settings = settings_for(
        tmp_path / "f.db",
        *standins,
        slack_app_token=APP_TOKEN,
        slack_signing_secret=None,
        feedback_metrics=True,
    )
    bot = FeedbackBot(settings, backoff=TEST_BACKOFF, provider_timeout=PROVIDER_TIMEOUT)
    await bot.start()
    try:
        ts = new_ts()
        await bot.register_answer(
            {
                "channel": CHANNEL,
                "ts": ts,
                "provider": "contextual",
                "agent_id": new_uuid(),
                "message_id": new_uuid(),
            }
        )
        await slack.socket_send(event_envelope(reaction_event(ALICE, "+1", ts)))
        await contextual.wait_for(1)
        async with httpx.AsyncClient() as http:
            m = await scrape(http, f"http://127.0.0.1:{bot.port}")
        key = ("feedback_events_total", (("outcome", "acked"), ("type", "reaction_added")))
        assert m[key] == 1
    finally:
        await bot.stop(grace=1)
