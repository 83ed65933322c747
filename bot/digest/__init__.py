"""Digests: a period's figures (votes, approval and its change, what went wrong, the
lowest-rated sources, escalations, dead deliveries) posted to a channel with a chart of
approval per day, daily or weekly at FEEDBACK_DIGEST_HOUR, once per period across
processes (`schedule` says what is due, storage's digest runs are the claim, `service`
posts). May import: bot.domain, bot.support, bot.slack, bot.config, bot.delivery,
bot.providers, bot.escalation and storage."""
