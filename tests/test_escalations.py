"""👎 and 🚩 brought to people: `/feedback escalate`, the one message per answer in the triage
channel (posted through the outbox, updated by later votes and explanations), and its
"Resolved" button. Signed Slack requests in, the Slack stand-in recording every call."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.escalation.message import EVENT_TYPE, RESOLVE
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, block_actions, new_ts, view_submission

ADMIN, ALICE, BOB, CAROL = "U0ADMIN001", "U0ALICE001", "U0BOB00001", "U0CAROL001"
TRIAGE = "C0TRIAGE01"
ANSWER_TEXT = (
    "The refund window is 30 days.\nAsk finance for anything longer.\nThird line.\nFourth."
)


@pytest.fixture(autouse=True)
def users(harness: Harness) -> None:
    harness.slack_api.add_user(ADMIN, admin=True)
    for user in (ALICE, BOB, CAROL):
        harness.slack_api.add_user(user)
    # What manifest.yml grants beyond the doctor's must-haves: the answer's first lines.
    harness.slack_api.scopes.append("channels:history")


async def escalate_to_triage(h: Harness, extra: str = "") -> None:
    reply = await h.feedback(ADMIN, f"escalate <#{TRIAGE}|triage>{extra}")
    assert f"escalated to <#{TRIAGE}>" in reply, reply


async def answer_in_channel(h: Harness) -> dict[str, Any]:
    ts = h.slack_api.add_message(CHANNEL, text=ANSWER_TEXT)
    return await h.contextual_answer(ts=ts)


def triage_posts(h: Harness) -> list[dict[str, Any]]:
    """The escalations posted in the triage channel (not the bot's note that it was chosen)."""
    return [
        c
        for c in h.slack_api.calls_to("chat.postMessage")
        if (c.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


def text_of(call: dict[str, Any]) -> str:
    return "\n".join(
        str(b.get("text", {}).get("text", ""))
        + " ".join(str(e.get("text", "")) for e in b.get("elements", []) if isinstance(e, dict))
        for b in call["blocks"]
    )


def posted(h: Harness) -> list[dict[str, Any]]:
    """The escalation messages the triage channel holds."""
    return [
        m
        for m in h.slack_api.messages.get(TRIAGE, [])
        if (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


def updated(h: Harness) -> str:
    """What the newest chat.update said ("" before any)."""
    updates = h.slack_api.calls_to("chat.update")
    return text_of(updates[-1]) if updates else ""


async def until(condition: Callable[[], bool]) -> None:
    async def holds() -> bool:
        return condition()

    await wait_until(holds)


async def test_a_thumbs_down_is_escalated_once_and_later_votes_update_it(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h)
    [note] = h.slack_api.calls_to("chat.postMessage")
    assert note["channel"] == TRIAGE and "chose this channel" in note["text"]
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await until(lambda: len(triage_posts(h)) == 1)
    [post] = triage_posts(h)
    shown = text_of(post)
    assert post["channel"] == TRIAGE
    permalink = f"https://test.slack.com/archives/{CHANNEL}/p{a['ts'].replace('.', '')}"
    assert f"<{permalink}|an answer>" in shown
    assert f"<#{CHANNEL}>" in shown
    assert "> The refund window is 30 days." in shown and "Fourth" not in shown  # first lines
    assert "👎 1" in shown and f"<@{ALICE}>" in shown
    assert f"message_id={a['message_id']}" in shown  # to look it up at the provider
    assert post["metadata"]["event_type"] == EVENT_TYPE
    assert post["metadata"]["event_payload"] == {"channel": CHANNEL, "ts": a["ts"]}
    await h.settled()
    # A second 👎 and a 👍 update the same message; nothing new is posted.
    await h.slack.react(BOB, "-1", a["ts"])
    await h.slack.react(CAROL, "+1", a["ts"])
    await until(lambda: "👍 1" in updated(h))
    await h.settled()
    last = h.slack_api.calls_to("chat.update")[-1]
    assert (last["channel"], last["ts"]) == (TRIAGE, h.slack_api.messages[TRIAGE][-1]["ts"])
    assert "👎 2" in text_of(last) and f"<@{BOB}>" in text_of(last)
    assert len(triage_posts(h)) == 1
    # The provider got its verdicts as ever: the escalation is beside them, not instead.
    assert h.contextual.statuses()[-1] == "thumbs_up"


async def test_the_form_explanation_shows_on_the_escalation(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h)
    r = await h.register(
        {
            "channel": CHANNEL,
            "provider": "contextual",
            "agent_id": "1f0e0e3a-0c1b-4a57-9d2e-3c4b5a697887",
            "message_id": "2f0e0e3a-0c1b-4a57-9d2e-3c4b5a697887",
            "post": {"text": ANSWER_TEXT},
        }
    )
    assert r.status_code == 201, r.text
    ts = r.json()["answer"]["ts"]
    await h.slack.interaction(block_actions(ALICE, ts, "fb_answer_flag", "flagged", kind="button"))
    [opened] = await h.slack_api.wait_for("views.open")
    await until(lambda: len(triage_posts(h)) == 1)
    await h.settled()
    submission = view_submission(
        ALICE, opened["view"], category="outdated", explanation="The policy changed in May."
    )
    assert (await h.slack.interaction(submission)).status_code == 200

    def explained() -> bool:
        updates = h.slack_api.calls_to("chat.update")
        return bool(updates) and "The policy changed in May." in text_of(updates[-1])

    await until(explained)
    shown = updated(h)
    assert "🚩" in shown and "_outdated_" in shown
    assert len(triage_posts(h)) == 1


async def test_a_thumbs_up_is_no_escalation_and_other_channels_are_not_escalated(
    harness: Harness,
) -> None:
    h = harness
    await escalate_to_triage(h)
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "+1", a["ts"])
    elsewhere = await h.contextual_answer(channel="C0ELSEWHERE")
    await h.slack.react(ALICE, "-1", elsewhere["ts"], channel="C0ELSEWHERE")
    await h.contextual.wait_for(2)
    await h.settled()
    assert triage_posts(h) == []


async def test_anonymous_escalations_name_nobody(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h, " --anonymous")
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await until(lambda: len(triage_posts(h)) == 1)
    assert ALICE not in str(triage_posts(h)[0]["blocks"])


async def test_resolved_records_who_and_when_and_updates_the_message(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h)
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await until(lambda: len(triage_posts(h)) == 1)
    await h.settled()
    [post] = triage_posts(h)
    assert RESOLVE in str(post["blocks"])
    message_ts = h.slack_api.messages[TRIAGE][-1]["ts"]
    value = f"{CHANNEL} {a['ts']}"
    # A click on some other message naming the answer resolves nothing.
    forged = block_actions(BOB, new_ts(), RESOLVE, value, channel=TRIAGE, kind="button")
    assert (await h.slack.interaction(forged)).status_code == 200
    click = block_actions(BOB, message_ts, RESOLVE, value, channel=TRIAGE, kind="button")
    assert (await h.slack.interaction(click)).status_code == 200
    replies = await h.slack_api.wait_for("chat.postEphemeral", 2)
    assert "no such escalation" in replies[0]["text"] and "Marked resolved" in replies[1]["text"]
    await until(lambda: "Resolved by" in updated(h))
    shown = updated(h)
    assert f"Resolved by <@{BOB}>" in shown and RESOLVE not in str(
        h.slack_api.calls_to("chat.update")[-1]["blocks"]
    )
    answer = await h.store.find_answer(CHANNEL, a["ts"])
    assert answer is not None
    state = await h.store.escalation_of(answer.id)
    assert state is not None and state.resolved_by == BOB and state.resolved_at is not None
    # Clicked again: already resolved.
    await h.slack.interaction(click)
    replies = await h.slack_api.wait_for("chat.postEphemeral", 3)
    assert "already" in replies[2]["text"]
    # A new 👎 opens it again.
    await h.slack.react(CAROL, "-1", a["ts"])
    await until(
        lambda: RESOLVE in str((h.slack_api.calls_to("chat.update") or [{}])[-1].get("blocks"))
    )
    state = await h.store.escalation_of(answer.id)
    assert state is not None and state.resolved_at is None


async def test_only_admins_choose_the_triage_channel_and_bad_channels_change_nothing(
    harness: Harness,
) -> None:
    h = harness
    reply = await h.feedback(ALICE, f"escalate <#{TRIAGE}|triage>")
    assert "Only workspace admins" in reply
    reply = await h.feedback(ADMIN, "escalate #triage")
    assert "pick the channel from Slack's list" in reply and "Usage:" in reply
    reply = await h.feedback(ADMIN, "escalate triage please")
    assert "expects one channel" in reply
    h.slack_api.channel_errors["C0NOTIN001"] = "not_in_channel"
    reply = await h.feedback(ADMIN, "escalate <#C0NOTIN001|secret>")
    assert "Nothing changed" in reply and "/invite @feedback-bot" in reply
    h.slack_api.channel_errors["C0GONE0001"] = "channel_not_found"
    reply = await h.feedback(ADMIN, "escalate C0GONE0001")
    assert "Nothing changed" in reply and "channel_not_found" in reply
    status = await h.feedback(ADMIN, "status")
    assert "Escalations of 👎 and 🚩: off" in status
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    assert triage_posts(h) == []
    audit = await h.store.audit_log()
    assert not [e for e in audit if e.key == "escalate"]


async def test_status_shows_it_and_off_stops_it(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h)
    status = await h.feedback(ADMIN, "status")
    assert f"Escalations of 👎 and 🚩: to <#{TRIAGE}> (voters named) _(channel)_" in status
    assert "no longer escalated" in await h.feedback(ADMIN, "escalate off")
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    assert triage_posts(h) == []
    assert [e.key for e in await h.store.audit_log()][:2] == ["escalate", "escalate"]


async def test_a_slack_failure_is_retried_and_shows_in_deliveries(harness: Harness) -> None:
    h = harness
    await escalate_to_triage(h)
    h.slack_api.rate_limited["chat.postMessage"] = 2
    h.slack_api.retry_after = 0
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    await until(lambda: len(posted(h)) == 1)
    await h.settled()
    assert len(triage_posts(h)) == 3  # refused twice, then posted: one message
    assert len(posted(h)) == 1
    # The triage channel goes away: the escalation's update is dead, with what to do.
    h.slack_api.channel_errors[TRIAGE] = "channel_not_found"
    await h.slack.react(BOB, "-1", a["ts"])
    await h.settled()
    deliveries = await h.feedback(ADMIN, "deliveries")
    assert "slack escalation" in deliveries and "channel_not_found" in deliveries, deliveries


async def test_the_app_home_shows_admins_insights_and_everyone_their_votes(
    harness: Harness,
) -> None:
    h = harness
    await escalate_to_triage(h)
    a = await answer_in_channel(h)
    await h.slack.react(ALICE, "-1", a["ts"])
    b = await answer_in_channel(h)
    await h.slack.react(ALICE, "+1", b["ts"])
    await h.settled()
    for user in (ADMIN, ALICE):
        r = await h.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": "home"}
        )
        assert r.status_code == 200
    published = await h.slack_api.wait_for("views.publish", 2)
    by_user = {p["user_id"]: json.dumps(p["view"], ensure_ascii=False) for p in published}
    admin = by_user[ADMIN]
    assert "Last 7 days: 2 answers voted on, 2 votes, approval *50%*" in admin, admin
    assert "1 open escalations" in admin
    assert "Latest 👎 and 🚩" in admin and f"by <@{ALICE}>" in admin
    assert f"/archives/{CHANNEL}/p{a['ts'].replace('.', '')}" in admin
    assert "Your votes standing on AI answers: *2*" in by_user[ALICE]
    assert "Insights" not in by_user[ALICE]
