"""Slack views: the "what went wrong?" form, the setup form for provider keys, the App Home,
and the context a modal carries from where it was opened to its submission."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    Block,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import Status
from bot.providers import PROVIDERS
from bot.slack.blocks import EMOJI, escape, split_text
from bot.slack.inbound import Malformed, load_json_object
from bot.support.validation import SLACK_ID, SLACK_TS

FORM_CALLBACK = "fb_form"
EXPLANATION_LIMIT = 2000

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("inaccurate", "Inaccurate or wrong"),
    ("incomplete", "Incomplete"),
    ("irrelevant", "Doesn't answer the question"),
    ("outdated", "Outdated"),
    ("unsafe", "Harmful or inappropriate"),
    ("other", "Something else"),
)
CATEGORY_IDS = frozenset(c for c, _ in CATEGORIES)


# Vote ids are SQLite INTEGER / PostgreSQL BIGINT keys: a larger number is no vote, and
# handing it to either driver raises (OverflowError, DataError) instead of finding nothing.
MAX_VOTE_ID = 2**63 - 1


class MalformedContext(ValueError):
    """private_metadata that is not what this bot wrote; the message says why, naming the
    field, never echoing the value."""


@dataclass(frozen=True, slots=True)
class ViewContext:
    """What a modal carries in its private_metadata, from the click or command that opened
    it to its submission: where to confirm, and for the form, the vote it explains (checked
    against the submitting user, never trusted to be theirs).

    The submission that brings it back is signed, but the metadata is still only what a
    client sent: `decode` takes exactly what `encode` writes and refuses anything else."""

    channel: str | None = None
    thread_ts: str | None = None
    vote: int | None = None

    def encode(self) -> str:
        return json.dumps({"vote": self.vote, "channel": self.channel, "thread_ts": self.thread_ts})

    @classmethod
    def decode(cls, raw: str) -> ViewContext:
        """Raises MalformedContext when the metadata is not ours: not a JSON object (parsed
        bounded in depth, unlike json.loads, which recurses), or a field of the wrong type
        or shape. A vote is a JSON integer in range: not 1.0, not true (== 1 in Python), not
        "1", not 1e400."""
        try:
            meta = load_json_object(raw, "private_metadata")
        except Malformed as e:
            raise MalformedContext(str(e)) from None
        vote = meta.get("vote")
        if vote is not None and not (type(vote) is int and 0 < vote <= MAX_VOTE_ID):
            raise MalformedContext(
                "private_metadata.vote: should be a vote id, a whole number from 1 to"
                f" {MAX_VOTE_ID}"
            )
        channel, thread_ts = meta.get("channel"), meta.get("thread_ts")
        if channel is not None and not (isinstance(channel, str) and SLACK_ID.fullmatch(channel)):
            raise MalformedContext("private_metadata.channel: should be a Slack channel id")
        if thread_ts is not None and not (
            isinstance(thread_ts, str) and SLACK_TS.fullmatch(thread_ts)
        ):
            raise MalformedContext("private_metadata.thread_ts: should be a Slack timestamp")
        return cls(channel, thread_ts, vote)


def vote_id(raw: str | None) -> int | None:
    """A vote id as a button's value carries it (`bot/slack/blocks.py: form_offer`), or None.
    Only ASCII digits count (str.isdigit() passes "²", which int() refuses), and only ids
    the database can hold."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(MAX_VOTE_ID)):
        return None
    number = int(raw)
    return number if 0 < number <= MAX_VOTE_ID else None


def feedback_form(
    vote_id: int, status: Status, subject: str, *, channel: str, thread_ts: str | None
) -> View:
    """The "what went wrong?" modal for one standing 👎/🚩 vote. The metadata names the
    vote (checked against the submitting user) and where to confirm."""
    emoji = EMOJI[status]
    return View(
        type="modal",
        callback_id=FORM_CALLBACK,
        private_metadata=ViewContext(channel, thread_ts, vote_id).encode(),
        title=PlainTextObject(text="What went wrong?"),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Skip"),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Your {emoji} on {escape(subject)} is recorded. Telling us what went"
                    " wrong is optional, and helps most. Nobody in the channel sees this."
                )
            ),
            InputBlock(
                block_id="category",
                optional=True,
                label=PlainTextObject(text="What kind of problem?"),
                element=StaticSelectElement(
                    action_id="category",
                    placeholder=PlainTextObject(text="Pick one"),
                    options=[Option(value=v, text=label) for v, label in CATEGORIES],
                ),
            ),
            InputBlock(
                block_id="explanation",
                optional=True,
                label=PlainTextObject(text="What went wrong?"),
                hint=PlainTextObject(text=f"Up to {EXPLANATION_LIMIT:,} characters."),
                element=PlainTextInputElement(
                    action_id="explanation",
                    multiline=True,
                    max_length=EXPLANATION_LIMIT,
                    placeholder=PlainTextObject(text="e.g. The refund window is 30 days, not 14."),
                ),
            ),
        ],
    )


SETUP_CALLBACK = "fb_setup"
# provider -> the block (and action) id of its key's field in the setup form, and its label
KEY_INPUTS = {name: f"{name}_key" for name in PROVIDERS}
KEY_LABELS = {name: spec.key_label for name, spec in PROVIDERS.items()}
KEY_LIMIT = 500  # the field's max_length


def setup_view(channel: str, statuses: dict[str, str]) -> View:
    """The modal where admins enter provider keys: they never travel through a channel."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text="Keys are stored encrypted and are never shown again: status shows only"
                " whether one is set, and its last four characters. Leave a field empty to keep"
                " the current key."
            )
        )
    ]
    for provider, block_id in KEY_INPUTS.items():
        blocks.append(
            InputBlock(
                block_id=block_id,
                optional=True,
                label=PlainTextObject(text=KEY_LABELS[provider]),
                hint=PlainTextObject(text=f"Now: {statuses[provider]}"),
                element=PlainTextInputElement(
                    action_id=block_id,
                    max_length=KEY_LIMIT,
                    placeholder=PlainTextObject(text="Paste the key"),
                ),
            )
        )
    return View(
        type="modal",
        callback_id=SETUP_CALLBACK,
        private_metadata=ViewContext(channel).encode(),
        title=PlainTextObject(text="feedback-bot keys"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )


def home_view(sections: Sequence[str]) -> View:
    """The App Home tab: mrkdwn sections, each within Slack's section limit."""
    blocks: list[Block] = []
    for text in sections:
        blocks += [SectionBlock(text=MarkdownTextObject(text=p)) for p in split_text(text)]
    return View(type="home", blocks=blocks[:100])
