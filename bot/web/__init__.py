"""The HTTP server: one module per group of routes. May import bot.services and everything
below it; handlers/ is wired in only by bot.app."""
