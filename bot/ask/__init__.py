"""Ask the AI: the bot answers questions asked in Slack through a Contextual agent, and the
answers it posts collect feedback like any other. May import: bot.domain, bot.support,
bot.config, bot.providers, bot.answers and storage."""

from bot.ask.agent import ContextualAgent
from bot.ask.service import Asker

__all__ = ["Asker", "ContextualAgent"]
