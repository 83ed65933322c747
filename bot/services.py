"""What listeners and routes are given: the services the composition root (bot/app.py)
builds once. A leaf: it imports the services' types, never the root, so handlers/ and
bot/web.py depend on this module and not on the wiring."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.answer_admin import AnswerAdmin
from bot.answers import Answers
from bot.background import Background
from bot.channel_settings import ChannelSettings
from bot.delivery import DeliveryWorker
from bot.feedback_command.execute import FeedbackCommand
from bot.health import Health
from bot.keys import Keys
from bot.late_lookup import LateLookup
from bot.logs import Redactor
from bot.metadata_registrar import MetadataRegistrar
from bot.metrics import Metrics
from bot.permissions import Permissions
from bot.settings import Settings
from bot.votes import Votes
from storage import Store


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the bot is in the workspace, from auth.test at start-up."""

    team_id: str
    bot_user_id: str
    bot_id: str
    scopes: frozenset[str] = frozenset()  # what the bot token was granted


@dataclass(slots=True)
class Services:
    """What listeners and routes need; built once per FeedbackBot."""

    settings: Settings
    store: Store
    channel_settings: ChannelSettings
    keys: Keys
    answers: Answers
    answer_admin: AnswerAdmin
    metadata: MetadataRegistrar  # answers that register themselves (message metadata)
    late_lookup: LateLookup
    votes: Votes
    worker: DeliveryWorker
    feedback_command: FeedbackCommand
    permissions: Permissions
    slack: AsyncWebClient
    identity: Identity
    background: Background
    redactor: Redactor
    health: Health
    metrics: Metrics | None  # None unless FEEDBACK_METRICS=1
