"""Slack: what arrives (checked before any work is done on it), what the bot posts (blocks
and views), the Web API client, and the one-workspace guard. May import: bot.domain,
bot.support, bot.config and bot.providers."""
