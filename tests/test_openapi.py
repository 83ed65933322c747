"""The HTTP API is what docs/openapi.json says: every route's real responses, good and bad,
validated against the document (openapi-core), and the document served as it is."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.credentials import API_TOKEN
from tests.harness import Harness
from tests.slack_payloads import CHANNEL, new_ts, new_uuid

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


@pytest.fixture
def bot_overrides() -> dict[str, Any]:
    return {"feedback_metrics": True}


@dataclass
class _Request:
    """An httpx request as openapi-core reads one."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)


@dataclass
class _Response:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes


def check(spec: OpenAPI, r: httpx.Response) -> None:
    url = urlsplit(str(r.request.url))
    request = _Request(
        host_url=f"{url.scheme}://{url.netloc}",
        path=url.path,
        method=r.request.method.lower(),
        body=r.request.content or None,
        content_type=r.request.headers.get("content-type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(r.request.url.params.multi_items()),
            header=Headers(dict(r.request.headers)),
        ),
    )
    response = _Response(
        status_code=r.status_code,
        content_type=r.headers.get("content-type", "").split(";")[0],
        headers=Headers(dict(r.headers)),
        data=r.content,
    )
    spec.validate_response(request, response)  # raises with the mismatch


async def test_every_route_answers_as_the_document_says(harness: Harness) -> None:
    h = harness
    served = (await h.http.get(f"{h.base_url}/v1/openapi.json")).json()
    assert served == json.loads(DOC.read_text())
    served["servers"] = [{"url": h.base_url}]
    spec = OpenAPI.from_dict(served)
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    a = {
        "channel": CHANNEL,
        "ts": new_ts(),
        "provider": "contextual",
        "agent_id": new_uuid(),
        "message_id": new_uuid(),
    }
    answers = f"{h.base_url}/v1/answers"
    one = f"{answers}/{CHANNEL}/{a['ts']}"
    exchanges = [
        await h.http.post(answers, json=a, headers=auth),  # 201
        await h.http.post(answers, json=a, headers=auth),  # 200
        await h.http.post(answers, json={**a, "message_id": new_uuid()}, headers=auth),  # 409
        await h.http.post(answers, json={"channel": "nope"}, headers=auth),  # 422
        await h.http.post(answers, json=a),  # 401
    ]
    await h.slack.react("U0ALICE001", "+1", a["ts"])
    await h.settled()
    exchanges += [
        await h.http.get(answers, headers=auth),
        await h.http.get(f"{answers}?limit=0", headers=auth),  # 400
        await h.http.get(one, headers=auth),
        await h.http.get(f"{answers}/{CHANNEL}/{new_ts()}", headers=auth),  # 404
        await h.http.get(f"{h.base_url}/v1/votes", headers=auth),
        await h.http.get(f"{h.base_url}/v1/votes?since=soon", headers=auth),  # 400
        await h.http.get(f"{h.base_url}/healthz"),
        await h.http.get(f"{h.base_url}/metrics"),
        await h.http.delete(one, headers=auth),
        await h.http.delete(one, headers=auth),  # 404
    ]
    statuses = [r.status_code for r in exchanges]
    assert statuses == [201, 200, 409, 422, 401, 200, 400, 200, 404, 200, 400, 200, 200, 200, 404]
    for r in exchanges:
        check(spec, r)
    # JSON Lines have no schema of their own in OpenAPI 3.1: each line is a Vote.
    vote = Draft202012Validator(
        {**served["components"]["schemas"]["Vote"], "$defs": served["components"]["schemas"]}
    )
    [votes] = [r for r in exchanges if r.request.url.path == "/v1/votes" and r.is_success]
    lines = [json.loads(line) for line in votes.text.splitlines()]
    assert len(lines) == 1
    for line in lines:
        vote.validate(line)
