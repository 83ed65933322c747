"""The HTTP door's limits: stale or absurd signatures, forms with too many fields, bodies
over the size limit, and clients that send slowly or go away mid-request. Each is a clear
4xx (or a closed connection), never a 500, a traceback or a connection held open."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from urllib.parse import urlencode

import pytest

from bot.slack.inbound import MAX_AGE, MAX_FIELDS
from bot.web.request import BODY_WITHIN, MAX_BODY
from bot.web.server import HEADERS_WITHIN, LINGER
from tests.credentials import API_TOKEN, SIGNING_SECRET
from tests.harness import Harness, wait_until
from tests.slack_payloads import (
    event_envelope,
    new_ts,
    new_uuid,
    reaction_event,
    sign,
    slash_command,
)

# Nothing here reaches the database beyond what every other test does: SQLite is enough.
pytestmark = pytest.mark.sqlite_only

# What a busy machine may add to a bound before the test calls it broken.
MARGIN = 4.0


def reaction_body() -> str:
    return json.dumps(event_envelope(reaction_event("U0ALICE001", "+1", new_ts())))


async def test_a_signed_request_stamped_ten_minutes_ahead_is_refused(harness: Harness) -> None:
    body = reaction_body()
    ahead = int(time.time()) + 600
    assert 600 > MAX_AGE
    r = await harness.slack.post(body, signed=False, headers=sign(body, timestamp=ahead))
    assert r.status_code == 401, r.text
    # The same request stamped now is taken: only the time was wrong.
    assert (await harness.slack.post(body)).status_code == 200


async def test_a_five_thousand_digit_timestamp_is_refused_not_a_500(harness: Harness) -> None:
    body = reaction_body()
    stamp = "1" + "0" * 4999  # more digits than Python turns into an int by default
    signature = hmac.new(
        SIGNING_SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256
    ).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={signature}"}
    r = await harness.slack.post(body, signed=False, headers=headers)
    assert r.status_code == 401, r.text


def command_with(fields: int) -> str:
    form = slash_command("U0ALICE001", "help", response_url="https://hooks.example/r")
    form |= {f"x{i}": "1" for i in range(fields - len(form))}
    assert len(form) == fields
    return urlencode(form)


async def test_a_form_with_more_fields_than_the_limit_is_a_400(harness: Harness) -> None:
    form = "application/x-www-form-urlencoded"
    at_limit = await harness.slack.post(command_with(MAX_FIELDS), content_type=form)
    assert at_limit.status_code == 200, at_limit.text
    over = await harness.slack.post(command_with(MAX_FIELDS + 1), content_type=form)
    assert over.status_code == 400, over.text
    assert f"more than {MAX_FIELDS} fields" in over.json()["error"]


def padded(body: str, size: int) -> bytes:
    """`body` (JSON) with spaces after it, `size` bytes in all."""
    raw = body.encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_a_slack_body_one_byte_over_the_limit_is_a_413(harness: Harness) -> None:
    h = harness
    for size, expected in ((MAX_BODY, 200), (MAX_BODY + 1, 413)):
        raw = padded(reaction_body(), size)
        headers = {"Content-Type": "application/json", **sign(raw.decode())}
        r = await h.http.post(h.slack.url, content=raw, headers=headers)
        assert r.status_code == expected, (size, r.text)
    assert r.json() == {"error": f"the body is larger than {MAX_BODY} bytes"}


async def test_an_answers_body_one_byte_over_the_limit_is_a_413(harness: Harness) -> None:
    h = harness
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    for size, expected in ((MAX_BODY, 201), (MAX_BODY + 1, 413)):
        answer = {
            "channel": "C0FEEDBK01",
            "ts": new_ts(),
            "provider": "contextual",
            "agent_id": new_uuid(),
            "message_id": new_uuid(),
        }
        raw = padded(json.dumps(answer), size)
        r = await h.http.post(f"{h.base_url}/v1/answers", content=raw, headers=headers)
        assert r.status_code == expected, (size, r.text)
    assert r.json() == {"error": f"the body is larger than {MAX_BODY} bytes"}
    listed = await h.http.get(f"{h.base_url}/v1/answers", headers=headers)
    assert len(listed.json()["answers"]) == 1  # the one at the limit; nothing of the other


# ------------------------------------------------------------------ slow and vanishing clients


async def closed_within(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drip: bytes, limit: float
) -> tuple[float, bytes]:
    """Send `drip` a byte at a time, a fifth of a second apart, until the bot closes the
    connection; how long that took, and what it answered. Fails if it is still open
    after `limit` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    answered = b""
    sent = 0
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                chunk = None
            except ConnectionError:
                break
            if chunk == b"":
                break
            if chunk:
                answered += chunk
                continue
            try:
                writer.write(drip[sent % len(drip) :][:1])
                await writer.drain()
            except ConnectionError:
                break
            sent += 1
    return loop.time() - started, answered


async def test_headers_sent_a_byte_at_a_time_are_cut_off(harness: Harness) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.bot.port)
    try:
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n")
        took, _ = await closed_within(reader, writer, b"X-Slow: yes\r\n", HEADERS_WITHIN + 20)
    finally:
        writer.close()
    assert took < HEADERS_WITHIN + MARGIN


@pytest.mark.parametrize("path", ["/slack/events", "/v1/answers"])
async def test_a_body_sent_a_byte_at_a_time_is_a_408(harness: Harness, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", harness.bot.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {API_TOKEN}\r\nContent-Length: 100000\r\n\r\n".encode()
        )
        took, answered = await closed_within(reader, writer, b" ", BODY_WITHIN + 20)
    finally:
        writer.close()
    assert answered.startswith(b"HTTP/1.1 408"), answered
    assert b"the body did not arrive within" in answered
    assert took < BODY_WITHIN + LINGER + MARGIN


@pytest.mark.parametrize("path", ["/slack/events", "/v1/answers"])
async def test_a_client_that_goes_away_mid_body_is_one_debug_line(
    harness: Harness, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.web.request")
    _, writer = await asyncio.open_connection("127.0.0.1", harness.bot.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {API_TOKEN}\r\nContent-Length: 1000\r\n\r\n"
        '{"channel": '.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    async def noticed() -> bool:
        return any(
            "went away" in r.getMessage() or r.levelno >= logging.ERROR for r in caplog.records
        )

    await wait_until(noticed)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [r for r in caplog.records if r.exc_info] == []
    [line] = [r for r in caplog.records if "went away" in r.getMessage()]
    assert line.levelno == logging.DEBUG and path in line.getMessage()
