"""Answers that register themselves: the one place that turns a message carrying answer
metadata (bot/answers/metadata.py) into a registration, whichever door it came through —
the `message_metadata_*` events (handlers/metadata.py), `feedback-bot answers scan`
(bot/answers/scan.py) or the late lookup of a reacted message (bot/answers/late_lookup.py).

Only metadata from apps an admin trusts counts: a registered answer spends our provider
key, and any app in a channel can post metadata. The bot's own posts carry the same
metadata (bot/answers/register.py) and always count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import ValidationError

from bot.answers.metadata import MetadataError, PostedMetadata, registration_payload
from bot.answers.register import Answers
from bot.answers.request import answer_errors
from bot.config.channels import ChannelSettings
from bot.domain import Answer, Provenance, Registration
from bot.providers.registration import AnswerIn
from bot.support.validation import describe

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    REPLACED = "replaced"
    ANSWER_REMOVED = "removed"  # an admin removed the answer on that message: it stays removed
    UNTRUSTED = "untrusted"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class SelfRegistration:
    outcome: Outcome
    answer: Answer | None = None  # the stored mapping (for a conflict: the one already there)
    prompt_due: bool = False  # prompt="later": the caller is to post the prompt


_OUTCOMES = {
    Registration.CREATED: Outcome.CREATED,
    Registration.UNCHANGED: Outcome.UNCHANGED,
    Registration.CONFLICT: Outcome.CONFLICT,
    Registration.REPLACED: Outcome.REPLACED,
    Registration.ANSWER_REMOVED: Outcome.ANSWER_REMOVED,
}


class MetadataRegistrar:
    """Registers the answer a message's metadata describes, if a trusted app (or the bot
    itself) posted it, under the API's rules: the same validation and channel defaults,
    created / unchanged / conflict."""

    def __init__(
        self, answers: Answers, channel_settings: ChannelSettings, bot_id: str | None
    ) -> None:
        self._answers = answers
        self._channel_settings = channel_settings
        self._bot_id = bot_id  # the bot's own posts are trusted

    def is_own(self, posted: PostedMetadata) -> bool:
        return self._bot_id is not None and posted.bot_id == self._bot_id

    async def trusts(self, posted: PostedMetadata) -> bool:
        if self.is_own(posted):
            return True
        config = await self._channel_settings.for_channel(posted.channel)
        return posted.app_id is not None and posted.app_id in config.trusted_apps

    async def register(
        self,
        posted: PostedMetadata,
        via: Literal["metadata", "scan", "lookup"],
        *,
        replace_unvoted: bool = False,
        prompt: Literal["now", "later", "no"] = "no",
    ) -> SelfRegistration:
        """Register the answer `posted` describes. `replace_unvoted`
        (message_metadata_updated): a different mapping there is replaced if no vote has
        touched it and this metadata is newer (storage/sqlite/composite.py: register)."""
        where = f"{posted.channel}/{posted.ts}"
        if not await self.trusts(posted):
            log.debug(
                "ignored answer metadata on %s from app %s: not a trusted app"
                " (/feedback trust add)",
                where,
                posted.app_id,
            )
            return SelfRegistration(Outcome.UNTRUSTED)
        app = posted.app_id or "?"
        try:
            request = await self._request(posted, posted.metadata)
        except MetadataError as e:
            return self._refused(where, app, str(e))
        except ValidationError as e:
            return self._refused(where, app, describe(answer_errors(e)))
        own = self.is_own(posted)
        registered = await self._answers.register(
            request,
            provenance=Provenance(via, posted.app_id, posted.metadata_ts),
            posted_by_bot=own,
            replace_unvoted=replace_unvoted,
            prompt="no" if own else prompt,
        )
        if registered.outcome is Registration.ANSWER_REMOVED:
            log.info(
                "answer metadata on %s from app %s not registered: an admin removed the answer"
                " on that message (`feedback-bot answers add` registers it again)",
                where,
                app,
            )
        return SelfRegistration(
            _OUTCOMES[registered.outcome], registered.answer, registered.prompt_due
        )

    async def _request(self, posted: PostedMetadata, metadata: object) -> AnswerIn:
        data = registration_payload(
            metadata, posted.channel, posted.ts, posted.thread_ts, thread_known=posted.thread_known
        )
        return await self._answers.validate(data)

    def _refused(self, where: str, app: str, reason: str) -> SelfRegistration:
        log.warning(
            "refused the answer metadata on %s from app %s: %s; nothing registered",
            where,
            app,
            reason,
        )
        return SelfRegistration(Outcome.INVALID)
