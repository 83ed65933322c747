"""Delivery: the worker that carries queued verdicts to the providers, and the providers'
keys. May import: bot.domain, bot.support, bot.config, bot.providers and storage."""
