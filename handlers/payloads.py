"""The parts of Slack's payloads we rely on, as typed models. Everything else is ignored."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from slack_bolt.response import BoltResponse

from bot.inbound import EnvelopeLevel, SlackEnvelope
from bot.validation import describe, error_list

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


# The reaction models build on EnvelopeLevel, the fields Bolt reads at each level, so that
# the fast lane (handlers/reactions.py) refuses what Bolt's door would answer with a 400.


class ReactionItem(EnvelopeLevel):
    type: str
    channel: str | None = None  # type: ignore[assignment]
    ts: str | None = None


class ReactionEvent(EnvelopeLevel):
    type: Literal["reaction_added", "reaction_removed"]
    user: str  # type: ignore[assignment]
    reaction: str
    item: ReactionItem  # type: ignore[assignment]


class ReactionEnvelope(BaseModel):
    event_id: str
    event: ReactionEvent


class ReactionCallback(SlackEnvelope):
    """A reaction event as the fast lane takes it: what the listener reads, the fields Bolt
    would check, and what says which workspace it is for. Anything that does not fit goes
    through Bolt instead, with Bolt's answers (400s, handshakes) as they were."""

    type: Literal["event_callback"]  # type: ignore[assignment]
    event_id: str
    event: ReactionEvent  # type: ignore[assignment]

    @property
    def teams(self) -> set[str | None]:
        """The workspaces whose installation may see this event, as bot/workspace.py reads
        them for Bolt's door."""
        return {self.team_id, *(a.team_id for a in self.authorizations or ())}


def parse_payload(model: type[M], body: Mapping[str, Any], what: str) -> M | BoltResponse:
    """The payload as `model`, or the 400 that says what is wrong with it (and a log line).
    Slack never sends these; when one comes, the reason should be plain to whoever looks."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        reason = describe(error_list(e), limit=5)
        log.warning("refused a malformed %s: %s", what, reason)
        return BoltResponse(status=400, body=f"malformed {what}: {reason}")


class SlackUser(BaseModel):
    id: str


class Container(BaseModel):
    type: str
    message_ts: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    is_ephemeral: bool = False


class ChannelRef(BaseModel):
    id: str


class MessageRef(BaseModel):
    ts: str
    thread_ts: str | None = None


class Action(BaseModel):
    type: str
    action_id: str
    block_id: str | None = None
    value: str | None = None
    action_ts: str


class BlockActions(BaseModel):
    type: Literal["block_actions"]
    user: SlackUser
    trigger_id: str
    container: Container
    channel: ChannelRef | None = None
    message: MessageRef | None = None
    actions: list[Action] = Field(min_length=1)

    @property
    def channel_id(self) -> str | None:
        return self.container.channel_id or (self.channel.id if self.channel else None)

    @property
    def message_ts(self) -> str | None:
        return self.container.message_ts or (self.message.ts if self.message else None)

    @property
    def thread_ts(self) -> str | None:
        return self.container.thread_ts or (self.message.thread_ts if self.message else None)


class SelectedOption(BaseModel):
    value: str


class InputValue(BaseModel):
    type: str
    value: str | None = None
    selected_option: SelectedOption | None = None


class ViewState(BaseModel):
    values: dict[str, dict[str, InputValue]] = Field(default_factory=dict)

    def value(self, block_id: str) -> str | None:
        element = self.values.get(block_id, {}).get(block_id)
        if element is None:
            return None
        if element.selected_option is not None:
            return element.selected_option.value
        return element.value


class SubmittedView(BaseModel):
    id: str
    callback_id: str
    private_metadata: str = ""
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmission(BaseModel):
    type: Literal["view_submission"]
    user: SlackUser
    view: SubmittedView


class SlashCommand(BaseModel):
    command: str
    text: str = ""
    user_id: str
    channel_id: str
    response_url: str
    trigger_id: str


class HomeOpened(BaseModel):
    class Event(BaseModel):
        type: Literal["app_home_opened"]
        user: str
        tab: str = "home"

    event: Event


class MetadataEvent(BaseModel):
    """message_metadata_posted / _updated / _deleted, as Slack documents them."""

    type: Literal["message_metadata_posted", "message_metadata_updated", "message_metadata_deleted"]
    app_id: str | None = None  # the app that posted the message
    bot_id: str | None = None
    channel_id: str
    message_ts: str
    event_ts: str | None = None  # when the metadata was posted, updated or deleted
    # What the message says now (posted, updated) and said before (updated, deleted): any
    # shape, as any app may post any metadata; bot/metadata_schema.py reads ours.
    metadata: Any = None
    previous_metadata: Any = None


class MetadataEnvelope(BaseModel):
    api_app_id: str | None = None  # this app: its own posts come back as events too
    event_id: str
    event: MetadataEvent
