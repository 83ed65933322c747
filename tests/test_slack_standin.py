"""The Slack stand-in itself, driven by slack_sdk as the bot drives it: the message store
behind conversations.history and conversations.replies, scopes, rate limits, and the
answer-metadata check on chat.postMessage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.credentials import APP_TOKEN, BOT_TOKEN
from tests.standins.slack import APP_ID, BOT_ID, BOT_USER, SlackStandIn

CHANNEL = "C0CHAN0001"
ASSISTANT = "A0ASSIST01"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    standin = SlackStandIn(BOT_TOKEN, APP_TOKEN)
    standin.scopes.append("channels:history")
    await standin.start()
    yield standin
    await standin.stop()


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)


def answer_metadata(**payload: Any) -> dict[str, Any]:
    fields = {
        "schema_version": 1,
        "provider": "contextual",
        "agent_id": str(uuid.uuid4()),
        "message_id": str(uuid.uuid4()),
    }
    return {"event_type": "ai_answer_posted", "event_payload": fields | payload}


async def test_history_pages_through_every_message_once_newest_first(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    posted = [slack.add_message(CHANNEL, text=f"answer {i}") for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        r = await client.conversations_history(channel=CHANNEL, limit=2, cursor=cursor)
        pages += 1
        seen += [m["ts"] for m in r["messages"]]
        cursor = r["response_metadata"]["next_cursor"]
        assert r["has_more"] == bool(cursor)
        if not cursor:
            break
    assert seen == posted[::-1]
    assert pages == 3
    # The window: oldest and latest are left out unless inclusive.
    r = await client.conversations_history(channel=CHANNEL, oldest=posted[1], latest=posted[3])
    assert [m["ts"] for m in r["messages"]] == [posted[2]]
    r = await client.conversations_history(
        channel=CHANNEL, oldest=posted[1], latest=posted[3], inclusive=True
    )
    assert [m["ts"] for m in r["messages"]] == posted[3:0:-1]
    # A generated ts comes after one a test chose, however far ahead.
    slack.add_message(CHANNEL, ts="9999999999.000001")
    assert Decimal(slack.add_message(CHANNEL)) > Decimal("9999999999.000001")
    assert slack.violations == []


async def test_replies_are_the_parent_then_its_replies_oldest_first(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = slack.add_message(CHANNEL, text="a question", user="U0ALICE001")
    first = slack.add_message(CHANNEL, app_id=ASSISTANT, bot_id="B0ASSIST01", thread_ts=parent)
    r = await client.chat_postMessage(channel=CHANNEL, text="rate it", thread_ts=parent)
    second = r["ts"]
    r = await client.conversations_replies(channel=CHANNEL, ts=first)
    messages = r["messages"]
    assert [m["ts"] for m in messages] == [parent, first, second]
    assert messages[0] | {"reply_count": 2, "latest_reply": second} == messages[0]
    assert messages[1]["bot_profile"] == {
        "id": "B0ASSIST01",
        "app_id": ASSISTANT,
        "team_id": "T0TEST001",
        "deleted": False,
    }
    assert (messages[2]["app_id"], messages[2]["bot_id"], messages[2]["user"]) == (
        APP_ID,
        BOT_ID,
        BOT_USER,
    )
    assert all(m["thread_ts"] == parent for m in messages)
    # The parent is in the history; its replies are not.
    r = await client.conversations_history(channel=CHANNEL)
    assert [m["ts"] for m in r["messages"]] == [parent]
    # The window applies to the replies; the parent comes first on the first page only.
    r = await client.conversations_replies(channel=CHANNEL, ts=parent, oldest=first)
    assert [m["ts"] for m in r["messages"]] == [parent, second]
    r = await client.conversations_replies(channel=CHANNEL, ts=parent, limit=2)
    assert [m["ts"] for m in r["messages"]] == [parent, first] and r["has_more"]
    cursor = r["response_metadata"]["next_cursor"]
    r = await client.conversations_replies(channel=CHANNEL, ts=parent, limit=2, cursor=cursor)
    assert [m["ts"] for m in r["messages"]] == [second] and not r["has_more"]
    with pytest.raises(SlackApiError) as e:
        await client.conversations_replies(channel=CHANNEL, ts="1000000000.000001")
    assert e.value.response["error"] == "thread_not_found"


async def test_metadata_is_shown_only_when_asked_for(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    metadata = answer_metadata()
    ts = slack.add_message(CHANNEL, app_id=ASSISTANT, bot_id="B0ASSIST01", metadata=metadata)
    r = await client.conversations_history(channel=CHANNEL)
    assert "metadata" not in r["messages"][0]
    r = await client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert r["messages"][0]["metadata"] == metadata
    r = await client.conversations_replies(channel=CHANNEL, ts=ts, include_all_metadata="true")
    assert r["messages"][0]["metadata"] == metadata


async def test_reading_needs_the_history_scope_and_a_known_channel(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.add_message("G0GROUP001")
    with pytest.raises(SlackApiError) as e:
        await client.conversations_history(channel="G0GROUP001")
    assert e.value.response["error"] == "missing_scope"
    assert e.value.response["needed"] == "groups:history"
    assert e.value.response["provided"] == ",".join(slack.scopes)
    assert "metadata.message:read" in slack.scopes
    slack.scopes.remove("channels:history")
    with pytest.raises(SlackApiError) as e:
        await client.conversations_replies(channel=CHANNEL, ts="1000000000.000001")
    assert e.value.response["needed"] == "channels:history"
    slack.scopes.append("channels:history")
    with pytest.raises(SlackApiError) as e:
        await client.conversations_history(channel=CHANNEL)
    assert e.value.response["error"] == "channel_not_found"


async def test_a_rate_limited_call_is_retried_after_retry_after(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.add_message(CHANNEL)
    slack.rate_limited["conversations.history"] = 2
    slack.retry_after = 0
    with pytest.raises(SlackApiError) as e:
        await client.conversations_history(channel=CHANNEL)
    assert e.value.response.status_code == 429
    assert e.value.response.headers["Retry-After"] == "0"
    assert e.value.response["error"] == "ratelimited"
    patient = AsyncWebClient(
        token=BOT_TOKEN,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    r = await patient.conversations_history(channel=CHANNEL)
    assert len(r["messages"]) == 1
    assert len(slack.calls_to("conversations.history")) == 3  # refused calls count too


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (answer_metadata(), []),
        (
            answer_metadata(provider="aquilax", request_id=str(uuid.uuid4())),
            ["should not be valid"],
        ),
        (answer_metadata(request_id=str(uuid.uuid4())), ["should not be valid"]),
        (answer_metadata(colour="blue"), ["'colour' was unexpected"]),
        (answer_metadata(message_id="not-a-uuid"), ["is not a 'uuid'"]),
        ({"event_type": "ai_answer_posted"}, ["event_payload is not an object", "required"]),
        ({"event_type": "other_event", "event_payload": {"anything": 1}}, []),
        ({"event_type": 7, "event_payload": {}}, ["event_type is not a string"]),
    ],
)
async def test_posted_metadata_is_checked_against_the_schema(
    slack: SlackStandIn, client: AsyncWebClient, metadata: dict[str, Any], expected: list[str]
) -> None:
    r = await client.chat_postMessage(channel=CHANNEL, text="an answer", metadata=metadata)
    assert len(slack.violations) == len(expected), slack.violations
    for violation, words in zip(slack.violations, expected, strict=True):
        assert violation.startswith("chat.postMessage: metadata") and words in violation
    assert slack.messages[CHANNEL][0]["metadata"] == metadata
    assert r["message"]["app_id"] == APP_ID
