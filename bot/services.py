"""What listeners and routes are given: the services the composition root (bot/app.py)
builds once. A leaf: it imports the services' types, never the root, so handlers/ and
bot/web/ depend on this module and not on the wiring."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.admin.execute import FeedbackCommand
from bot.admin.permissions import Permissions
from bot.answers.admin import AnswerAdmin
from bot.answers.late_lookup import LateLookup
from bot.answers.register import Answers
from bot.answers.self_registration import MetadataRegistrar
from bot.ask.service import Asker
from bot.config.channels import ChannelSettings
from bot.config.settings import Settings
from bot.delivery.keys import Keys
from bot.delivery.worker import DeliveryWorker
from bot.support.background import Background
from bot.support.health import Health
from bot.support.logs import Redactor
from bot.support.metrics import Metrics
from bot.votes.recording import Votes
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
    asker: Asker | None = None  # answers questions (Ask the AI); None without Slack's Web API
