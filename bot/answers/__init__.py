"""Answers: registering them (the API, self-registration through message metadata, a channel
scan, the late lookup), looking them up and removing them. May import: bot.domain,
bot.support, bot.config, bot.providers, bot.slack and storage."""
