"""What users see in messages: Block Kit for answers, prompts and replies (modals and the
App Home are in bot/slack/views.py).

Action ids name the control, never the answer: a click is mapped back to its answer through
the message it sits on, looked up in SQLite. Source controls carry the source's content_id in
their block_id; it is checked against the stored answer before use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_to_mrkdwn import SlackMarkdownConverter
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextActionsBlock,
    ContextBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain import Answer, Source, Status

ANSWER_VOTE = "fb_answer_vote"  # the 👍/👎 feedback buttons under an answer
ANSWER_FLAG = "fb_answer_flag"  # the 🚩 Flag button
SOURCE_VOTE = "fb_source_vote"  # 👍/👎 on one source
OPEN_FORM = "fb_open_form"  # "Tell us what went wrong" after a 👎/🚩 reaction
SOURCE_BLOCK_PREFIX = "fb_src:"

SECTION_LIMIT = 3000  # characters of text in one section block
# Slack truncates (chat.postMessage) or refuses (msg_too_long) messages past 40,000
# characters; keep the shown answer under that, whatever the block count allows.
MESSAGE_TEXT_LIMIT = 39_000
MESSAGE_BLOCK_LIMIT = 50
FALLBACK_LIMIT = 3000  # the notification text; Slack allows far more, nobody reads it
EMOJI = {
    Status.THUMBS_UP: "👍",
    Status.THUMBS_DOWN: "👎",
    Status.FLAGGED: "🚩",
}


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Cut escaped text into pieces of at most `limit` characters, at a paragraph, line or
    word boundary where there is one, and never inside an &amp;-style entity."""
    pieces = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        # The best boundary in the second half of the window: paragraph, line, then word.
        cut = next((c for sep in ("\n\n", "\n", " ") if (c := window.rfind(sep)) >= limit // 2), -1)
        if cut < 0:  # no boundary near the end: cut hard
            cut = limit
            entity = window.rfind("&", max(0, limit - 5))
            if entity != -1 and ";" not in window[entity:]:
                cut = entity
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def shorten(text: str, limit: int) -> str:
    """Escaped text cut to `limit` characters with an ellipsis, never inside an entity."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    entity = text.rfind("&", max(0, cut - 4), cut)  # "&amp;" is the longest, 5 characters
    if entity != -1 and ";" not in text[entity:cut]:
        cut = entity
    return text[:cut] + "…"


def _feedback_buttons(action_id: str, subject: str) -> FeedbackButtonsElement:
    return FeedbackButtonsElement(
        action_id=action_id,
        positive_button=FeedbackButtonObject(
            text="👍",
            value=Status.THUMBS_UP.value,
            accessibility_label=f"Mark {subject} as helpful"[:75],
        ),
        negative_button=FeedbackButtonObject(
            text="👎",
            value=Status.THUMBS_DOWN.value,
            accessibility_label=f"Mark {subject} as not helpful"[:75],
        ),
    )


def control_blocks(sources: Sequence[Source] = ()) -> list[Block]:
    """Per-source 👍/👎 (when the answer has sources), then 👍/👎 and 🚩 for the answer."""
    blocks: list[Block] = []
    if sources:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="*Sources*")]))
    for i, source in enumerate(sources, start=1):
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"{i}. {escape(source.label)}")])
        )
        blocks.append(
            ContextActionsBlock(
                block_id=f"{SOURCE_BLOCK_PREFIX}{source.content_id}",
                elements=[_feedback_buttons(SOURCE_VOTE, f"source {i}")],
            )
        )
    blocks.append(ContextActionsBlock(elements=[_feedback_buttons(ANSWER_VOTE, "this answer")]))
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="🚩 Flag",
                    action_id=ANSWER_FLAG,
                    value=Status.FLAGGED.value,
                    accessibility_label="Flag this answer as problematic",
                )
            ]
        )
    )
    return blocks


# Markdown to Slack's mrkdwn: **bold**, [links](…), lists, code, headings.
_MRKDWN = SlackMarkdownConverter()


def answer_message(text: str, answer: Answer, *, markdown: bool = False) -> tuple[str, list[Block]]:
    """The fallback text and the blocks of an answer the bot posts itself; `markdown` text
    is shown as mrkdwn (it is escaped first, so only the Markdown makes links).

    Text too long for the blocks that are left after the controls is cut, with a note;
    Slack would reject the message otherwise.
    """
    controls = control_blocks(answer.sources)
    room = MESSAGE_BLOCK_LIMIT - len(controls)
    escaped = escape(text)
    if markdown:
        escaped = _MRKDWN.convert(escaped)
    pieces = split_text(escaped)
    if len(pieces) > room or len(escaped) > MESSAGE_TEXT_LIMIT:
        shown: list[str] = []
        for piece in pieces[: room - 1]:
            if sum(map(len, shown)) + len(piece) > MESSAGE_TEXT_LIMIT:
                break
            shown.append(piece)
        left = len(escaped) - sum(map(len, shown))
        pieces = [*shown, f"_… the answer continues for {left:,} more characters._"]
    sections: list[Block] = [SectionBlock(text=MarkdownTextObject(text=p)) for p in pieces]
    # Slack reads the notification text as mrkdwn too: escaped like the blocks, or it
    # could ping @channel or make links the answer never showed.
    return shorten(escaped, FALLBACK_LIMIT), sections + controls


def prompt_message(answer: Answer) -> tuple[str, list[Block]]:
    """The thread reply under an answer another app posted."""
    text = "Was this answer helpful?"
    head: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{text}*"))]
    return text, head + control_blocks(answer.sources)


def form_offer(vote_id: int, status: Status) -> tuple[str, list[Block]]:
    """The ephemeral offer of the form after a 👎/🚩 reaction (reactions have no trigger_id
    to open a modal with, so a button does it)."""
    text = f"Thanks for the {EMOJI[status]}. Want to tell us what went wrong?"
    return text, [
        SectionBlock(text=MarkdownTextObject(text=text)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Tell us what went wrong",
                    action_id=OPEN_FORM,
                    value=str(vote_id),
                    style="primary",
                )
            ]
        ),
    ]


_MRKDWN_SAFE = re.compile(r"[*_~`]")


def label_text(label: str) -> str:
    """A source label quoted inside a sentence: escaped, formatting characters removed."""
    return escape(_MRKDWN_SAFE.sub("", label))


def confirmation(status: Status | None, clicked: Status, subject: str) -> str:
    """The ephemeral reply to a click: what was recorded and how to undo it."""
    emoji = EMOJI[clicked]
    if status is None:
        return f"Your {emoji} on {subject} is withdrawn."
    return (
        f"Thanks! Your {emoji} on {subject} is recorded. Only you can see this;"
        f" click {emoji} again to take it back."
    )
