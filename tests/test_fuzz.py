"""Schemathesis against a running `feedback-bot run`: requests generated from
docs/openapi.json (bounded, seeded, quick) find no 5xx and no response the document does
not describe."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.credentials import API_TOKEN
from tests.process import World

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


async def test_generated_requests_find_no_5xx_and_every_response_conforms(world: World) -> None:
    bot = world.bot(FEEDBACK_METRICS="1", FEEDBACK_LOG_LEVEL="INFO")
    await bot.start()
    st = Path(sys.executable).parent / "st"
    process = await asyncio.create_subprocess_exec(
        str(st),
        "run",
        f"http://127.0.0.1:{bot.port}/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {API_TOKEN}",
        "--checks",
        CHECKS,
        "--max-examples",
        "30",
        "--seed",
        "20261201",
        "--request-timeout",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=world.tmp,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 240)
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "Traceback" not in bot.text, bot.text[-3000:]
    await bot.terminate()


async def test_a_request_http_cannot_parse_is_a_400_and_one_line(world: World) -> None:
    bot = world.bot(FEEDBACK_LOG_LEVEL="INFO")
    await bot.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: \x00\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status.split()[1] == b"400", status
    await bot.terminate()
    assert "Traceback" not in bot.text
    assert "answered a malformed HTTP request with 400" in bot.text
