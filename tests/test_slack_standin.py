"""The Slack stand-in itself, driven by slack_sdk as the bot drives it: the message store
behind conversations.history and conversations.replies, scopes, rate limits, the
answer-metadata check on chat.postMessage, permalinks, a channel's refusals, and the external
file upload that files_upload_v2 makes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.credentials import APP_TOKEN, BOT_TOKEN
from tests.standins.slack import APP_ID, BOT_ID, BOT_USER, SlackStandIn

CHANNEL = "C0CHAN0001"
ASSISTANT = "A0ASSIST01"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # a PNG as far as the stand-in looks


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
    # The flag as text, as clients other than slack_sdk send it.
    r = await client.conversations_replies(
        channel=CHANNEL,
        ts=ts,
        include_all_metadata="true",  # type: ignore[arg-type]
    )
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


async def test_a_permalink_names_the_channel_and_the_ts_and_a_reply_its_thread(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    parent = slack.add_message(CHANNEL, ts="1733480000.000100")
    reply = slack.add_message(CHANNEL, ts="1733480001.000200", thread_ts=parent)
    r = await client.chat_getPermalink(channel=CHANNEL, message_ts=parent)
    assert (r["channel"], r["permalink"]) == (
        CHANNEL,
        f"https://test.slack.com/archives/{CHANNEL}/p1733480000000100",
    )
    r = await client.chat_getPermalink(channel=CHANNEL, message_ts=reply)
    assert r["permalink"] == (
        f"https://test.slack.com/archives/{CHANNEL}/p1733480001000200"
        f"?thread_ts={parent}&cid={CHANNEL}"
    )
    with pytest.raises(SlackApiError) as e:
        await client.chat_getPermalink(channel=CHANNEL, message_ts="1733480002.000300")
    assert e.value.response["error"] == "message_not_found"
    # A channel the stand-in holds nothing of: tests make answers up, so it links anyway.
    r = await client.chat_getPermalink(channel="C0ELSE0001", message_ts="1733480002.000300")
    assert r["permalink"].endswith("/archives/C0ELSE0001/p1733480002000300")
    assert slack.violations == []


async def test_a_channel_error_refuses_posts_updates_and_shares_and_changes_nothing(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    ts = slack.add_message(CHANNEL, text="before")
    slack.channel_errors[CHANNEL] = "not_in_channel"
    for call in (
        client.chat_postMessage(channel=CHANNEL, text="a digest"),
        client.chat_update(channel=CHANNEL, ts=ts, text="after"),
        client.files_upload_v2(channel=CHANNEL, content=PNG_BYTES, filename="a.png"),
    ):
        with pytest.raises(SlackApiError) as e:
            await call
        assert e.value.response["error"] == "not_in_channel"
    assert [m["text"] for m in slack.messages[CHANNEL]] == ["before"]
    assert slack.shared == [] and slack.png_uploads(CHANNEL) == []
    # The refusal comes at the last step of an upload: the bytes had reached Slack already.
    assert list(slack.uploads.values()) == [PNG_BYTES]
    # Another channel is not refused.
    r = await client.chat_postMessage(channel="C0ELSE0001", text="a digest")
    assert r["ok"]
    assert slack.violations == []


async def test_files_upload_v2_announces_uploads_and_shares_a_png(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    r = await client.files_upload_v2(
        channel=CHANNEL,
        content=PNG_BYTES,
        filename="a.png",
        title="Approval per day",
        initial_comment="This week's feedback",
        thread_ts="1733480000.000100",
    )
    (file_id,) = slack.uploads
    assert r["files"] == [{"id": file_id, "title": "Approval per day"}]
    assert r["file"]["id"] == file_id  # slack_sdk's own shortcut for a single file
    assert slack.uploads[file_id] == PNG_BYTES
    assert slack.shared == [
        {
            "id": file_id,
            "title": "Approval per day",
            "channel_id": CHANNEL,
            "initial_comment": "This week's feedback",
            "thread_ts": "1733480000.000100",
            "bytes": PNG_BYTES,
        }
    ]
    assert slack.png_uploads(CHANNEL) == [PNG_BYTES]
    assert slack.png_uploads("C0ELSE0001") == []
    (announced,) = slack.calls_to("files.getUploadURLExternal")
    assert (announced["filename"], announced["length"]) == ("a.png", str(len(PNG_BYTES)))
    # No files.info afterwards, nor any other call: two API calls and the upload itself.
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert slack.violations == []


async def test_an_upload_needs_files_write(slack: SlackStandIn, client: AsyncWebClient) -> None:
    assert "files:write" in slack.scopes  # manifest.yml asks for it (the digest's chart)
    slack.scopes.remove("files:write")
    with pytest.raises(SlackApiError) as e:
        await client.files_upload_v2(channel=CHANNEL, content=PNG_BYTES, filename="a.png")
    assert (e.value.response["error"], e.value.response["needed"]) == (
        "missing_scope",
        "files:write",
    )
    assert slack.uploads == {}


async def test_what_is_wrong_with_an_upload_is_a_violation(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    # Not a PNG: shared (Slack would take it), but the digest shares only charts.
    await client.files_upload_v2(channel=CHANNEL, content=b"GIF89a", filename="a.gif")
    assert slack.violations == [
        f"files.completeUploadExternal: file {slack.shared[0]['id']} is not a PNG"
    ]
    slack.violations.clear()
    # Announced but never uploaded, and never announced at all.
    r = await client.files_getUploadURLExternal(filename="b.png", length=10)
    await client.files_completeUploadExternal(
        files=[{"id": r["file_id"], "title": "b"}, {"id": "F0NEVER001", "title": "c"}],
        channel_id=CHANNEL,
    )
    assert slack.violations == [
        f"files.completeUploadExternal: file {r['file_id']!r} is not uploaded yet",
        "files.completeUploadExternal: file 'F0NEVER001' is unknown",
    ]
    slack.violations.clear()
    # More bytes than announced; a length that is no length.
    async with aiohttp.ClientSession() as session:
        async with session.post(r["upload_url"], data=b"0123456789ab") as response:
            assert response.status == 200
    assert slack.violations == [f"upload: {r['file_id']}: 12 bytes, 10 announced"]
    slack.violations.clear()
    with pytest.raises(SlackApiError):
        await client.files_getUploadURLExternal(filename="c.png", length=0)
    assert slack.violations == ["files.getUploadURLExternal: length is not a positive integer: '0'"]
