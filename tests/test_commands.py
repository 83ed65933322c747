"""`/feedback`: every sub-command, its mistakes, who may use it, and keys stored encrypted."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.delivery.keys import Keys
from bot.support.logs import Redactor
from storage import Store
from tests.harness import Harness, wait_until
from tests.slack_payloads import CHANNEL, new_ts, new_uuid, view_submission

ADMIN, OWNER, LISTED, ALICE = "U0ADMIN001", "U0OWNER001", "U0LISTED01", "U0ALICE001"
OTHER_CHANNEL = "C0OTHER001"
SECRET_KEY = Fernet.generate_key().decode()
NEW_CONTEXTUAL_KEY = "ctx-from-setup-Qm8Zr2Lp5Wx9Kd3T"


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_secret_key": SECRET_KEY, "feedback_admins": (LISTED,)}


@pytest.fixture(autouse=True)
def users(harness: Harness) -> None:
    harness.slack_api.add_user(ADMIN, admin=True)
    harness.slack_api.add_user(OWNER, owner=True)
    harness.slack_api.add_user(ALICE)
    harness.slack_api.add_user(LISTED)


async def audit(h: Harness) -> list[tuple[str, str, str, str | None, str | None]]:
    return [(e.user, e.scope, e.key, e.old, e.new) for e in await h.store.audit_log()]


# ------------------------------------------------------------------ reading


async def test_help_and_mistakes_are_answered_in_the_ack(harness: Harness) -> None:
    for text in ("help", ""):
        reply = await harness.feedback(ALICE, text)
        assert "/feedback status" in reply and "/feedback emoji add" in reply
    cases = {
        "frobnicate": "There is no `frobnicate` sub-command",
        "agent not-a-uuid": "`not-a-uuid` is not an agent id",
        "provider openai": "`provider` expects one of contextual, aquilax",
        "emoji add :tada: meh": "`meh` is not a status",
        "emoji add tada!! thumbs_up": "is not an emoji name",
        "emoji shuffle": "expects `add :emoji: <status>`",
        "reactions maybe": "expects one of on, off",
        "stats 0": "from 1 to 365",
        "stats lots": "from 1 to 365",
        "retry seven": "`seven` is not a delivery id",
        # Digits to str.isdigit(), but not to int() or not to SQLite.
        "retry 99999999999999999999999": "`99999999999999999999999` is not a delivery id",
        "retry 12 ²": "`²` is not a delivery id",
        "stats ²": "from 1 to 365",
        "stats 99999999999999999999999": "from 1 to 365",
        "aquilax org x": "expects `org <org> group <group>`",
        "reset everything": "expects one setting to reset",
        "status please": "takes no arguments",
    }
    for text, expected in cases.items():
        reply = await harness.feedback(ADMIN, text)
        assert expected in reply, (text, reply)
        assert "Usage: `/feedback" in reply or "/feedback help" in reply
    assert await audit(harness) == []
    assert harness.slack_api.calls_to("users.info") == []  # mistakes never reach Slack


async def test_status_shows_effective_values_their_origin_and_the_providers(
    harness: Harness,
) -> None:
    h = harness
    await h.feedback(ADMIN, "provider aquilax --workspace")
    await h.feedback(ADMIN, "reactions off")
    reply = await h.feedback(ALICE, "status")
    assert f"status for <#{CHANNEL}>" in reply
    assert "Provider for new answers: aquilax _(workspace)_" in reply
    assert "Reactions count: off _(channel)_" in reply
    assert "Contextual agent: not set _(default)_" in reply
    assert ":+1: :thumbsup: → thumbs_up" in reply
    assert f"API key set (…{h.contextual.api_key[-4:]}, from environment)" in reply
    assert "127.0.0.1 reachable" in reply
    assert "0 pending, 0 sending, 0 dead" in reply
    assert h.contextual.api_key not in reply

    await h.contextual.stop()
    reply = await h.feedback(ALICE, "status")
    assert "127.0.0.1 unreachable (ConnectionRefusedError)" in reply
    workspace = await h.feedback(ALICE, "status --workspace")
    assert "the workspace defaults" in workspace and "Reactions count: on _(default)_" in workspace


async def test_stats_counts_votes_per_status(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.slack.react(ADMIN, "-1", a["ts"])
    await h.slack.unreact(ADMIN, "-1", a["ts"])
    other = await h.contextual_answer(channel=OTHER_CHANNEL)
    await h.slack.react(ALICE, "triangular_flag_on_post", other["ts"], channel=OTHER_CHANNEL)
    reply = await h.feedback(ALICE, "stats 7")
    assert f"Votes in <#{CHANNEL}> in the last 7 days*: 2" in reply
    assert "👍 thumbs_up: *1* (1 still standing)" in reply
    assert "👎 thumbs_down: *1* (0 still standing)" in reply
    assert "🚩 flagged: *0*" in reply
    everywhere = await h.feedback(ALICE, "stats --workspace")
    assert "all channels in the last 30 days*: 3" in everywhere
    assert "No votes in" in await h.feedback(ALICE, "stats 1", channel="C0QUIET001")


# ------------------------------------------------------------------ who may change what


async def test_non_admins_are_refused_and_nothing_changes(harness: Harness) -> None:
    h = harness
    for text in (
        "provider contextual",
        "reactions off",
        "emoji add :tada: thumbs_up",
        "retry",
        "reset prompt",
        "setup",
    ):
        reply = await h.feedback(ALICE, text)
        assert "Only workspace admins and owners" in reply, text
    assert await audit(h) == []
    assert (await h.bot.services.channel_settings.for_channel(CHANNEL)).reactions is True
    assert h.slack_api.calls_to("views.open") == []
    # A users.info failure is not a reason to let someone in.
    h.slack_api.errors["users.info"] = "user_not_found"
    assert "Only workspace admins" in await h.feedback("U0GHOST001", "prompt on")


async def test_admins_owners_and_listed_users_may_change(harness: Harness) -> None:
    h = harness
    assert "now get" in await h.feedback(ADMIN, "prompt on")
    assert "no longer get" in await h.feedback(OWNER, "prompt off")
    assert "now offer" in await h.feedback(LISTED, "form on")
    assert await audit(h) == [
        (LISTED, CHANNEL, "reaction_form", None, "true"),
        (OWNER, CHANNEL, "prompt", "true", "false"),
        (ADMIN, CHANNEL, "prompt", None, "true"),
    ]
    assert h.slack_api.calls_to("users.info")  # asked Slack, after the ack
    # LISTED is in FEEDBACK_ADMINS: Slack was never asked about them.
    assert all(c["user"] != LISTED for c in h.slack_api.calls_to("users.info"))


# ------------------------------------------------------------------ configuration at work


async def test_emoji_map_changes_take_effect_on_the_next_reaction(harness: Harness) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "tada", a["ts"])
    await h.settled()
    assert h.contextual.statuses() == []
    assert "now means *thumbs_up*" in await h.feedback(ADMIN, "emoji add :tada: thumbs_up")
    await h.slack.react(ALICE, "tada", a["ts"])
    await h.contextual.wait_for(1)
    assert "no longer counts" in await h.feedback(ADMIN, "emoji remove :+1:")
    await h.slack.react(ADMIN, "+1", a["ts"])
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up"]
    listed = await h.feedback(ALICE, "emoji list")
    assert ":tada: :thumbsup: → thumbs_up" in listed and ":+1:" not in listed
    assert "is not a feedback emoji" in await h.feedback(ADMIN, "emoji remove :+1:")
    # Other channels keep the workspace map.
    assert ":+1:" in await h.feedback(ALICE, "emoji list", channel=OTHER_CHANNEL)
    [(who, scope, key, old, new), *_] = await audit(h)
    assert (who, scope, key) == (ADMIN, CHANNEL, "emoji")
    assert "+1" in json.loads(old or "{}") and "+1" not in json.loads(new or "{}")


async def test_reactions_off_ignores_new_reactions_but_lets_votes_be_taken_back(
    harness: Harness,
) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.feedback(ADMIN, "reactions off --workspace")
    await h.slack.react(ADMIN, "-1", a["ts"])
    await h.slack.unreact(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(2)
    assert h.contextual.statuses() == ["thumbs_up", "removed"]
    # A channel value beats the workspace default.
    await h.feedback(ADMIN, "reactions on")
    await h.slack.react(ADMIN, "-1", a["ts"])
    await h.contextual.wait_for(3)
    assert "back to the workspace default" in await h.feedback(ADMIN, "reset reactions")
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_up", "removed", "thumbs_down"]


async def test_defaults_fill_in_registrations(harness: Harness) -> None:
    h = harness
    agent = new_uuid()
    await h.feedback(ADMIN, f"agent {agent}")
    await h.feedback(ADMIN, "provider contextual")
    r = await h.register({"channel": CHANNEL, "ts": new_ts(), "message_id": new_uuid()})
    assert r.status_code == 201, r.text
    assert r.json()["answer"]["agent_id"] == agent
    await h.feedback(ADMIN, "aquilax org 65dd3e835a669e3347654200 group grp-1 --workspace")
    await h.feedback(ADMIN, "provider aquilax --workspace")
    body = {"channel": OTHER_CHANNEL, "ts": new_ts(), "request_id": new_uuid()}
    r = await h.register(body)
    assert r.status_code == 201, r.text
    assert (r.json()["answer"]["org"], r.json()["answer"]["group"]) == (
        "65dd3e835a669e3347654200",
        "grp-1",
    )
    # Without defaults, the field is still required.
    r = await h.register(
        {
            "channel": "C0BARE0001",
            "ts": new_ts(),
            "provider": "contextual",
            "message_id": new_uuid(),
        }
    )
    assert r.status_code == 422 and "agent_id" in r.text


async def test_deliveries_and_retry(harness: Harness) -> None:
    h = harness
    real = h.contextual.api_key
    h.contextual.api_key = "not-the-bots-key-0000"
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])

    async def dead() -> bool:
        return (await h.store.delivery_counts()).dead == 1

    await wait_until(dead)
    listing = await h.feedback(ALICE, "deliveries")
    assert "0 pending, 1 dead" in listing and "HTTP 401" in listing and a["ts"] in listing
    assert "Only workspace admins" in await h.feedback(ALICE, "retry")
    h.contextual.api_key = real
    assert "Requeued 1 dead delivery." in await h.feedback(ADMIN, "retry")
    await h.contextual.wait_for(1)
    assert "Nothing requeued: no dead delivery 12345" in await h.feedback(ADMIN, "retry 12345")


# ------------------------------------------------------------------ setup and keys


async def test_setup_stores_keys_encrypted_and_never_shows_them(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    caplog.set_level(logging.DEBUG)
    assert await h.feedback(ADMIN, "setup") == ""
    [opened] = await h.slack_api.wait_for("views.open")
    view = opened["view"]
    assert view["callback_id"] == "fb_setup"
    assert f"…{h.contextual.api_key[-4:]}, from environment" in json.dumps(view, ensure_ascii=False)

    bad = view_submission(ADMIN, view, category=None, explanation=None)
    bad["view"]["state"]["values"] = {
        "contextual_key": {"contextual_key": {"type": "plain_text_input", "value": "has space"}}
    }
    r = await h.slack.interaction(bad)
    assert r.json()["response_action"] == "errors"

    submit = view_submission(ADMIN, view, category=None, explanation=None)
    submit["view"]["state"]["values"] = {
        "contextual_key": {
            "contextual_key": {"type": "plain_text_input", "value": NEW_CONTEXTUAL_KEY}
        },
        "aquilax_key": {"aquilax_key": {"type": "plain_text_input", "value": None}},
    }
    r = await h.slack.interaction(submit)
    assert r.status_code == 200 and r.text == ""
    [saved] = await h.slack_api.wait_for("chat.postEphemeral")
    assert f"(…{NEW_CONTEXTUAL_KEY[-4:]})" in saved["text"]

    # The provider now gets the key from setup, not the environment's.
    h.contextual.api_key = NEW_CONTEXTUAL_KEY
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    status = await h.feedback(ALICE, "status")
    assert f"API key set (…{NEW_CONTEXTUAL_KEY[-4:]}, from setup)" in status
    entries = await audit(h)
    assert entries[0][2:] == ("contextual_api_key", None, f"set (…{NEW_CONTEXTUAL_KEY[-4:]})")

    # Encrypted at rest, and it round-trips after a restart.
    database = b"".join(p.read_bytes() for p in Path(h.store.path).parent.glob("feedback.db*"))
    assert NEW_CONTEXTUAL_KEY.encode() not in database
    other = await Store.open(h.store.path)
    try:
        keys = Keys(other, h.bot.settings, Redactor())
        await keys.load()
        assert keys.get("contextual") == NEW_CONTEXTUAL_KEY
        assert keys.get("aquilax") == h.aquilax.api_key  # untouched: the environment's
    finally:
        await other.close()

    # …and never shown: not in logs, not in any Slack message or reply.
    assert NEW_CONTEXTUAL_KEY not in caplog.text
    sent = json.dumps([c.args for c in h.slack_api.calls]) + json.dumps(h.slack_api.responses)
    assert NEW_CONTEXTUAL_KEY not in sent

    assert "Forgot the contextual key" in await h.feedback(ADMIN, "reset contextual-key")
    assert "from environment" in await h.feedback(ALICE, "status")


async def test_setup_submitted_by_a_non_admin_stores_nothing(harness: Harness) -> None:
    h = harness
    await h.feedback(ADMIN, "setup")
    [opened] = await h.slack_api.wait_for("views.open")
    forged = view_submission(ALICE, opened["view"], category=None, explanation=None)
    forged["view"]["state"]["values"] = {
        "contextual_key": {
            "contextual_key": {"type": "plain_text_input", "value": NEW_CONTEXTUAL_KEY}
        }
    }
    assert (await h.slack.interaction(forged)).status_code == 200
    [refused] = await h.slack_api.wait_for("chat.postEphemeral")
    assert "Only workspace admins" in refused["text"]
    assert await h.store.provider_keys() == {}


class TestWithoutSecretKey:
    @pytest.fixture
    def bot_overrides(self) -> dict[str, Any]:
        return {"feedback_admins": (LISTED,)}

    async def test_setup_explains_keys_must_come_from_the_environment(
        self, harness: Harness
    ) -> None:
        reply = await harness.feedback(LISTED, "setup")
        assert "FEEDBACK_SECRET_KEY" in reply and "CONTEXTUAL_API_KEY" in reply
        assert harness.slack_api.calls_to("views.open") == []


# ------------------------------------------------------------------ App Home


async def test_app_home_for_admins_and_for_everyone_else(harness: Harness) -> None:
    h = harness
    for user in (ADMIN, ALICE):
        r = await h.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": "home"}
        )
        assert r.status_code == 200
    published = await h.slack_api.wait_for("views.publish", 2)
    by_user = {p["user_id"]: json.dumps(p["view"], ensure_ascii=False) for p in published}
    assert "status for the workspace defaults" in by_user[ADMIN]
    assert "Last 7 days: 0 answers voted on" in by_user[ADMIN]
    assert "Last 30 days" in by_user[ADMIN]
    assert "You have not voted on an answer yet" in by_user[ALICE]
    assert "React to an AI answer" in by_user[ALICE]
    assert "status for" not in by_user[ALICE]
    assert h.contextual.api_key not in by_user[ADMIN]
