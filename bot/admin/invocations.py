"""What a `/feedback` command line means, once the grammar has checked it: one typed
invocation per sub-command, its values already converted (days as an int, emoji as a
normalised name, ids validated). `execute` matches on these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bot.domain import Status


@dataclass(frozen=True, slots=True, kw_only=True)
class _Invocation:
    name: ClassVar[str]  # the sub-command, as typed
    changes: ClassVar[bool] = True  # does it change anything (and so need an admin)?
    workspace: bool = False  # --workspace: every channel's default, not this channel


@dataclass(frozen=True, slots=True)
class Help(_Invocation):
    name = "help"
    changes = False


@dataclass(frozen=True, slots=True)
class ShowStatus(_Invocation):
    name = "status"
    changes = False


@dataclass(frozen=True, slots=True)
class ShowStats(_Invocation):
    name = "stats"
    changes = False
    days: int = 30


@dataclass(frozen=True, slots=True)
class ShowDeliveries(_Invocation):
    name = "deliveries"
    changes = False


@dataclass(frozen=True, slots=True)
class Retry(_Invocation):
    name = "retry"
    ids: tuple[int, ...] = ()  # none: every dead delivery


@dataclass(frozen=True, slots=True)
class Setup(_Invocation):
    name = "setup"


@dataclass(frozen=True, slots=True)
class SetProvider(_Invocation):
    name = "provider"
    provider: str


@dataclass(frozen=True, slots=True)
class SetAgent(_Invocation):
    name = "agent"
    agent_id: str  # a UUID, in its canonical form


@dataclass(frozen=True, slots=True)
class SetAsk(_Invocation):
    name = "ask"
    agent_id: str | None  # a UUID in its canonical form; None: off


@dataclass(frozen=True, slots=True)
class SetAquilaX(_Invocation):
    name = "aquilax"
    org: str
    group: str


@dataclass(frozen=True, slots=True)
class ListEmoji(_Invocation):
    name = "emoji"
    changes = False


@dataclass(frozen=True, slots=True)
class AddEmoji(_Invocation):
    name = "emoji"
    emoji: str  # normalised: no colons, no skin tone
    status: Status


@dataclass(frozen=True, slots=True)
class RemoveEmoji(_Invocation):
    name = "emoji"
    emoji: str


@dataclass(frozen=True, slots=True)
class Switch(_Invocation):
    """`reactions`, `form`, `prompt` or `late-lookup` on|off."""

    setting: str  # a key of SWITCHES
    on: bool

    @property
    def name(self) -> str:  # type: ignore[override]  # per instance: the setting it turns
        return self.setting


@dataclass(frozen=True, slots=True)
class ListTrusted(_Invocation):
    name = "trust"
    changes = False


@dataclass(frozen=True, slots=True)
class Trust(_Invocation):
    """`trust add|remove <app id>`: whose message metadata registers answers."""

    name = "trust"
    app_id: str
    trusted: bool  # add: True, remove: False


@dataclass(frozen=True, slots=True)
class Reset(_Invocation):
    name = "reset"
    setting: str  # a key of RESETTABLE


@dataclass(frozen=True, slots=True)
class ForgetKey(_Invocation):
    """`reset <provider>-key`: forget the key entered with setup."""

    name = "reset"
    provider: str


@dataclass(frozen=True, slots=True)
class SetEscalation(_Invocation):
    """`escalate <#channel>|off [--anonymous]`."""

    name = "escalate"
    channel: str | None  # the triage channel's id; None: off
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class SetDigest(_Invocation):
    """`digest <#channel> daily|weekly|off`."""

    name = "digest"
    channel: str | None  # where the digest goes; None: off
    period: str | None = None  # daily or weekly


@dataclass(frozen=True, slots=True)
class DigestNow(_Invocation):
    """`digest now`: post the scope's digest at once, for its period ending now."""

    name = "digest"


Invocation = (
    Help
    | ShowStatus
    | ShowStats
    | ShowDeliveries
    | Retry
    | Setup
    | SetProvider
    | SetAgent
    | SetAsk
    | SetAquilaX
    | SetEscalation
    | SetDigest
    | DigestNow
    | ListEmoji
    | AddEmoji
    | RemoveEmoji
    | Switch
    | ListTrusted
    | Trust
    | Reset
    | ForgetKey
)
