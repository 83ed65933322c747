"""Votes: the one door every reaction, button and form goes through, and the export. May
import: bot.domain, bot.support, bot.delivery, bot.answers and storage."""
