"""`feedback-bot answers scan`: the answers of a channel rebuilt from its messages' metadata,
over a stand-in Slack with history pages, threads and a rate limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bot.answers.metadata import registration_payload
from bot.answers.register import Answers
from bot.config.channels import ChannelSettings
from storage import Store
from tests.credentials import BOT_TOKEN
from tests.dbtools import query
from tests.harness import Harness
from tests.slack_payloads import ASSISTANT_APP, ASSISTANT_BOT, CHANNEL, answer_metadata, new_uuid
from tests.standins import Standins
from tests.standins.slack import BOT_ID, SlackStandIn
from tests.test_answers_api import cli_async

HISTORY = ["channels:history", "groups:history"]
FILLER = 230  # more than one history page (200)


def env(db: Path, slack: SlackStandIn, **more: str) -> dict[str, str]:
    return {
        "FEEDBACK_DB": str(db),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "FEEDBACK_TRUSTED_APPS": ASSISTANT_APP,
        **more,
    }


def by_assistant(slack: SlackStandIn, metadata: object, **kw: object) -> str:
    return slack.add_message(
        CHANNEL, app_id=ASSISTANT_APP, bot_id=ASSISTANT_BOT, metadata=metadata, **kw
    )


async def test_scan_registers_the_trusted_answers_of_history_and_threads(
    tmp_path: Path, standins: Standins
) -> None:
    slack = standins[0]
    slack.scopes += HISTORY
    db = tmp_path / "feedback.db"
    week_ago = time.time() - 8 * 86400
    by_assistant(slack, answer_metadata(), ts=f"{week_ago:.6f}")  # older than --since
    expected: dict[str, str] = {}  # ts -> message_id
    for _ in range(3):
        metadata = answer_metadata()
        expected[by_assistant(slack, metadata)] = metadata["event_payload"]["message_id"]
    question = slack.add_message(CHANNEL, user="U0ALICE001", text="how long is the refund window?")
    reply = answer_metadata()
    expected[by_assistant(slack, reply, thread_ts=question)] = reply["event_payload"]["message_id"]
    slack.add_message(CHANNEL, user="U0ALICE001", text="thanks", thread_ts=question)
    for i in range(FILLER):
        slack.add_message(CHANNEL, user="U0BOB00001", text=f"chatter {i}")
    untrusted = slack.add_message(
        CHANNEL, app_id="A0OTHER001", bot_id="B0OTHER001", metadata=answer_metadata()
    )
    by_assistant(slack, answer_metadata(message_id="not-a-uuid"))  # invalid
    by_assistant(slack, {"event_type": "task_created", "event_payload": {"id": "TK-1"}})
    own = answer_metadata()
    own_ts = slack.add_message(CHANNEL, app_id="A0APP0001", bot_id=BOT_ID, metadata=own)
    known = answer_metadata()
    known_ts = by_assistant(slack, known)
    conflicting_ts = by_assistant(slack, answer_metadata())
    wrong = answer_metadata()
    removed_ts = by_assistant(slack, wrong)
    # Registered before the scan: one the same, one mapped to another answer, and one an
    # admin removed (the scan leaves it removed).
    store = await Store.open(db)
    answers = Answers(store, ChannelSettings(store))
    for ts, metadata in (
        (known_ts, known),
        (conflicting_ts, answer_metadata()),
        (removed_ts, wrong),
    ):
        payload = registration_payload(metadata, CHANNEL, ts, None, thread_known=True)
        await answers.register(await answers.validate(payload))
    assert await store.remove_answer(CHANNEL, removed_ts, "a wrong mapping") is not None
    await store.close()
    slack.rate_limited["conversations.history"] = 1  # the first page is refused once

    started = time.monotonic()
    code, out, err = await cli_async(
        "answers", "scan", "--channel", CHANNEL, "--since", "7d", "--json", env=env(db, slack)
    )

    assert code == 0, err
    assert "Traceback" not in err and BOT_TOKEN not in err + out
    counts = json.loads(out)
    assert counts == {
        "channel": CHANNEL,
        "messages": 3 + 3 + FILLER + 7,  # answers, a thread of three, chatter, the rest
        "found": 4 + 1 + 1 + 1 + 2 + 1,
        "registered": 4 + 1,
        "already_known": 1,
        "conflicts": 1,
        "untrusted": 1,
        "invalid": 1,
        "removed": 1,
        "untrusted_apps": ["A0OTHER001"],
    }
    assert time.monotonic() - started >= slack.retry_after  # it waited as Slack asked
    history = slack.calls_to("conversations.history")
    assert len(history) == 3  # the refused page, then two pages
    assert all(c["include_all_metadata"] in ("1", "true", True) for c in history)
    assert [c["ts"] for c in slack.calls_to("conversations.replies")] == [question]
    assert "refused the answer metadata" in err and "message_id" in err

    store = await Store.open(db)
    rows = await query(
        store,
        "SELECT ts, message_id, posted_by_bot, registered_via, registered_by_app FROM answers"
        " JOIN answer_targets ON answer_id = id"
        " WHERE registered_via = 'scan' ORDER BY ts",
    )
    assert {r[0]: r[1] for r in rows} == {**expected, own_ts: own["event_payload"]["message_id"]}
    assert {r[0] for r in rows if r[2]} == {own_ts}  # the bot's own post keeps its buttons
    assert {r[4] for r in rows if not r[2]} == {ASSISTANT_APP}
    assert untrusted not in {r[0] for r in rows}
    await store.close()


async def test_scan_says_which_scope_to_add(tmp_path: Path, standins: Standins) -> None:
    slack = standins[0]
    db = tmp_path / "feedback.db"
    slack.add_message(CHANNEL, text="hello")
    code, out, err = await cli_async("answers", "scan", "--channel", CHANNEL, env=env(db, slack))
    assert code == 1 and out == ""
    assert "missing_scope" in err and "add the channels:history scope" in err
    assert "Traceback" not in err
    private = "G0PRIVATE1"
    slack.add_message(private, text="hello")
    code, _, err = await cli_async("answers", "scan", "--channel", private, env=env(db, slack))
    assert code == 1 and "add the groups:history scope" in err
    code, _, err = await cli_async("answers", "scan", "--channel", "general", env=env(db, slack))
    assert code == 2 and "not a Slack channel id" in err
    code, _, err = await cli_async(
        "answers", "scan", "--channel", CHANNEL, "--since", "a while", env=env(db, slack)
    )
    assert code == 2 and "not an age such as 7d" in err


async def test_a_lost_database_is_rebuilt_from_the_bots_own_posts(
    harness: Harness, tmp_path: Path
) -> None:
    """The bot posted answers; its database is lost; a scan finds them all again."""
    h = harness
    h.slack_api.scopes += HISTORY
    posted = []
    for _ in range(3):
        body = {
            "channel": CHANNEL,
            "provider": "contextual",
            "agent_id": new_uuid(),
            "message_id": new_uuid(),
            "post": {"text": "An answer."},
        }
        r = await h.register(body)
        assert r.status_code == 201, r.text
        posted.append((r.json()["answer"]["ts"], body["message_id"]))
    # And one fanned out to two targets: its post carries metadata version 2.
    targets = [
        {"provider": "contextual", "agent_id": new_uuid(), "message_id": new_uuid()},
        {"provider": "langfuse", "trace_id": "trace-rebuilt-1"},
    ]
    r = await h.register({"channel": CHANNEL, "targets": targets, "post": {"text": "Both."}})
    assert r.status_code == 201, r.text
    both = r.json()["answer"]["ts"]
    posted.append((both, targets[0]["message_id"]))
    fresh = tmp_path / "rebuilt.db"
    code, out, err = await cli_async(
        "answers", "scan", "--channel", CHANNEL, env=env(fresh, h.slack_api)
    )
    assert code == 0, err
    assert "registered     4" in out
    store = await Store.open(fresh)
    rows = await query(
        store,
        "SELECT ts, message_id, posted_by_bot FROM answers JOIN answer_targets ON answer_id = id"
        " WHERE position = 0 ORDER BY ts",
    )
    rebuilt = await store.find_answer(CHANNEL, both)
    await store.close()
    assert rows == [(ts, message_id, 1) for ts, message_id in sorted(posted)]
    assert rebuilt is not None and [t.describe() for t in rebuilt.targets] == [
        f"contextual message_id={targets[0]['message_id']}",
        "langfuse trace_id=trace-rebuilt-1",
    ]
