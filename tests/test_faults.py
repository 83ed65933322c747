"""Providers that fail, Slack that repeats itself, and requests that should not be trusted."""

from __future__ import annotations

import json
import logging
import time
from email.utils import formatdate

import pytest

from bot.domain import DeliveryState
from tests.credentials import CONTEXTUAL_KEY
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.slack_payloads import event_envelope, reaction_event, sign
from tests.test_cli import cli

ALICE, BOB = "U0ALICE001", "U0BOB00001"


async def dead_rows(h: Harness) -> list:
    return await h.store.list_deliveries([DeliveryState.DEAD])


async def stored_counts(h: Harness) -> tuple[int, int, int]:
    [row] = await query(
        h.store,
        "SELECT (SELECT count(*) FROM votes), (SELECT count(*) FROM deliveries),"
        " (SELECT count(*) FROM processed_events)",
    )
    return row  # type: ignore[return-value]


async def test_503_then_recovery(harness: Harness) -> None:
    h = harness
    h.contextual.fail(503, times=3)
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    assert [s for s, _ in h.contextual.rejected] == [503, 503, 503]
    assert h.contextual.statuses() == ["thumbs_up"]
    [row] = await h.store.list_deliveries()
    assert (row.state, row.attempts) == ("delivered", 4)


async def test_429_honours_retry_after(harness: Harness) -> None:
    h = harness
    h.contextual.fail(429, retry_after="1")
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    await h.contextual.wait_for(1)
    # Measured between the two requests' arrivals, as the stand-in saw them: the time the
    # bot took to send the first one is not part of the wait. The test backoff base is
    # 0.05 s: only Retry-After explains a wait of a second (the upper bound leaves a
    # loaded machine a few seconds, and still catches a unit read wrong).
    refused, taken = h.contextual.attempts
    assert 0.95 <= taken.start - refused.start < 5.0, taken.start - refused.start
    assert h.contextual.statuses() == ["thumbs_down"]


async def test_retry_after_as_an_http_date_is_honoured(harness: Harness) -> None:
    h = harness
    # HTTP dates have whole seconds: this one is 2 to 3 s ahead, whatever the fraction now.
    when = int(time.time()) + 3
    h.contextual.fail(503, retry_after=formatdate(when, usegmt=True))
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    [received] = await h.contextual.wait_for(1)
    arrived = h.contextual.attempts[-1].start  # wall-clock time, as the date is
    # The test backoff base is 0.05 s: only the date explains waiting until then (and not
    # much longer: a few seconds' room for a loaded machine).
    assert when - 0.05 <= arrived < when + 4.0, arrived - when
    assert h.contextual.rejected == [(503, received.path)]


async def test_timeout_is_retried(harness: Harness) -> None:
    h = harness
    h.contextual.hang(1.0)  # the bot's provider timeout in tests is 0.5 s
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    [row] = await h.store.list_deliveries()
    assert row.state == "delivered"
    assert row.attempts == 2


async def test_connection_refused_then_provider_comes_back(harness: Harness) -> None:
    h = harness
    port = h.contextual.port
    await h.contextual.stop()
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])

    async def failed_twice() -> bool:
        rows = await h.store.list_deliveries()
        return bool(rows) and rows[0].attempts >= 2

    await wait_until(failed_twice)
    [row] = await h.store.list_deliveries()
    assert row.state in ("pending", "sending")
    assert "unreachable" in (row.last_error or "")
    await h.contextual.start(port)
    await h.contextual.wait_for(1)
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]


async def test_401_is_dead_with_the_error_and_retryable_by_command(harness: Harness) -> None:
    h = harness
    real_key = h.contextual.api_key
    h.contextual.api_key = "a-key-the-bot-does-not-have"
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await wait_until(lambda: _has_dead(h))
    [dead] = await dead_rows(h)
    assert dead.attempts == 1  # permanent: no retries
    assert dead.last_error is not None and "HTTP 401" in dead.last_error
    assert "invalid credentials" in dead.last_error
    health = (await h.http.get(f"{h.base_url}/healthz")).json()
    assert health["deliveries"]["dead"] == 1
    assert "HTTP 401" in health["deliveries"]["last_error"]

    h.contextual.api_key = real_key
    assert await h.store.retry_dead() == (1, 0)
    await h.contextual.wait_for(1)
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]


async def _has_dead(h: Harness) -> bool:
    return bool(await dead_rows(h))


async def test_422_is_dead_with_the_providers_explanation(harness: Harness) -> None:
    h = harness
    h.contextual.fail(422)
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await wait_until(lambda: _has_dead(h))
    [dead] = await dead_rows(h)
    assert "HTTP 422" in (dead.last_error or "")
    assert "unknown message" in (dead.last_error or "")


async def test_a_provider_error_echoing_the_key_is_stored_and_shown_redacted(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    h.contextual.fail(403, body={"detail": f"key {CONTEXTUAL_KEY} may not use this agent"})
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await wait_until(lambda: _has_dead(h))
    [dead] = await dead_rows(h)
    shown = {
        "last_error": dead.last_error or "",
        "logs": caplog.text,
        "/healthz": (await h.http.get(f"{h.base_url}/healthz")).json()["deliveries"]["last_error"],
        "/feedback deliveries": await h.feedback(ALICE, "deliveries"),
        "deliveries list": cli(h, "deliveries", "list", "--state", "dead").stdout,
    }
    for where, text in shown.items():
        assert CONTEXTUAL_KEY not in text, f"the key leaked into {where}"
        assert 'HTTP 403: {"detail": "key [redacted] may not use this agent"}' in text, where


async def test_a_newer_verdict_supersedes_a_dead_one_on_retry(harness: Harness) -> None:
    h = harness
    h.contextual.fail(404)
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await wait_until(lambda: _has_dead(h))
    await h.slack.react(BOB, "-1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    # Retrying the old thumbs_up now would land an older verdict after a newer one.
    assert await h.store.retry_dead() == (0, 1)
    await h.settled()  # had the old row been queued again, this waits for its send
    assert h.contextual.statuses() == ["thumbs_down"]


async def test_slack_sending_the_same_event_three_times_counts_once(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    envelope = event_envelope(reaction_event(ALICE, "+1", a["ts"]))
    body = json.dumps(envelope)
    for retry in (None, "1", "2"):
        headers = {"Content-Type": "application/json", **sign(body)}
        if retry:
            headers |= {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        r = await h.http.post(h.slack.url, content=body, headers=headers)
        assert r.status_code == 200
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]
    assert await stored_counts(h) == (1, 1, 1)
    # The same event again after a removal still must not re-add the vote.
    await h.slack.unreact(ALICE, "+1", a["ts"])
    await h.settled()
    r = await h.http.post(h.slack.url, content=body, headers={**sign(body)})
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up", "removed"]


async def test_bad_signatures_are_rejected_and_change_nothing(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    body = json.dumps(event_envelope(reaction_event(ALICE, "+1", a["ts"])))
    attempts = [
        sign(body, secret="not-the-signing-secret-0000000000"),
        {},  # no signature at all
        sign(body, timestamp=int(time.time()) - 600),  # replayed: too old
        {**sign(body), "X-Slack-Signature": "v0=" + "0" * 64},
    ]
    for headers in attempts:
        r = await h.http.post(
            h.slack.url, content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert r.status_code == 401, r.text
        assert r.json() == {"error": "invalid signature"}
    # Tampering with a signed body breaks the signature too.
    headers = sign(body)
    tampered = body.replace("+1", "-1")
    r = await h.http.post(h.slack.url, content=tampered, headers=headers)
    assert r.status_code == 401
    assert await stored_counts(h) == (0, 0, 0)
    # The same event signed as it should be is taken: the refused ones left nothing behind,
    # not even its event id; once it is delivered, nothing else is on its way.
    assert (await h.slack.post(body)).status_code == 200
    await h.contextual.wait_for(1)
    await h.settled()
    assert await stored_counts(h) == (1, 1, 1)
    assert h.contextual.statuses() == ["thumbs_up"]


async def test_malformed_but_signed_bodies_get_a_clear_400(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    r = await h.slack.post("{not json", content_type="application/json")
    assert r.status_code == 400
    assert "malformed body" in r.text

    no_item = event_envelope(reaction_event(ALICE, "+1", a["ts"]))
    del no_item["event"]["item"]
    r = await h.slack.post(json.dumps(no_item))
    assert r.status_code == 400
    assert "event.item: Field required" in r.text

    no_event_id = event_envelope(reaction_event(ALICE, "+1", a["ts"]))
    del no_event_id["event_id"]
    r = await h.slack.post(json.dumps(no_event_id))
    assert r.status_code == 400
    assert "event_id" in r.text

    wrong_types = event_envelope(reaction_event(ALICE, "+1", a["ts"]))
    wrong_types["event"]["user"] = {"id": ALICE}
    r = await h.slack.post(json.dumps(wrong_types))
    assert r.status_code == 400
    assert "event.user" in r.text

    assert await stored_counts(h) == (0, 0, 0)
    # A well-formed vote after them is stored and sent alone: none of the refused ones was
    # stored, or queued to be sent behind it.
    await h.slack.react(BOB, "-1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    assert await stored_counts(h) == (1, 1, 1)
    assert h.contextual.statuses() == ["thumbs_down"]


async def test_url_verification_challenge(harness: Harness) -> None:
    body = json.dumps({"token": "x", "challenge": "c4llenge", "type": "url_verification"})
    r = await harness.slack.post(body)
    assert r.status_code == 200
    assert "c4llenge" in r.text


@pytest.mark.parametrize("hold", ["503", "hang"])
async def test_newer_verdicts_supersede_queued_ones_and_never_arrive_out_of_order(
    harness: Harness, hold: str
) -> None:
    h = harness
    # Hold the first verdict back: it fails at once, or hangs while the others queue up.
    if hold == "503":
        h.contextual.fail(503, times=1)
    else:
        h.contextual.hang(1.0)
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.slack.react(BOB, "-1", a["ts"])
    await h.slack.unreact(BOB, "-1", a["ts"])
    await h.slack.react(BOB, "triangular_flag_on_post", a["ts"])
    await h.settled()
    statuses = h.contextual.statuses()
    assert statuses[-1] == "flagged"
    # Whatever was superseded, what did arrive arrived in the order the verdicts changed.
    order = iter(["thumbs_up", "thumbs_down", "thumbs_up", "flagged"])
    assert all(s in order for s in statuses), statuses  # a subsequence, in order
    states = [d.state for d in await h.store.list_deliveries()]
    assert states.count("delivered") == len(statuses)
    assert set(states) <= {"delivered", "superseded"}
