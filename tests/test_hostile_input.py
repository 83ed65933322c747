"""Hostile and foreign input at both doors: unsigned garbage, signed but malformed bodies,
requests for another workspace.

Every case checks the status, the reason (for a 400), that nothing was stored and that the
logs hold no traceback and no secret.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.app import FeedbackBot
from bot.slack.blocks import ANSWER_VOTE, OPEN_FORM
from bot.slack.views import FORM_CALLBACK, SETUP_CALLBACK
from tests.credentials import API_TOKEN, SECRETS, SIGNING_SECRET
from tests.dbtools import query
from tests.harness import Harness, wait_until
from tests.slack_payloads import (
    CHANNEL,
    block_actions,
    event_envelope,
    new_ts,
    new_uuid,
    reaction_event,
    sign,
    slash_command,
    view_submission,
)
from tests.standins import Standins
from tests.standins.slack import TEAM
from tests.test_faults import stored_counts

ALICE = "U0ALICE001"
OTHER_TEAM = "T0OTHER001"
OTHER_USER = "U0OTHER001"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_clean(logs: pytest.LogCaptureFixture, *responses: httpx.Response) -> None:
    """No traceback and no secret, in the logs or in what we answered."""
    with_traceback = [r.getMessage() for r in logs.records if r.exc_info or r.stack_info]
    assert with_traceback == []
    assert "Traceback" not in logs.text
    texts = [logs.text, *(r.text for r in responses)]
    assert not [s for s in SECRETS for text in texts if s in text]


def sign_bytes(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature over raw bytes. SignatureVerifier signs text, so it cannot sign
    a body that is not UTF-8; for text the two agree (checked below)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def test_sign_bytes_signs_as_slack_does() -> None:
    body = json.dumps({"type": "event_callback", "text": "héllo"})
    now = int(time.time())
    assert sign_bytes(body.encode(), now) == sign(body, timestamp=now)


async def post_raw(
    h: Harness, body: bytes, headers: dict[str, str] | list[tuple[bytes, bytes]]
) -> httpx.Response:
    return await h.http.post(h.slack.url, content=body, headers=headers)


def reaction_body(ts: str, **changes: Any) -> dict[str, Any]:
    return {**event_envelope(reaction_event(ALICE, "+1", ts)), **changes}


# ------------------------------------------------------------------ unauthenticated: 401

NOW = str(int(time.time()))


def _unsigned_cases() -> dict[str, tuple[bytes, list[tuple[bytes, bytes]]]]:
    body = json.dumps(reaction_body("1700000000.000100")).encode()
    signed = sign(body.decode())
    real_signature = signed["X-Slack-Signature"].encode()
    json_type = (b"Content-Type", JSON.encode())
    return {
        "a body that is not UTF-8": (
            b'{"type": "event_callback", "x": "\xff\xfe"}',
            [
                json_type,
                (b"X-Slack-Request-Timestamp", NOW.encode()),
                (b"X-Slack-Signature", b"v0=0"),
            ],
        ),
        "charset=bogus": (body, [(b"Content-Type", b"application/json; charset=bogus")]),
        "X-Slack-Request-Timestamp: abc": (
            body,
            [
                json_type,
                (b"X-Slack-Request-Timestamp", b"abc"),
                (b"X-Slack-Signature", real_signature),
            ],
        ),
        "a timestamp that is not UTF-8": (
            body,
            [
                json_type,
                (b"X-Slack-Request-Timestamp", b"17\xff"),
                (b"X-Slack-Signature", real_signature),
            ],
        ),
        "a signature that is not ASCII": (
            body,
            [
                json_type,
                (b"X-Slack-Request-Timestamp", signed["X-Slack-Request-Timestamp"].encode()),
                (b"X-Slack-Signature", "v0=é".encode()),
            ],
        ),
    }


@pytest.mark.parametrize("case", list(_unsigned_cases()))
async def test_unsigned_garbage_is_401_and_changes_nothing(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    body, headers = _unsigned_cases()[case]
    r = await post_raw(h, body, headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"error": "invalid signature"}
    assert await stored_counts(h) == (0, 0, 0)
    assert_clean(logs, r)


# ------------------------------------------------------------------ signed but malformed: 400


def _deeply_nested(levels: int, key: str) -> str:
    return f'{{"{key}": ' * levels + '"x"' + "}" * levels


MALFORMED_JSON: dict[str, tuple[str, str]] = {
    "a JSON array": ("[1, 2]", "the body should be a JSON object, not an array"),
    "a JSON string": ('"event_callback"', "the body should be a JSON object, not a string"),
    "JSON null": ("null", "the body should be a JSON object, not null"),
    "JSON nested 100k deep": (
        '{"type": "event_callback", "event": ' + _deeply_nested(100_000, "x") + "}",
        "nested more than 64 levels deep",
    ),
    # Deep enough to exhaust the stack in Bolt's recursive extract_user_id, shallow
    # enough for orjson.
    "message.message… 900 deep": (
        '{"type": "event_callback", "message": ' + _deeply_nested(900, "message") + "}",
        "nested more than 64 levels deep",
    ),
    "not JSON": ("{not json", "the body is not valid JSON"),
    "an empty body": ("", "the body is empty"),
}


@pytest.mark.parametrize("case", list(MALFORMED_JSON))
async def test_malformed_signed_json_is_400_with_the_reason(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    await h.contextual_answer()
    body, reason = MALFORMED_JSON[case]
    r = await h.slack.post(body)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("malformed body: ")
    assert reason in r.json()["error"]
    assert await stored_counts(h) == (0, 0, 0)
    assert_clean(logs, r)


async def test_a_signed_body_that_is_not_utf8_is_400(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    a = await h.contextual_answer()
    body = json.dumps(reaction_body(a["ts"])).encode().replace(b"+1", b"+1\xff")
    r = await post_raw(h, body, {"Content-Type": JSON, **sign_bytes(body)})
    assert r.status_code == 400, r.text
    assert "the body is not UTF-8" in r.json()["error"]
    assert await stored_counts(h) == (0, 0, 0)
    assert_clean(logs, r)


def _envelope_cases(ts: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Signed JSON bodies with one field of the wrong type, and the reason expected."""
    event = reaction_event(ALICE, "+1", ts)
    return {
        "event.user as a number": (
            reaction_body(ts, event={**event, "user": 12345}),
            "event.user: should be a string (an id) or an object",
        ),
        "event.item.channel as a number": (
            reaction_body(ts, event={**event, "item": {**event["item"], "channel": 7}}),
            "event.item.channel: should be a string (an id) or an object",
        ),
        "event as null": (reaction_body(ts, event=None), "event: should be an object"),
        "event as a string": (reaction_body(ts, event="reaction_added"), "event: should be"),
        "event without a type": (
            reaction_body(ts, event={k: v for k, v in event.items() if k != "type"}),
            "event.type: Field required",
        ),
        "authorizations of strings": (
            reaction_body(ts, authorizations=[TEAM]),
            "authorizations.0: should be an object",
        ),
        "team as a number": (reaction_body(ts, team=1), "team: should be a string"),
        "enterprise as a list": (reaction_body(ts, enterprise=["E1"]), "enterprise: should be"),
    }


@pytest.mark.parametrize("case", list(_envelope_cases("1")))
async def test_wrongly_typed_envelope_fields_are_400_with_the_field(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    a = await h.contextual_answer()
    body, reason = _envelope_cases(a["ts"])[case]
    r = await h.slack.post(json.dumps(body))
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]
    assert await stored_counts(h) == (0, 0, 0)
    assert h.contextual.received == []
    assert_clean(logs, r)


def _interaction_cases(ts: str) -> dict[str, tuple[str, str]]:
    """Signed form bodies (interactivity and slash commands) and the reason expected."""
    no_view_type = view_submission(
        ALICE,
        {"callback_id": FORM_CALLBACK, "private_metadata": json.dumps({"vote": 1})},
        category="inaccurate",
        explanation="wrong",
    )
    del no_view_type["view"]["type"]
    no_actions = block_actions(ALICE, ts, ANSWER_VOTE, "thumbs_up")
    no_actions["actions"] = []
    numeric_action = block_actions(ALICE, ts, ANSWER_VOTE, "thumbs_up")
    numeric_action["actions"][0]["action_id"] = 42
    null_urls = view_submission(ALICE, {"callback_id": "x"}, category=None, explanation=None)
    null_urls["response_urls"] = None

    def form(payload: dict[str, Any]) -> str:
        return urlencode({"payload": json.dumps(payload)})

    return {
        "a view_submission without view.type": (form(no_view_type), "view.type: Field required"),
        "block_actions without actions": (form(no_actions), "actions: should be an array"),
        "an action_id that is a number": (form(numeric_action), "actions.0.action_id"),
        "response_urls as null": (form(null_urls), "response_urls: should be an array"),
        "a payload that is not JSON": (
            urlencode({"payload": "{not json"}),
            "the payload field is not valid JSON",
        ),
        "a payload that is a JSON array": (
            urlencode({"payload": "[]"}),
            "the payload field should be a JSON object, not an array",
        ),
        "a form that is not UTF-8": ("payload=%FF%FE", "the form is not UTF-8"),
        "a slash command with event=…": (
            urlencode({**slash_command(ALICE, "help", response_url="https://x"), "event": "x"}),
            "event: should be an object",
        ),
    }


@pytest.mark.parametrize("case", list(_interaction_cases("1")))
async def test_malformed_signed_forms_are_400_with_the_reason(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    a = await h.contextual_answer()
    body, reason = _interaction_cases(a["ts"])[case]
    r = await h.slack.post(body, content_type=FORM)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"]
    assert await stored_counts(h) == (0, 0, 0)
    assert h.slack_api.calls_to("chat.postEphemeral") == []
    assert_clean(logs, r)


# Every field Bolt's own code reads before a listener runs (slack_bolt/request/internals.py
# extract_*, the ignoring-self-events and url_verification middleware, the listener
# matchers, the "unhandled request" warning), found by sending each field with each wrong
# type: none of them may make a 500 or a traceback.
BOLT_READS = [
    "type",
    "team",
    "team_id",
    "enterprise",
    "enterprise_id",
    "user",
    "user_id",
    "channel",
    "channel_id",
    "authorizations",
    "authorizations.0",
    "authorizations.0.team_id",
    "authorizations.0.authorizations",
    "event",
    "event.type",
    "event.user",
    "event.channel",
    "event.item",
    "event.item.channel",
    "event.message",
    "event.message.user",
    "event.event",
    "event.assistant_thread",
    "message",
    "message.user",
    "view",
    "view.type",
    "view.team_id",
    "view.app_installed_team_id",
    "actions",
    "actions.0",
    "actions.0.action_id",
    "response_url",
    "response_urls",
    "response_urls.0",
    "command",
]
WRONG_TYPES: list[Any] = [None, 7, "s", [], ["s"], {}, {"id": 7}]


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` (dotted; digits index arrays) to `value`, creating what is missing."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = body
    for key, following in itertools.pairwise(keys):
        if isinstance(key, int):
            node.extend({} for _ in range(key + 1 - len(node)))
        elif not isinstance(node.get(key), dict | list):
            node[key] = [] if isinstance(following, int) else {}
        node = node[key]
    if isinstance(keys[-1], int):
        node.extend({} for _ in range(keys[-1] + 1 - len(node)))
    node[keys[-1]] = value


@pytest.mark.parametrize("kind", ["reaction", "click", "submission"])
async def test_no_wrong_type_in_a_field_bolt_reads_makes_a_500(
    harness: Harness, logs: pytest.LogCaptureFixture, kind: str
) -> None:
    h = harness
    a = await h.contextual_answer()
    base = {
        "reaction": reaction_body(a["ts"]),
        "click": block_actions(ALICE, a["ts"], ANSWER_VOTE, "thumbs_up"),
        "submission": view_submission(
            ALICE,
            {"callback_id": FORM_CALLBACK, "private_metadata": json.dumps({"vote": 1})},
            category="inaccurate",
            explanation="wrong",
        ),
    }[kind]
    failures = []
    for path in BOLT_READS:
        for value in WRONG_TYPES:
            body = copy.deepcopy(base)
            _set(body, path, value)
            if kind == "reaction":
                r = await h.slack.post(json.dumps(body))
            else:
                r = await h.slack.interaction(body)
            if r.status_code >= 500 or any(rec.exc_info for rec in logs.records):
                failures.append(f"{path} = {value!r}: HTTP {r.status_code}")
            logs.clear()
    assert failures == []


async def test_a_signed_body_with_a_bogus_charset_is_read_as_utf8(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    # Slack's JSON is UTF-8 whatever the header says: the charset parameter is ignored.
    h = harness
    a = await h.contextual_answer()
    r = await h.slack.post(
        json.dumps(reaction_body(a["ts"])), content_type="application/json; charset=bogus"
    )
    assert r.status_code == 200, r.text
    assert await stored_counts(h) == (1, 1, 1)
    assert_clean(logs, r)


async def test_a_slash_command_that_mentions_payload_is_still_a_command(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    # Bolt's own parser took any form body containing "payload" for an interaction and
    # dropped the command (a 404).
    h = harness
    r = await h.slack.command(
        slash_command(ALICE, "help payload", response_url=h.slack_api.response_url())
    )
    assert r.status_code == 200, r.text
    assert "`help` takes no arguments" in r.text
    assert_clean(logs, r)


async def test_ssl_check_still_answers(harness: Harness) -> None:
    r = await harness.slack.post("ssl_check=1&token=verification-token-unused", content_type=FORM)
    assert r.status_code == 200


# ------------------------------------------------------------------ the answers API


async def test_answers_api_refuses_an_authorization_header_it_cannot_read(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    body = json.dumps({"channel": CHANNEL, "ts": new_ts(), "provider": "contextual"}).encode()
    for value in (
        b"Bearer \xff\xfe",
        "Bearer tökén".encode(),
        b"Bearer " + API_TOKEN.encode()[:-1],
    ):
        r = await h.http.post(
            f"{h.base_url}/v1/answers",
            content=body,
            headers=[(b"Authorization", value), (b"Content-Type", JSON.encode())],
        )
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "missing or wrong bearer token"
    [count] = await query(h.store, "SELECT count(*) FROM answers")
    assert count == (0,)
    assert_clean(logs, r)


ANSWERS_BODIES: dict[str, tuple[bytes, str, str]] = {
    "a JSON array": (b"[]", "model_type", "the body should be a JSON object, not an array"),
    "a JSON string": (b'"x"', "model_type", "the body should be a JSON object, not a string"),
    "JSON null": (b"null", "model_type", "the body should be a JSON object, not null"),
    "JSON nested 100k deep": (
        _deeply_nested(100_000, "a").encode(),
        "json_invalid",
        "nested more than 64 levels deep",
    ),
    "not JSON": (b"{channel", "json_invalid", "the body is not valid JSON"),
    "not UTF-8": (b'{"channel": "C\xff"}', "json_invalid", "the body is not UTF-8"),
}


@pytest.mark.parametrize("case", list(ANSWERS_BODIES))
async def test_answers_api_malformed_bodies_are_422_with_the_reason(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    body, kind, reason = ANSWERS_BODIES[case]
    r = await h.http.post(
        f"{h.base_url}/v1/answers",
        content=body,
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": JSON},
    )
    assert r.status_code == 422, r.text
    [detail] = r.json()["detail"]
    assert detail["type"] == kind
    assert detail["loc"] == []
    assert reason in detail["msg"]
    [count] = await query(h.store, "SELECT count(*) FROM answers")
    assert count == (0,)
    assert_clean(logs, r)


# ------------------------------------------------------------------ Socket Mode


async def register_over_http(bot: FeedbackBot) -> dict[str, Any]:
    answer = {
        "channel": CHANNEL,
        "ts": new_ts(),
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"http://127.0.0.1:{bot.port}/v1/answers",
            json=answer,
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
    assert r.status_code == 201, r.text
    return answer


async def socket_stored_counts(bot: FeedbackBot) -> tuple[int, int, int]:
    assert bot.services is not None
    [row] = await query(
        bot.services.store,
        "SELECT (SELECT count(*) FROM votes), (SELECT count(*) FROM deliveries),"
        " (SELECT count(*) FROM processed_events)",
    )
    return row  # type: ignore[no-any-return]


async def test_over_the_socket_a_malformed_event_is_acknowledged_and_dropped(
    socket_bot: FeedbackBot,
    standins: Standins,
    logs: pytest.LogCaptureFixture,
) -> None:
    slack, contextual, _ = standins[:3]
    answer = await register_over_http(socket_bot)
    malformed = reaction_body(answer["ts"])
    malformed["event"]["user"] = 12345
    ack = await slack.socket_send(malformed)
    assert set(ack) == {"envelope_id"}  # acknowledged, or Slack would send it again
    [warning] = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert "event.user: should be a string (an id) or an object" in warning
    assert await socket_stored_counts(socket_bot) == (0, 0, 0)
    assert contextual.received == []
    assert_clean(logs)


# ------------------------------------------------------------------ another workspace


def foreign_event(ts: str) -> dict[str, Any]:
    """A reaction in another workspace where the app is installed too, sent to our URL."""
    body = reaction_body(ts, team_id=OTHER_TEAM, context_team_id=OTHER_TEAM)
    body["authorizations"] = [{**body["authorizations"][0], "team_id": OTHER_TEAM}]
    return body


def ignored_for_another_workspace(logs: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in logs.records
        if r.levelno == logging.DEBUG and "for another workspace" in r.getMessage()
    ]


async def test_events_for_another_workspace_are_acknowledged_and_ignored(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    a = await h.contextual_answer()
    r = await h.slack.post(json.dumps(foreign_event(a["ts"])))
    assert r.status_code == 200, r.text  # Slack must not retry it
    assert r.text == ""
    await h.settled()
    assert await stored_counts(h) == (0, 0, 0)
    assert h.contextual.received == []
    [line] = ignored_for_another_workspace(logs)
    assert OTHER_TEAM in line and TEAM in line
    assert_clean(logs, r)


@pytest.mark.parametrize(
    "shape",
    ["the reactor is from another organisation", "another installation is listed too"],
)
async def test_slack_connect_events_still_count(harness: Harness, shape: str) -> None:
    h = harness
    a = await h.contextual_answer()
    body = reaction_body(a["ts"], is_ext_shared_channel=True)
    if shape == "the reactor is from another organisation":
        # The event happened "in" the reactor's workspace; our installation is listed.
        body |= {"team_id": OTHER_TEAM, "context_team_id": OTHER_TEAM}
        body["event"]["user_team"] = OTHER_TEAM
    else:
        # Our workspace's event, delivered on behalf of the other side's installation.
        body["authorizations"] = [{**body["authorizations"][0], "team_id": OTHER_TEAM}]
    r = await h.slack.post(json.dumps(body))
    assert r.status_code == 200, r.text
    await h.contextual.wait_for(1)
    assert h.contextual.statuses() == ["thumbs_up"]


async def test_clicks_through_another_workspaces_installation_are_ignored(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    a = await h.contextual_answer()
    click = block_actions(OTHER_USER, a["ts"], ANSWER_VOTE, "thumbs_up")
    click["team"] = {"id": OTHER_TEAM, "domain": "other"}
    click["user"]["team_id"] = OTHER_TEAM
    r = await h.slack.interaction(click)
    assert r.status_code == 200, r.text
    assert await stored_counts(h) == (0, 0, 0)
    assert h.slack_api.calls_to("chat.postEphemeral") == []
    assert h.slack_api.calls_to("views.open") == []
    assert len(ignored_for_another_workspace(logs)) == 1
    assert_clean(logs, r)


async def test_a_shared_channel_click_by_someone_from_another_organisation_counts(
    harness: Harness,
) -> None:
    # In a Slack Connect channel `team` is the workspace the app is installed in; only
    # user.team_id is the clicker's.
    h = harness
    a = await h.contextual_answer()
    click = block_actions(OTHER_USER, a["ts"], ANSWER_VOTE, "thumbs_up")
    click["user"]["team_id"] = OTHER_TEAM
    r = await h.slack.interaction(click)
    assert r.status_code == 200, r.text
    await h.contextual.wait_for(1)
    assert h.contextual.statuses() == ["thumbs_up"]


async def test_a_form_opened_through_another_installation_is_ignored(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    [vote] = await query(h.store, "SELECT id FROM votes")
    submission = view_submission(
        ALICE,
        {"callback_id": FORM_CALLBACK, "private_metadata": json.dumps({"vote": vote[0]})},
        category="inaccurate",
        explanation="wrong",
    )
    submission["view"]["app_installed_team_id"] = OTHER_TEAM
    r = await h.slack.interaction(submission)
    assert r.status_code == 200, r.text
    [explained] = await query(h.store, "SELECT explanation FROM votes")
    assert explained == (None,)
    assert len(ignored_for_another_workspace(logs)) == 1
    assert_clean(logs, r)


async def test_slash_commands_from_another_workspace_do_nothing(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    h.slack_api.add_user(OTHER_USER, admin=True)
    fields = slash_command(OTHER_USER, "reactions off", response_url=h.slack_api.response_url())
    r = await h.slack.command({**fields, "team_id": OTHER_TEAM, "team_domain": "other"})
    assert r.status_code == 200, r.text
    assert "set up for another Slack workspace" in r.text
    assert h.slack_api.calls_to("users.info") == []
    [audit] = await query(h.store, "SELECT count(*) FROM audit_log")
    assert audit == (0,)
    assert len(ignored_for_another_workspace(logs)) == 1
    assert_clean(logs, r)


async def test_app_rate_limited_is_acknowledged_with_a_warning_that_explains_it(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    h = harness
    body = {
        "token": "verification-token-unused",
        "type": "app_rate_limited",
        "team_id": TEAM,
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0APP0001",
    }
    r = await h.slack.post(json.dumps(body))
    assert r.status_code == 200, r.text
    [warning] = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert TEAM in warning
    assert "2018-02-12 20:37 UTC" in warning
    assert "30,000 events" in warning
    assert "Slack does not send them again" in warning
    logs.clear()
    r = await h.slack.post(json.dumps({**body, "team_id": OTHER_TEAM}))
    assert r.status_code == 200, r.text
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]
    assert_clean(logs, r)


async def test_over_the_socket_events_for_another_workspace_are_dropped(
    socket_bot: FeedbackBot,
    standins: Standins,
    logs: pytest.LogCaptureFixture,
) -> None:
    slack, contextual, _ = standins[:3]
    answer = await register_over_http(socket_bot)
    ack = await slack.socket_send(foreign_event(answer["ts"]))
    assert set(ack) == {"envelope_id"}
    assert await socket_stored_counts(socket_bot) == (0, 0, 0)
    assert len(ignored_for_another_workspace(logs)) == 1
    assert_clean(logs)
    # Our own workspace's events still count.
    await slack.socket_send(reaction_body(answer["ts"]))
    await contextual.wait_for(1)
    assert contextual.statuses() == ["thumbs_up"]


# ------------------------------------------------------------------ forged numbers and ids


def _metadata_cases(vote: int) -> dict[str, tuple[str, str]]:
    """private_metadata a client could send back in place of what the bot wrote
    ({"vote": …, "channel": …, "thread_ts": …}), and the reason expected."""
    bad_vote = "private_metadata.vote: should be a vote id"
    return {
        # Each of these three was a 500 with an OverflowError traceback.
        "vote 1e400": ('{"vote": 1e400}', "private_metadata is not valid JSON"),
        "vote 1e300": ('{"vote": 1e300}', bad_vote),
        "a 20-digit vote": ('{"vote": 12345678901234567890}', bad_vote),
        "a 30-digit vote": ('{"vote": 123456789012345678901234567890}', bad_vote),
        # json.loads recursed into this one (RecursionError, a 500).
        "5,000 nested arrays": ("[" * 1500 + "]" * 1500, "nested more than 64 levels deep"),
        "vote NaN": ('{"vote": NaN}', "private_metadata is not valid JSON"),
        # These the old int() took for the vote itself: true == 1, "7" and 7.0 == 7.
        "vote true": ('{"vote": true}', bad_vote),
        "the vote as a string": (json.dumps({"vote": str(vote)}), bad_vote),
        "the vote as a float": (f'{{"vote": {vote}.0}}', bad_vote),
        "vote 0": ('{"vote": 0}', bad_vote),
        "vote -1": ('{"vote": -1}', bad_vote),
        "a channel that is no Slack id": (
            json.dumps({"vote": vote, "channel": "c" * 2000}),
            "private_metadata.channel: should be a Slack channel id",
        ),
        "thread_ts as a number": (
            json.dumps({"vote": vote, "channel": CHANNEL, "thread_ts": 1.5}),
            "private_metadata.thread_ts: should be a Slack timestamp",
        ),
        "a JSON array": ("[1]", "private_metadata should be a JSON object, not an array"),
        "not JSON": ("{vote", "private_metadata is not valid JSON"),
        "more than Slack's 3,000 characters": (
            json.dumps({"vote": vote, "pad": "x" * 3000}),
            "view.private_metadata: String should have at most 3000 characters",
        ),
        "no vote": (json.dumps({"channel": CHANNEL}), "without a vote in its metadata"),
    }


async def test_forged_private_metadata_is_400_with_the_reason_and_explains_nothing(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    """The "what went wrong?" form comes back with private_metadata that is not what the
    bot wrote: a 400 that says why, and the vote it might name stays as it was."""
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    [(vote,)] = await query(h.store, "SELECT id FROM votes")
    failures = []
    for case, (metadata, reason) in _metadata_cases(vote).items():
        submission = view_submission(
            ALICE,
            {"callback_id": FORM_CALLBACK, "private_metadata": metadata},
            category="inaccurate",
            explanation="wrong",
        )
        r = await h.slack.interaction(submission)
        if r.status_code != 400 or reason not in r.text:
            failures.append(f"{case}: HTTP {r.status_code} {r.text[:200]}")
        if any(rec.exc_info for rec in logs.records):
            failures.append(f"{case}: a traceback in the log")
        logs.clear()
    assert failures == []
    assert await query(h.store, "SELECT explanation, category FROM votes") == [(None, None)]
    await h.settled()
    assert h.contextual.statuses() == ["thumbs_down"]  # no re-settled verdict with a reason
    assert h.slack_api.calls_to("chat.postEphemeral") == []


async def test_the_form_with_the_metadata_the_bot_wrote_still_explains_the_vote(
    harness: Harness,
) -> None:
    # The other side of the test above: the bounds refuse nothing the bot itself writes.
    h = harness
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "-1", a["ts"])
    [(vote,)] = await query(h.store, "SELECT id FROM votes")
    metadata = json.dumps({"vote": vote, "channel": CHANNEL, "thread_ts": a["ts"]})
    submission = view_submission(
        ALICE,
        {"callback_id": FORM_CALLBACK, "private_metadata": metadata},
        category="inaccurate",
        explanation="wrong",
    )
    r = await h.slack.interaction(submission)
    assert r.status_code == 200, r.text
    assert await query(h.store, "SELECT explanation FROM votes") == [("wrong",)]


LONG = "U" + "0" * 9_999  # a 10,000-character user id


def _reaction_cases(ts: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Signed reaction events with one id out of bounds, and the reason expected."""
    event = reaction_event(ALICE, "-1", ts)
    item = event["item"]
    return {
        "a 10,000-character user": (
            reaction_body(ts, event={**event, "user": LONG}),
            "event.user: should be a Slack id",
        ),
        "a user in lower case": (
            reaction_body(ts, event={**event, "user": "u0alice001"}),
            "event.user: should be a Slack id",
        ),
        "a 10,000-character channel": (
            reaction_body(ts, event={**event, "item": {**item, "channel": "C" + "0" * 9_999}}),
            "event.item.channel: should be a Slack id",
        ),
        "a ts of 10,000 digits": (
            reaction_body(ts, event={**event, "item": {**item, "ts": "1" * 10_000}}),
            "event.item.ts: should be a Slack timestamp",
        ),
        "ts 1e400": (
            reaction_body(ts, event={**event, "item": {**item, "ts": "1e400"}}),
            "event.item.ts: should be a Slack timestamp",
        ),
        "a 10,000-character event_id": (
            reaction_body(ts, event_id="Ev" + "0" * 9_998),
            "event_id: should be a Slack event id",
        ),
        "a 10,000-character emoji": (
            reaction_body(ts, event={**event, "reaction": "x" * 10_000}),
            "event.reaction: String should have at most 255 characters",
        ),
    }


@pytest.mark.parametrize("case", list(_reaction_cases("1")))
async def test_a_reaction_with_an_id_out_of_bounds_is_400_and_stores_nothing(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    """The fast lane does not take it; Bolt's door refuses it with the field named. It
    used to be stored as a vote, 10,000-character user and all."""
    h = harness
    a = await h.contextual_answer()
    body, reason = _reaction_cases(a["ts"])[case]
    r = await h.slack.post(json.dumps(body))
    assert r.status_code == 400, r.text
    assert reason in r.text
    assert await stored_counts(h) == (0, 0, 0)
    assert h.slack_api.calls_to("chat.postEphemeral") == []
    assert_clean(logs, r)


def _click_cases(ts: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Signed clicks with one field out of bounds (or a forged number), and the reason."""

    def click(action_id: str = ANSWER_VOTE, value: str = "thumbs_down") -> dict[str, Any]:
        return block_actions(ALICE, ts, action_id, value)

    long_user, long_action_ts, long_channel = click(), click(), click()
    long_user["user"]["id"] = LONG
    long_action_ts["actions"][0]["action_ts"] = "1" * 10_000 + ".1"
    long_channel["container"]["channel_id"] = "C" + "0" * 9_999
    long_block, long_trigger, float_ts = click(), click(), click()
    long_block["actions"][0]["block_id"] = "b" * 10_000
    long_trigger["trigger_id"] = "1." * 5_000
    float_ts["container"]["message_ts"] = "1e400"
    return {
        "a 10,000-character user": (long_user, "user.id: should be a Slack id"),
        "a 10,000-digit action_ts": (long_action_ts, "actions.0.action_ts: should be a Slack"),
        "a 10,000-character channel": (long_channel, "container.channel_id: should be a Slack"),
        "a 10,000-character block_id": (long_block, "actions.0.block_id: String should have"),
        "a 10,000-character trigger_id": (long_trigger, "trigger_id: String should have"),
        "message_ts 1e400": (float_ts, "container.message_ts: should be a Slack timestamp"),
        # The form button's value is a vote id: these were a 500 (OverflowError from the
        # database driver; int("²") raises although "²".isdigit()).
        "a 20-digit vote id": (click(OPEN_FORM, "9" * 20), "not a vote id"),
        "a superscript digit": (click(OPEN_FORM, "²"), "not a vote id"),
        "vote id 0": (click(OPEN_FORM, "0"), "not a vote id"),
    }


@pytest.mark.parametrize("case", list(_click_cases("1")))
async def test_a_click_with_an_id_out_of_bounds_is_400_and_stores_nothing(
    harness: Harness, logs: pytest.LogCaptureFixture, case: str
) -> None:
    h = harness
    a = await h.contextual_answer()
    payload, reason = _click_cases(a["ts"])[case]
    r = await h.slack.interaction(payload)
    assert r.status_code == 400, r.text
    assert reason in r.text
    assert await stored_counts(h) == (0, 0, 0)
    assert h.slack_api.calls_to("chat.postEphemeral") == []
    assert h.slack_api.calls_to("views.open") == []
    assert_clean(logs, r)


async def test_long_enterprise_grid_ids_still_count(harness: Harness) -> None:
    """The bounds are Slack's shapes, not today's lengths: a W… user of 32 characters in
    an E… organisation votes by reaction and by button as anyone else."""
    h = harness
    a = await h.contextual_answer()
    grid_user = "W" + "0123456789ABCDEFGHIJKLMNOPQRSTU"  # 32 characters
    body = reaction_body(a["ts"], enterprise_id="E" + "0" * 20)
    body["event"]["user"] = grid_user
    r = await h.slack.post(json.dumps(body))
    assert r.status_code == 200, r.text
    other = "W" + "9" * 40
    r = await h.slack.interaction(block_actions(other, a["ts"], ANSWER_VOTE, "thumbs_up"))
    assert r.status_code == 200, r.text
    rows = await query(h.store, "SELECT user_id FROM votes ORDER BY id")
    assert rows == [(grid_user,), (other,)]


async def test_over_the_socket_a_10000_character_user_is_refused_and_stores_nothing(
    socket_bot: FeedbackBot,
    standins: Standins,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Over the socket the fast lane refuses it too, and Bolt's listener answers 400 with
    the reason, as for any payload the listener refuses there (Bolt's adapter acknowledges
    only a 200, so Slack may send it again: it is refused again)."""
    slack, contextual, _ = standins[:3]
    answer = await register_over_http(socket_bot)
    body = reaction_body(answer["ts"])
    body["event"]["user"] = LONG
    sending = asyncio.create_task(slack.socket_send(body))

    async def refused() -> bool:
        return any("event.user: should be a Slack id" in r.getMessage() for r in logs.records)

    try:
        await wait_until(refused)
    finally:
        sending.cancel()
    assert await socket_stored_counts(socket_bot) == (0, 0, 0)
    assert contextual.received == []
    assert_clean(logs)


async def test_a_forged_setup_form_is_refused_and_stores_no_key(
    harness: Harness, logs: pytest.LogCaptureFixture
) -> None:
    """The keys form: metadata that is not ours is a 400; a key longer than the field
    allows (only a forged form sends one) is refused in the form, before anything runs."""
    h = harness
    h.slack_api.add_user("U0ADMIN001", admin=True)

    def setup(metadata: str, key: str) -> dict[str, Any]:
        submission = view_submission(
            "U0ADMIN001",
            {"callback_id": SETUP_CALLBACK, "private_metadata": metadata},
            category=None,
            explanation=None,
        )
        field = {"type": "plain_text_input", "value": key}
        submission["view"]["state"]["values"] = {"contextual_key": {"contextual_key": field}}
        return submission

    r = await h.slack.interaction(setup(json.dumps({"channel": 7}), "k" * 40))
    assert r.status_code == 400 and "private_metadata.channel" in r.text, r.text
    r = await h.slack.interaction(setup(json.dumps({"channel": CHANNEL}), "k" * 10_000))
    assert r.status_code == 200, r.text
    assert r.json()["response_action"] == "errors"
    assert "at most 500 characters" in r.json()["errors"]["contextual_key"]
    assert await h.store.provider_keys() == {}
    assert h.slack_api.calls_to("chat.postEphemeral") == []
    assert_clean(logs, r)
