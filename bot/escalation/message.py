"""The escalation message: what the triage channel sees of an answer voted down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain import ESCALATING, Answer, Status
from bot.slack.blocks import EMOJI, escape
from storage.models import EscalationView

RESOLVE = "fb_escalation_resolve"  # the "Resolved" button; its value is "<channel> <ts>"
# The message metadata that names the answer an escalation is about: after a send cut off
# by a crash, the next one finds the message it may have posted in the triage channel.
EVENT_TYPE = "feedback_escalation"
EXCERPT_LINES = 3
EXCERPT_CHARS = 300
EXPLANATIONS = 3  # the newest explained 👎/🚩 shown
VERDICT_NAMES = {
    Status.THUMBS_UP: "👍 Thumbs up",
    Status.THUMBS_DOWN: "👎 Thumbs down",
    Status.FLAGGED: "🚩 Flagged",
    Status.REMOVED: "No vote stands",
}


@dataclass(frozen=True, slots=True)
class Message:
    text: str  # the notification's text
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any]


def excerpt(text: str) -> str:
    """The answer's first lines, as a quote. Slack gives the text as mrkdwn already (its
    &lt; escapes, mentions and links), so it is shown as it is, cut where no link or
    entity is left open."""
    lines = [line for line in text.strip().splitlines() if line.strip()][:EXCERPT_LINES]
    shown = "\n".join(lines)
    if len(shown) > EXCERPT_CHARS:
        cut = shown[: EXCERPT_CHARS - 1]
        for opener, closer in (("<", ">"), ("&", ";")):
            if cut.rfind(opener) > cut.rfind(closer):
                cut = cut[: cut.rfind(opener)]
        shown = cut.rstrip() + "…"
    return "\n".join(f"> {line}" for line in shown.splitlines())


def render(
    answer: Answer, view: EscalationView, permalink: str | None, text: str | None
) -> Message:
    """The whole message as it should stand now (every send replaces it)."""
    verdict = _verdict(view)
    where = f"<#{answer.channel}>"
    link = f"<{permalink}|an answer>" if permalink else "an answer"
    headline = f"*{VERDICT_NAMES[verdict]}* on {link} in {where}"
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=headline))]
    if text:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=excerpt(text))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_tally(view))]))
    for ballot in [b for b in view.ballots if b.explanation or b.category][:EXPLANATIONS]:
        who = "Someone" if _anonymous(view) else f"<@{ballot.user}>"
        said = f"{who} {EMOJI[ballot.status]}"
        if ballot.category:
            said += f" _{escape(ballot.category)}_"
        if ballot.explanation:
            said += f": {escape(ballot.explanation[:500])}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=said)))
    ids = " · ".join(f"`{escape(t.describe())}`" for t in answer.targets)
    opened = f"escalated <!date^{int(view.opened_at or 0)}^{{date_short_pretty}} {{time}}|then>"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{ids} · {opened}")]))
    if view.resolved_at is not None:
        when = f"<!date^{int(view.resolved_at)}^{{date_short_pretty}} {{time}}|then>"
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"✅ Resolved by <@{view.resolved_by}> {when}")]
            )
        )
    else:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Resolved",
                        action_id=RESOLVE,
                        value=f"{answer.channel} {answer.ts}",
                        style="primary",
                    )
                ]
            )
        )
    return Message(
        text=f"{VERDICT_NAMES[verdict]} on an answer in {where}",
        blocks=[b.to_dict() for b in blocks],
        metadata={
            "event_type": EVENT_TYPE,
            "event_payload": {"channel": answer.channel, "ts": answer.ts},
        },
    )


def _verdict(view: EscalationView) -> Status:
    """The newest standing 👎/🚩, else what the votes came to (a 👍, or none)."""
    if view.ballots:
        return view.ballots[0].status
    if view.counts.get(Status.THUMBS_UP):
        return Status.THUMBS_UP
    return Status.REMOVED


def _anonymous(view: EscalationView) -> bool:
    return view.triage is None or view.triage.anonymous


def _tally(view: EscalationView) -> str:
    counts = " · ".join(
        f"{EMOJI[s]} {view.counts[s]}"
        for s in (Status.THUMBS_DOWN, Status.FLAGGED, Status.THUMBS_UP)
        if view.counts.get(s)
    )
    counts = counts or "no vote stands now"
    voters = [b.user for b in view.ballots if b.status in ESCALATING]
    if not voters or _anonymous(view):
        return counts
    return f"{counts} · by {', '.join(f'<@{u}>' for u in dict.fromkeys(voters))}"
