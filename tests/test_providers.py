"""The provider registry: what each ProviderSpec declares holds up against the settings, the
channel configuration, the registration model and the client. A new provider's spec gets
these checks for free. Then the providers' answers: how much of one is read, a 200 that is
not what the API describes, and which refusals each provider retries."""

from __future__ import annotations

import logging
import typing
import uuid
from collections.abc import Mapping

import aiohttp
import pytest

from bot.config.channels import KEYS, ChannelOptions
from bot.config.settings import EXPECTED, Settings
from bot.domain import WITHDRAWN, Answer, Status, Target, Verdict
from bot.providers import (
    PROVIDERS,
    ContextualProvider,
    PermanentError,
    ProviderSpec,
    Sent,
    Skipped,
    contextual,
)
from bot.providers.base import (
    BODY_LIMIT,
    ERROR_TEXT_LIMIT,
    parse_retry_after,
    request,
    retried_by_default,
)
from bot.providers.registration import AnswerIn
from tests.credentials import AQUILAX_KEY, CONTEXTUAL_KEY
from tests.harness import Harness, wait_until
from tests.slack_payloads import new_uuid
from tests.standins import Standins
from tests.standins.providers import ProviderStandIn, Streamed

ALICE = "U0ALICE001"
THUMBS_UP = Verdict(Status.THUMBS_UP)
# Far more than the cap, and more than the loopback socket buffers hold: streamed, it shows
# whether the client read it all.
HUGE = 20 * 1024 * 1024

SPECS = list(PROVIDERS.values())


def test_the_registry_is_keyed_by_name_in_a_stable_order() -> None:
    assert list(PROVIDERS) == ["contextual", "aquilax", "langsmith", "langfuse"]
    assert all(name == spec.name for name, spec in PROVIDERS.items())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_registration_model_is_tagged_with_the_name(spec: ProviderSpec) -> None:
    assert issubclass(spec.answer_in, AnswerIn)
    tag = spec.answer_in.model_fields["provider"].annotation
    assert typing.get_args(tag) == (spec.name,)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_its_settings_exist_are_explained_and_the_key_is_a_redacted_secret(
    spec: ProviderSpec,
) -> None:
    assert spec.key_setting in Settings.model_fields
    assert spec.base_url_setting in Settings.model_fields
    variables = spec.key_variable.split(" and ")  # Langfuse's key is two
    assert all(v in EXPECTED for v in variables)
    assert spec.base_url_setting.upper() in EXPECTED
    env = {v.lower(): f"{v.lower()}-from-the-env-1234" for v in variables}
    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type]
    assert spec.environment_key(settings) == ":".join(env.values())
    assert all(value in settings.secrets() for value in env.values())
    blank = Settings(_env_file=None, **{v: " " for v in env})  # type: ignore[arg-type]
    assert spec.environment_key(blank) is None
    for one in env if len(env) > 1 else ():  # half a pair is no key
        half = Settings(_env_file=None, **{one: env[one]})  # type: ignore[arg-type]
        assert spec.environment_key(half) is None
    assert spec.base_url(blank).startswith("https://")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_defaults_options_and_shown_ids_name_real_fields(spec: ProviderSpec) -> None:
    fields = spec.answer_in.model_fields
    for field, setting in spec.channel_defaults.items():
        assert field in fields
        assert setting in KEYS and hasattr(ChannelOptions(), setting)
    for option in spec.cli_options:
        assert option.field in fields and option.option.startswith("--")
    target = Target(provider=spec.name)
    shown = spec.answer_ids(Answer(channel="C0123ABCD", ts="1.0", targets=(target,)), target)
    assert set(shown) <= set(fields)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_the_client_does_with_a_removal_what_the_spec_declares(spec: ProviderSpec) -> None:
    answer = Answer(
        channel="C0123ABCD", ts="1700000000.000100", targets=(Target(provider=spec.name),)
    )
    async with aiohttp.ClientSession() as session:
        client = spec.client(session, "http://127.0.0.1:9", lambda: None)
        assert client.name == spec.name
        if spec.removed is None:
            # It would send the removal: with no key, it fails for want of one.
            with pytest.raises(PermanentError, match=spec.key_variable):
                await client.send(answer, answer.first, "", WITHDRAWN)
        else:
            assert await client.send(answer, answer.first, "", WITHDRAWN) == Skipped(spec.removed)


# ------------------------------------------------------------ what is read of an answer


def provider_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("bot.providers") and r.levelno == logging.WARNING
    ]


def contextual_target() -> Answer:
    return Answer(
        channel="C0123ABCD",
        ts="1700000000.000100",
        targets=(Target(provider="contextual", agent_id=new_uuid(), message_id=new_uuid()),),
    )


async def test_no_more_than_the_cap_of_an_answer_is_read(standins: Standins) -> None:
    _, _, aquilax = standins[:3]
    aquilax.answer(size=HUGE)
    async with aiohttp.ClientSession() as session:
        response = await request(
            session,
            "AquilaX",
            "GET",
            f"{aquilax.base_url}/api/v2/ai/feedback/{new_uuid()}/true",
            params={"org": "org1", "group": "group1"},
            headers={"X-AX-KEY": AQUILAX_KEY},
        )
    [streamed] = aquilax.streamed
    await wait_until(lambda: _ended(streamed))
    # The client hung up: what it did not read was never sent.
    assert not streamed.finished
    assert streamed.written < HUGE
    assert (response.status, len(response.body), response.truncated) == (200, BODY_LIMIT, True)


async def _ended(streamed: Streamed) -> bool:
    return streamed.ended


@pytest.mark.parametrize("huge", [True, False], ids=["20 MB", "not JSON"])
async def test_a_200_that_is_not_the_specs_is_delivered_with_one_warning(
    harness: Harness, caplog: pytest.LogCaptureFixture, huge: bool
) -> None:
    h = harness
    caplog.set_level(logging.INFO)
    if huge:
        h.contextual.answer(size=HUGE)
    else:
        h.contextual.answer(b"<html>thanks!</html>")
    a = await h.contextual_answer()
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.contextual.wait_for(1)
    await h.settled()
    [row] = await h.store.list_deliveries()
    assert (row.state, row.attempts, row.provider_ref) == ("delivered", 1, None)
    if huge:
        [streamed] = h.contextual.streamed
        await wait_until(lambda: _ended(streamed))
        assert not streamed.finished and streamed.written < HUGE
    problem = f"too long; more than {BODY_LIMIT} bytes" if huge else "not JSON; 20 bytes"
    assert provider_warnings(caplog) == [
        f"Contextual answered HTTP 200 with a body its API does not describe ({problem}):"
        " counted as delivered"
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not JSON"),
        (b'["a list"]', "not a JSON object"),
        (b'{"id": "8f14e45f-ceea-467f-a2b4-1b5d2b0e8c9a"}', "no feedback_id"),
        (b'{"feedback_id": 7}', "feedback_id is not a UUID"),
        (b'{"feedback_id": "fb-1"}', "feedback_id is not a UUID"),
    ],
)
async def test_contextual_checks_a_200_against_its_spec(
    standins: Standins, caplog: pytest.LogCaptureFixture, body: bytes, problem: str
) -> None:
    _, stand_in, _ = standins[:3]
    stand_in.answer(body)
    async with aiohttp.ClientSession() as session:
        client = ContextualProvider(session, stand_in.base_url, lambda: CONTEXTUAL_KEY)
        assert await client.send(
            answer := contextual_target(), answer.first, "", THUMBS_UP
        ) == Sent(None)
    assert provider_warnings(caplog) == [
        f"Contextual answered HTTP 200 with a body its API does not describe"
        f" ({problem}; {len(body)} bytes): counted as delivered"
    ]


async def test_contextual_keeps_the_feedback_id_of_a_200_as_specified(
    standins: Standins, caplog: pytest.LogCaptureFixture
) -> None:
    _, stand_in, _ = standins[:3]
    ref = str(uuid.uuid4())
    stand_in.answer(b'{"feedback_id": "%s"}' % ref.encode())
    async with aiohttp.ClientSession() as session:
        client = ContextualProvider(session, stand_in.base_url, lambda: CONTEXTUAL_KEY)
        assert await client.send(
            answer := contextual_target(), answer.first, "", THUMBS_UP
        ) == Sent(ref)
    assert provider_warnings(caplog) == []


async def test_an_error_echoing_the_key_is_cut_short_after_the_key_is_masked(
    standins: Standins,
) -> None:
    _, stand_in, _ = standins[:3]
    # The key straddles the point where the error text is cut: masked after the cut, its
    # first characters would be kept, and no redactor knows them.
    detail = "x" * (ERROR_TEXT_LIMIT - 30) + f" key {CONTEXTUAL_KEY} is not allowed"
    stand_in.fail(403, body={"detail": detail + "y" * 100_000})
    async with aiohttp.ClientSession() as session:
        client = ContextualProvider(session, stand_in.base_url, lambda: CONTEXTUAL_KEY)
        with pytest.raises(PermanentError) as refused:
            await client.send(answer := contextual_target(), answer.first, "", THUMBS_UP)
    message = str(refused.value)
    assert message.startswith("Contextual answered HTTP 403: ")
    assert len(message) == len("Contextual answered HTTP 403: ") + ERROR_TEXT_LIMIT
    assert CONTEXTUAL_KEY[:6] not in message
    assert " key [redacted]" in message


# ------------------------------------------------------------ which refusals are retried


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (408, {}, True),
        (409, {}, True),
        (422, {}, False),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (503, {"x-should-retry": "false"}, False),
        (400, {"X-Should-Retry": "true"}, True),
        (409, {"x-should-retry": "maybe"}, True),  # not true or false: the status decides
    ],
)
def test_contextual_retries_what_its_sdk_retries(
    status: int, headers: Mapping[str, str], retried: bool
) -> None:
    assert contextual.should_retry(status, headers) is retried


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (409, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_aquilax_retries_timeouts_rate_limits_and_its_own_trouble(
    status: int, retried: bool
) -> None:
    assert retried_by_default(status, {"x-should-retry": "false"}) is retried


@pytest.mark.parametrize(
    ("provider", "status", "headers", "delivered"),
    [
        ("contextual", 409, {}, True),
        ("contextual", 408, {}, True),
        ("contextual", 503, {"x-should-retry": "false"}, False),
        ("contextual", 400, {"x-should-retry": "true"}, True),
        ("aquilax", 408, {}, True),
        ("aquilax", 409, {}, False),
        ("aquilax", 503, {"x-should-retry": "false"}, True),  # Contextual's header only
    ],
)
async def test_a_refusal_is_retried_or_dead_as_the_provider_module_says(
    harness: Harness, provider: str, status: int, headers: dict[str, str], delivered: bool
) -> None:
    h = harness
    stand_in: ProviderStandIn = getattr(h, provider)
    stand_in.fail(status, headers=headers)
    a = await (h.contextual_answer() if provider == "contextual" else h.aquilax_answer())
    await h.slack.react(ALICE, "+1", a["ts"])
    await h.settled()
    [row] = await h.store.list_deliveries()
    assert [s for s, _ in stand_in.rejected] == [status]
    if delivered:
        assert (row.state, row.attempts) == ("delivered", 2)
        assert stand_in.statuses() == ["thumbs_up" if provider == "contextual" else "true"]
    else:
        assert (row.state, row.attempts) == ("dead", 1)
        assert f"HTTP {status}" in (row.last_error or "")
        assert stand_in.statuses() == []


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "1e400"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "tomorrow"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_as_the_sdk_reads_it(
    headers: Mapping[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(headers) == seconds
