"""`feedback-bot migrate-db`: a bot's SQLite database moved into PostgreSQL, and the bot
carrying on there as if nothing happened."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bot.app import FeedbackBot
from bot.config.channels import ChannelSettings
from storage import Store
from tests import postgres
from tests.conftest import TEST_BACKOFF, settings_for
from tests.dbtools import query
from tests.harness import PROVIDER_TIMEOUT, Harness, SlackSide, wait_until
from tests.slack_payloads import CHANNEL
from tests.standins import Standins
from tests.test_answers_api import cli_async


async def running(db: str, standins: Standins, http: httpx.AsyncClient) -> Harness:
    bot = FeedbackBot(
        settings_for(db, *standins), backoff=TEST_BACKOFF, provider_timeout=PROVIDER_TIMEOUT
    )
    await bot.start()
    side = SlackSide(http, f"http://127.0.0.1:{bot.port}/slack/events")
    return Harness(bot, *standins, http, side)


async def test_migrate_db_copies_everything_and_the_bot_goes_on(
    tmp_path: Path, standins: Standins, postgres_server: postgres.Server | None
) -> None:
    if postgres_server is None:
        pytest.skip("no PostgreSQL server")
    source = tmp_path / "feedback.db"
    async with httpx.AsyncClient(timeout=10) as http:
        h = await running(str(source), standins, http)
        try:
            a = await h.contextual_answer(sources=2)
            b = await h.aquilax_answer()
            await h.slack.react("U0ALICE001", "+1", a["ts"])
            await h.slack.react("U0BOB00001", "-1", b["ts"])
            await h.settled()
            await ChannelSettings(h.store).set(CHANNEL, "prompt", True, "U0ADMIN001")
            await h.store.set_provider_key("contextual", b"ciphertext", "ab12", "U0ADMIN001")
            h.contextual.fail(503, retry_after="60")
            await h.slack.react("U0CAROL001", "-1", a["ts"])  # a delivery left pending

            async def failed() -> bool:
                return (await h.store.delivery_counts()).last_error is not None

            await wait_until(failed)
        finally:
            await h.bot.stop(grace=1.0)
        h.contextual.script.clear()

        target = await postgres.new_database(postgres_server)
        code, out, err = await cli_async(
            "migrate-db", "--from", f"sqlite:///{source}", "--to", target, "--json", env={}
        )
        assert code == 0, err
        copied = json.loads(out)
        assert copied["answers"] == 2 and copied["answer_sources"] == 2
        assert copied["votes"] == 3 and copied["provider_keys"] == 1
        assert copied["audit_log"] >= 2 and copied["processed_events"] == 3

        # Into a database that already holds answers: refused, nothing changed.
        code, _, err = await cli_async("migrate-db", "--from", str(source), "--to", target, env={})
        assert code == 1 and "already holds answers" in err

        h = await running(target, standins, http)
        try:
            store = h.store
            assert {x.ts for x in (await store.list_answers(None, 10, None))[0]} == {
                a["ts"],
                b["ts"],
            }
            assert (await store.provider_keys())["contextual"] == (b"ciphertext", "ab12")
            assert (await store.config_values([CHANNEL]))[0][1:] == ("prompt", True)
            # The delivery waiting for its retry waits in PostgreSQL as it did in SQLite.
            pending = await query(
                store, "SELECT status, state, attempts FROM deliveries WHERE state = 'pending'"
            )
            assert pending == [("thumbs_down", "pending", 1)]
            # New rows take ids after the copied ones, and are sent from PostgreSQL.
            c = await h.contextual_answer()
            await h.slack.react("U0ALICE001", "+1", c["ts"])
            await h.contextual.wait_for(2)  # a, then c (b went to AquilaX)
            [(answers, votes)] = await query(
                store, "SELECT (SELECT max(id) FROM answers), (SELECT count(*) FROM votes)"
            )
            assert (answers, votes) == (3, 4)
        finally:
            await h.bot.stop(grace=1.0)


async def test_migrate_db_says_what_is_wrong(tmp_path: Path) -> None:
    code, _, err = await cli_async(
        "migrate-db",
        "--from",
        str(tmp_path / "none.db"),
        "--to",
        "postgresql://x@127.0.0.1:1/db",
        env={},
    )
    assert code == 1 and "is not a file" in err
    source = tmp_path / "feedback.db"
    store = await Store.open(source)
    await store.close()
    code, _, err = await cli_async(
        "migrate-db", "--from", str(source), "--to", str(tmp_path / "other.db"), env={}
    )
    assert code == 2 and "--to must be a postgresql:// URL" in err
    code, _, err = await cli_async(
        "migrate-db", "--from", str(source), "--to", "postgresql://x@127.0.0.1:1/db", env={}
    )
    assert code == 2 and "cannot be opened" in err and "Traceback" not in err
