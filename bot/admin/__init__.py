"""`/feedback`, in three steps: `grammar` turns the text into a typed invocation (or a
UsageError with the usage line), `execute` carries it out against the configuration, the
keys and the store, and `render` writes the Slack mrkdwn reply; `permissions` says who may
change what. May import: bot.domain, bot.support, bot.config, bot.providers, bot.slack,
bot.delivery, bot.answers, bot.escalation, bot.digest and storage."""
