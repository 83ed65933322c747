"""The parts of Slack's payloads we rely on, as typed models. Everything else is ignored."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError
from slack_bolt.response import BoltResponse

from bot.slack.envelope import EnvelopeLevel, SlackEnvelope
from bot.support.validation import EventId, SlackId, SlackTs, describe, error_list

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# Every id, ts and name Slack sends is bounded here (bot/support/validation.py has the shapes), so
# that whatever is stored or used as a key is the size Slack's own would be. A payload that
# does not fit is refused whole with a 400 that names the field (`parse_payload`); over
# Socket Mode that 400 is acknowledged and dropped, as any malformed envelope is.
# Lengths are Slack's documented limits where it has them (action_id, block_id: 255; a
# button's value: 2,000; private_metadata: 3,000), generous elsewhere.
Name = Annotated[str, Field(min_length=1, max_length=255)]
Short = Annotated[str, Field(max_length=255)]


# The reaction models build on EnvelopeLevel, the fields Bolt reads at each level, so that
# the fast lane (handlers/reactions.py) refuses what Bolt's door would answer with a 400.
# Where one narrows a field to a type that is not a subtype of the base's, pydantic takes the
# new field but mypy sees an incompatible override: those lines say so with an ignore.


class ReactionItem(EnvelopeLevel):
    type: Short
    channel: SlackId | None = None  # type: ignore[assignment]  # an item's channel is an id
    ts: SlackTs | None = None


class ReactionEvent(EnvelopeLevel):
    type: Literal["reaction_added", "reaction_removed"]
    user: SlackId  # type: ignore[assignment]  # a reaction's user is an id, and required
    reaction: Name  # custom emoji names are at most 100 characters, and a skin tone
    item: ReactionItem


class ReactionEnvelope(BaseModel):
    event_id: EventId
    event: ReactionEvent


class ReactionCallback(SlackEnvelope):
    """A reaction event as the fast lane takes it: what the listener reads, the fields Bolt
    would check, and what says which workspace it is for. Anything that does not fit goes
    through Bolt instead, with Bolt's answers (400s, handshakes) as they were."""

    type: Literal["event_callback"]
    event_id: EventId
    event: ReactionEvent  # type: ignore[assignment]  # not a subclass of the envelope's _Event

    @property
    def teams(self) -> set[str | None]:
        """The workspaces whose installation may see this event, as bot/slack/workspace.py reads
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
    id: SlackId


class Container(BaseModel):
    type: Short
    message_ts: SlackTs | None = None
    channel_id: SlackId | None = None
    thread_ts: SlackTs | None = None
    is_ephemeral: bool = False


class ChannelRef(BaseModel):
    id: SlackId


class MessageRef(BaseModel):
    ts: SlackTs
    thread_ts: SlackTs | None = None


class Action(BaseModel):
    type: Short
    action_id: Name
    block_id: Name | None = None
    value: Annotated[str, Field(max_length=2000)] | None = None
    action_ts: SlackTs


class BlockActions(BaseModel):
    type: Literal["block_actions"]
    user: SlackUser
    trigger_id: Name
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
    id: SlackId
    callback_id: Short
    private_metadata: Annotated[str, Field(max_length=3000)] = ""
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmission(BaseModel):
    type: Literal["view_submission"]
    user: SlackUser
    view: SubmittedView


class SlashCommand(BaseModel):
    command: Name
    text: str = ""
    user_id: SlackId
    channel_id: SlackId
    response_url: Annotated[str, Field(max_length=2000)]
    trigger_id: Name


class HomeOpened(BaseModel):
    class Event(BaseModel):
        type: Literal["app_home_opened"]
        user: SlackId
        tab: Short = "home"

    event: Event


class MetadataEvent(BaseModel):
    """message_metadata_posted / _updated / _deleted, as Slack documents them."""

    type: Literal["message_metadata_posted", "message_metadata_updated", "message_metadata_deleted"]
    app_id: SlackId | None = None  # the app that posted the message
    bot_id: SlackId | None = None
    channel_id: SlackId
    message_ts: SlackTs
    event_ts: SlackTs | None = None  # when the metadata was posted, updated or deleted
    # What the message says now (posted, updated) and said before (updated, deleted): any
    # shape, as any app may post any metadata; bot/answers/metadata.py reads ours.
    metadata: Any = None
    previous_metadata: Any = None


class MetadataEnvelope(BaseModel):
    api_app_id: SlackId | None = None  # this app: its own posts come back as events too
    event_id: EventId
    event: MetadataEvent


class MessageEvent(BaseModel):
    """A message, an app_mention, or a message in an assistant thread: what Ask the AI reads.
    A subtype (an edit, a deletion, a bot's message, a join) is never a question."""

    type: Literal["message", "app_mention"]
    subtype: Short | None = None
    channel: SlackId
    channel_type: Short | None = None  # im for a direct message
    user: SlackId | None = None
    bot_id: SlackId | None = None
    text: Annotated[str, Field(max_length=40_000)] = ""
    ts: SlackTs
    thread_ts: SlackTs | None = None


class MessageEnvelope(BaseModel):
    event_id: EventId
    event: MessageEvent
