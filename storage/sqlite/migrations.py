"""The schema, as an ordered list of migrations. `PRAGMA user_version` records how many ran.

Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: answers, votes, the delivery outbox and processed Slack event ids.
    """
    CREATE TABLE answers (
        id            INTEGER PRIMARY KEY,
        channel       TEXT NOT NULL,
        ts            TEXT NOT NULL,
        provider      TEXT NOT NULL CHECK (provider IN ('contextual', 'aquilax')),
        agent_id      TEXT,
        message_id    TEXT,
        request_id    TEXT,
        org           TEXT,
        grp           TEXT,
        created_at    REAL NOT NULL,
        UNIQUE (channel, ts)
    );
    CREATE TABLE answer_sources (
        answer_id  INTEGER NOT NULL REFERENCES answers (id),
        position   INTEGER NOT NULL,
        content_id TEXT NOT NULL,
        label      TEXT NOT NULL,
        PRIMARY KEY (answer_id, content_id)
    ) WITHOUT ROWID;
    -- Every vote ever cast stays (for statistics); a withdrawn vote gets withdrawn_at.
    -- content_id '' is the answer itself; otherwise one of its sources.
    CREATE TABLE votes (
        id           INTEGER PRIMARY KEY,
        answer_id    INTEGER NOT NULL REFERENCES answers (id),
        content_id   TEXT NOT NULL DEFAULT '',
        user_id      TEXT NOT NULL,
        origin       TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('thumbs_up', 'thumbs_down', 'flagged')),
        explanation  TEXT,
        category     TEXT,
        cast_at      REAL NOT NULL,
        withdrawn_at REAL
    );
    CREATE UNIQUE INDEX votes_standing ON votes (answer_id, content_id, user_id, origin)
        WHERE withdrawn_at IS NULL;
    CREATE INDEX votes_cast_at ON votes (cast_at);
    -- The outbox. A row carries one verdict for one slot (answer_id, content_id).
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        answer_id       INTEGER NOT NULL REFERENCES answers (id),
        content_id      TEXT NOT NULL DEFAULT '',
        status          TEXT NOT NULL
                        CHECK (status IN ('thumbs_up', 'thumbs_down', 'flagged', 'removed')),
        explanation     TEXT,
        category        TEXT,
        state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN
                        ('pending', 'sending', 'delivered', 'skipped', 'dead', 'superseded')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        provider_ref    TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX deliveries_slot ON deliveries (answer_id, content_id, id);
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
    CREATE INDEX deliveries_sending ON deliveries (answer_id, content_id) WHERE state = 'sending';
    CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
    CREATE TABLE processed_events (
        event_id    TEXT PRIMARY KEY,
        received_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: answers the bot posts itself, "Was this helpful?" prompts under answers of other apps,
    # and per-workspace / per-channel configuration with its audit log.
    """
    ALTER TABLE answers ADD COLUMN posted_by_bot INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE answers ADD COLUMN thread_ts TEXT;
    ALTER TABLE answers ADD COLUMN prompt_ts TEXT;
    CREATE UNIQUE INDEX answers_prompt ON answers (channel, prompt_ts) WHERE prompt_ts IS NOT NULL;
    CREATE INDEX answers_contextual ON answers (message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX answers_aquilax ON answers (request_id) WHERE request_id IS NOT NULL;
    -- scope is '*' for the workspace defaults, or a channel id; value is JSON.
    CREATE TABLE config (
        scope      TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    ) WITHOUT ROWID;
    CREATE TABLE audit_log (
        id        INTEGER PRIMARY KEY,
        at        REAL NOT NULL,
        user_id   TEXT NOT NULL,
        scope     TEXT NOT NULL,
        key       TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT
    );
    """,
    # 3: provider keys entered through `/feedback setup`, encrypted (Fernet) with
    # FEEDBACK_SECRET_KEY. Only the ciphertext and the last four characters are stored.
    """
    CREATE TABLE provider_keys (
        provider   TEXT PRIMARY KEY CHECK (provider IN ('contextual', 'aquilax')),
        ciphertext BLOB NOT NULL,
        last4      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        updated_by TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 4: the newest standing vote of a slot in one index step (rowid order within the slot),
    # so that settling a slot with many votes does not read them all.
    """
    CREATE INDEX votes_slot_newest ON votes (answer_id, content_id) WHERE withdrawn_at IS NULL;
    """,
    # 5: claims that name their owner and carry a lease, so that a second process on the same
    # file (an overlapping deploy) or a restart never sends a slot's verdicts out of order.
    # sent_at is when the row's latest send began: a send cut off by a crash may still be
    # applied by the provider until its request timeout has passed since then, so the
    # lease never ends before that. Rows an older feedback-bot left in flight get a lease
    # from their last update. One row per slot in flight is a constraint, not a habit:
    # where the old claim let two fly, the older is dropped (the newer carries the verdict).
    """
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE deliveries ADD COLUMN lease_until REAL;
    ALTER TABLE deliveries ADD COLUMN sent_at REAL;
    UPDATE deliveries SET claimed_by = 'feedback-bot before schema 5',
        sent_at = updated_at, lease_until = updated_at + 30 WHERE state = 'sending';
    UPDATE deliveries SET state = 'superseded' WHERE state = 'sending' AND EXISTS (
        SELECT 1 FROM deliveries n WHERE n.state = 'sending' AND n.answer_id = deliveries.answer_id
        AND n.content_id = deliveries.content_id AND n.id > deliveries.id);
    DROP INDEX deliveries_sending;
    CREATE UNIQUE INDEX deliveries_in_flight ON deliveries (answer_id, content_id)
        WHERE state = 'sending';
    -- One row that /healthz rewrites to prove the database still takes writes.
    CREATE TABLE health_probe (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        written_at REAL NOT NULL,
        written_by TEXT NOT NULL
    );
    """,
    # 6: answers the bot is posting right now, one row per provider answer and channel, so
    # that the same registration sent twice at once (by one process or two) posts one
    # message. A row outlives a crashed poster only until expires_at.
    """
    CREATE TABLE post_reservations (
        channel    TEXT NOT NULL,
        provider   TEXT NOT NULL,
        target     TEXT NOT NULL,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (channel, provider, target)
    ) WITHOUT ROWID;
    """,
    # 7: answers can be removed (a wrong mapping, say): the row stays, with removed_at, so
    # that its votes and deliveries keep their answer for statistics, and the message can be
    # registered afresh. UNIQUE (channel, ts) was part of the table, so the table is built
    # again with the rule as a partial index; SQLite's way to rebuild a table that others
    # reference needs foreign keys off meanwhile (storage/sqlite/db.py: migrate checks them after).
    """
    -- foreign keys off
    CREATE TABLE answers_new (
        id            INTEGER PRIMARY KEY,
        channel       TEXT NOT NULL,
        ts            TEXT NOT NULL,
        provider      TEXT NOT NULL CHECK (provider IN ('contextual', 'aquilax')),
        agent_id      TEXT,
        message_id    TEXT,
        request_id    TEXT,
        org           TEXT,
        grp           TEXT,
        created_at    REAL NOT NULL,
        posted_by_bot INTEGER NOT NULL DEFAULT 0,
        thread_ts     TEXT,
        prompt_ts     TEXT,
        removed_at    REAL
    );
    INSERT INTO answers_new (id, channel, ts, provider, agent_id, message_id, request_id, org,
        grp, created_at, posted_by_bot, thread_ts, prompt_ts)
        SELECT id, channel, ts, provider, agent_id, message_id, request_id, org, grp,
        created_at, posted_by_bot, thread_ts, prompt_ts FROM answers;
    DROP TABLE answers;
    ALTER TABLE answers_new RENAME TO answers;
    CREATE UNIQUE INDEX answers_message ON answers (channel, ts) WHERE removed_at IS NULL;
    CREATE UNIQUE INDEX answers_prompt ON answers (channel, prompt_ts)
        WHERE prompt_ts IS NOT NULL AND removed_at IS NULL;
    CREATE INDEX answers_contextual ON answers (message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX answers_aquilax ON answers (request_id) WHERE request_id IS NOT NULL;
    CREATE INDEX answers_channel ON answers (channel, id) WHERE removed_at IS NULL;
    """,
    # 8: answers can register themselves through Slack message metadata. Each answer
    # records where its mapping came from ('metadata' event, 'scan' of a channel's history,
    # late 'lookup'; NULL: the HTTP API, the CLI or the bot's own post) and which app posted
    # it, so that /feedback status can say when metadata last registered one. A reaction on
    # a message not known yet is held while the bot looks the message up (late lookup), so
    # that a crash meanwhile loses nothing; the registration of that message applies it.
    """
    ALTER TABLE answers ADD COLUMN registered_via TEXT;
    ALTER TABLE answers ADD COLUMN registered_by_app TEXT;
    ALTER TABLE answers ADD COLUMN metadata_ts REAL;
    CREATE INDEX answers_via_metadata ON answers (id) WHERE registered_via IS NOT NULL;
    CREATE TABLE held_reactions (
        id          INTEGER PRIMARY KEY,
        channel     TEXT NOT NULL,
        ts          TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        origin      TEXT NOT NULL,
        action      TEXT NOT NULL CHECK (action IN ('add', 'withdraw')),
        status      TEXT,
        event_id    TEXT,
        received_at REAL NOT NULL
    );
    CREATE INDEX held_reactions_message ON held_reactions (channel, ts, id);
    """,
    # 9: LangSmith and Langfuse answers: a run (and its trace), a trace (and an observation in
    # it). The provider's CHECK was part of the tables, so answers and provider_keys are built
    # again with the new list, as migration 7 did.
    """
    -- foreign keys off
    CREATE TABLE answers_new (
        id                INTEGER PRIMARY KEY,
        channel           TEXT NOT NULL,
        ts                TEXT NOT NULL,
        provider          TEXT NOT NULL
                          CHECK (provider IN ('contextual', 'aquilax', 'langsmith', 'langfuse')),
        agent_id          TEXT,
        message_id        TEXT,
        request_id        TEXT,
        org               TEXT,
        grp               TEXT,
        created_at        REAL NOT NULL,
        posted_by_bot     INTEGER NOT NULL DEFAULT 0,
        thread_ts         TEXT,
        prompt_ts         TEXT,
        removed_at        REAL,
        registered_via    TEXT,
        registered_by_app TEXT,
        metadata_ts       REAL,
        run_id            TEXT,
        trace_id          TEXT,
        observation_id    TEXT
    );
    INSERT INTO answers_new (id, channel, ts, provider, agent_id, message_id, request_id, org,
        grp, created_at, posted_by_bot, thread_ts, prompt_ts, removed_at, registered_via,
        registered_by_app, metadata_ts)
        SELECT id, channel, ts, provider, agent_id, message_id, request_id, org, grp,
        created_at, posted_by_bot, thread_ts, prompt_ts, removed_at, registered_via,
        registered_by_app, metadata_ts FROM answers;
    DROP TABLE answers;
    ALTER TABLE answers_new RENAME TO answers;
    CREATE UNIQUE INDEX answers_message ON answers (channel, ts) WHERE removed_at IS NULL;
    CREATE UNIQUE INDEX answers_prompt ON answers (channel, prompt_ts)
        WHERE prompt_ts IS NOT NULL AND removed_at IS NULL;
    CREATE INDEX answers_contextual ON answers (message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX answers_aquilax ON answers (request_id) WHERE request_id IS NOT NULL;
    CREATE INDEX answers_langsmith ON answers (run_id) WHERE run_id IS NOT NULL;
    CREATE INDEX answers_langfuse ON answers (trace_id) WHERE trace_id IS NOT NULL;
    CREATE INDEX answers_channel ON answers (channel, id) WHERE removed_at IS NULL;
    CREATE INDEX answers_via_metadata ON answers (id) WHERE registered_via IS NOT NULL;
    CREATE TABLE provider_keys_new (
        provider   TEXT PRIMARY KEY
                   CHECK (provider IN ('contextual', 'aquilax', 'langsmith', 'langfuse')),
        ciphertext BLOB NOT NULL,
        last4      TEXT NOT NULL,
        updated_at REAL NOT NULL,
        updated_by TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO provider_keys_new SELECT provider, ciphertext, last4, updated_at, updated_by
        FROM provider_keys;
    DROP TABLE provider_keys;
    ALTER TABLE provider_keys_new RENAME TO provider_keys;
    """,
    # 10: an answer may have several targets, each with its own deliveries. The provider and
    # its ids move from answers to answer_targets (each answer's become its target 0; answers
    # is built again without them); a source belongs to one target (the Contextual one that
    # knows it), and a delivery goes to one target: its slot in the outbox is (answer,
    # target, content_id), with one row in flight per slot as before.
    """
    -- foreign keys off
    CREATE TABLE answer_targets (
        answer_id      INTEGER NOT NULL REFERENCES answers (id),
        position       INTEGER NOT NULL,
        provider       TEXT NOT NULL
                       CHECK (provider IN ('contextual', 'aquilax', 'langsmith', 'langfuse')),
        agent_id       TEXT,
        message_id     TEXT,
        request_id     TEXT,
        org            TEXT,
        grp            TEXT,
        run_id         TEXT,
        trace_id       TEXT,
        observation_id TEXT,
        PRIMARY KEY (answer_id, position)
    ) WITHOUT ROWID;
    INSERT INTO answer_targets (answer_id, position, provider, agent_id, message_id,
        request_id, org, grp, run_id, trace_id, observation_id)
        SELECT id, 0, provider, agent_id, message_id, request_id, org, grp, run_id, trace_id,
        observation_id FROM answers;
    CREATE INDEX answer_targets_contextual ON answer_targets (message_id)
        WHERE message_id IS NOT NULL;
    CREATE INDEX answer_targets_aquilax ON answer_targets (request_id)
        WHERE request_id IS NOT NULL;
    CREATE INDEX answer_targets_langsmith ON answer_targets (run_id) WHERE run_id IS NOT NULL;
    CREATE INDEX answer_targets_langfuse ON answer_targets (trace_id) WHERE trace_id IS NOT NULL;
    CREATE TABLE answers_new (
        id                INTEGER PRIMARY KEY,
        channel           TEXT NOT NULL,
        ts                TEXT NOT NULL,
        created_at        REAL NOT NULL,
        posted_by_bot     INTEGER NOT NULL DEFAULT 0,
        thread_ts         TEXT,
        prompt_ts         TEXT,
        removed_at        REAL,
        registered_via    TEXT,
        registered_by_app TEXT,
        metadata_ts       REAL
    );
    INSERT INTO answers_new SELECT id, channel, ts, created_at, posted_by_bot, thread_ts,
        prompt_ts, removed_at, registered_via, registered_by_app, metadata_ts FROM answers;
    DROP TABLE answers;
    ALTER TABLE answers_new RENAME TO answers;
    CREATE UNIQUE INDEX answers_message ON answers (channel, ts) WHERE removed_at IS NULL;
    CREATE UNIQUE INDEX answers_prompt ON answers (channel, prompt_ts)
        WHERE prompt_ts IS NOT NULL AND removed_at IS NULL;
    CREATE INDEX answers_channel ON answers (channel, id) WHERE removed_at IS NULL;
    CREATE INDEX answers_via_metadata ON answers (id) WHERE registered_via IS NOT NULL;
    ALTER TABLE answer_sources ADD COLUMN target INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE deliveries ADD COLUMN target INTEGER NOT NULL DEFAULT 0;
    DROP INDEX deliveries_slot;
    CREATE INDEX deliveries_slot ON deliveries (answer_id, target, content_id, id);
    DROP INDEX deliveries_in_flight;
    CREATE UNIQUE INDEX deliveries_in_flight ON deliveries (answer_id, target, content_id)
        WHERE state = 'sending';
    """,
    # 11: questions the bot answers through a Contextual agent (bot/ask/): each claimed
    # once, by one holder until it expires, so that Slack's retries and a second replica do
    # not answer twice; and per Slack thread, the agent's conversation it continues.
    """
    CREATE TABLE ask_questions (
        channel    TEXT NOT NULL,
        ts         TEXT NOT NULL,
        thread_ts  TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('asking', 'answered', 'failed')),
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL,
        answer_ts  TEXT,
        asked_at   REAL NOT NULL,
        PRIMARY KEY (channel, ts)
    ) WITHOUT ROWID;
    CREATE INDEX ask_questions_open ON ask_questions (channel, thread_ts, user_id)
        WHERE state = 'asking';
    CREATE TABLE ask_threads (
        channel         TEXT NOT NULL,
        thread_ts       TEXT NOT NULL,
        agent_id        TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        updated_at      REAL NOT NULL,
        PRIMARY KEY (channel, thread_ts)
    ) WITHOUT ROWID;
    """,
    # 12: feedback that reaches people (bot/escalation/, bot/digest/). An escalation's
    # messages are deliveries (target -1, bot.domain.ESCALATION); this table says when the
    # answer was brought to its triage channel and who resolved it. A digest run is one
    # period of one scope's digest: its row is the claim (one process posts it, once), and
    # its retries and failure, as a delivery's.
    """
    CREATE TABLE escalations (
        answer_id   INTEGER PRIMARY KEY REFERENCES answers (id),
        opened_at   REAL NOT NULL,
        resolved_by TEXT,
        resolved_at REAL
    );
    CREATE INDEX escalations_open ON escalations (answer_id) WHERE resolved_at IS NULL;
    CREATE TABLE digest_runs (
        id              INTEGER PRIMARY KEY,
        scope           TEXT NOT NULL,
        period          TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'now')),
        period_start    REAL NOT NULL,
        period_end      REAL NOT NULL,
        channel         TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        claimed_by      TEXT,
        lease_until     REAL,
        last_error      TEXT,
        ref             TEXT,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL,
        UNIQUE (scope, period, period_end)
    );
    CREATE INDEX digest_runs_due ON digest_runs (next_attempt_at)
        WHERE state IN ('pending', 'sending');
    """,
)
