"""Per-workspace and per-channel configuration: the one place handlers read it from.

A value comes from the channel if set there, else from the workspace defaults, else from the
built-in default. Every change goes to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from bot.config.settings import Settings
from bot.domain import DEFAULT_EMOJI, Status
from storage import Store

WORKSPACE = "*"
Origin = Literal["channel", "workspace", "default"]


@dataclass(frozen=True, slots=True)
class ChannelOptions:
    provider: str | None = None  # the provider answers default to when registered
    agent_id: str | None = None  # default Contextual agent
    aquilax_org: str | None = None
    aquilax_group: str | None = None
    emoji: Mapping[str, Status] = field(default_factory=lambda: MappingProxyType(DEFAULT_EMOJI))
    reactions: bool = True  # do reactions count as votes?
    reaction_form: bool = False  # do 👎/🚩 reactions offer the "what went wrong?" form?
    prompt: bool = False  # post "Was this helpful?" under answers other apps posted?
    # Apps whose message metadata registers answers here: FEEDBACK_TRUSTED_APPS, the
    # workspace's and the channel's, together (trust adds up; it does not override).
    trusted_apps: frozenset[str] = frozenset()
    late_lookup: bool = False  # look up unknown reacted messages for trusted metadata?
    # The Contextual agent that answers questions asked here (bot/ask/); "off": nobody does.
    # Unset: FEEDBACK_ASK_AGENT.
    ask_agent: str | None = None
    # Where 👎 and 🚩 are escalated (bot.domain.Triage's setting, or "off"), and the scope's
    # own digest (bot/digest/schedule.py: DigestPlan's setting); as stored.
    escalate: Any = None
    digest: Any = None
    origins: Mapping[str, Origin] = field(default_factory=dict)

    def origin(self, key: str) -> Origin:
        return self.origins.get(key, "default")


def ask_agent(config: ChannelOptions, settings: Settings) -> str | None:
    """The agent that answers questions asked where `config` applies: the channel's or the
    workspace's choice (/feedback ask), else FEEDBACK_ASK_AGENT; None when nobody does."""
    if config.ask_agent == "off":
        return None
    if config.ask_agent:
        return config.ask_agent
    default = settings.feedback_ask_agent
    return str(default) if default is not None else None


# The settings a channel (or the workspace) may set: the fields above, but where each came from.
KEYS = tuple(f.name for f in fields(ChannelOptions) if f.name != "origins")


class ChannelSettings:
    """Reads are cached per channel; a change through `set` clears the cache, so it takes
    effect on the next event without a restart."""

    def __init__(self, store: Store, trusted_apps: Iterable[str] = ()) -> None:
        self._store = store
        self._trusted_default = frozenset(trusted_apps)  # FEEDBACK_TRUSTED_APPS
        self._cache: dict[str, ChannelOptions] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change (what others derived from settings is stale)."""
        self._listeners.append(listener)

    async def for_channel(self, channel: str | None) -> ChannelOptions:
        scope = channel or WORKSPACE
        cached = self._cache.get(scope)
        if cached is not None:
            return cached
        scopes = [WORKSPACE] if scope == WORKSPACE else [WORKSPACE, scope]
        rows = await self._store.config_values(scopes)
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        trusted = set(self._trusted_default)
        # Workspace first, so a channel value overrides it.
        for row_scope, key, value in sorted(rows, key=lambda r: r[0] != WORKSPACE):
            if key == "trusted_apps":
                trusted.update(value)
            elif key in KEYS:
                values[key] = value
                origins[key] = "workspace" if row_scope == WORKSPACE else "channel"
        values["trusted_apps"] = frozenset(trusted)
        if "emoji" in values:
            values["emoji"] = MappingProxyType(
                {name: Status(status) for name, status in values["emoji"].items()}
            )
        config = ChannelOptions(**values, origins=MappingProxyType(origins))
        self._cache[scope] = config
        return config

    @property
    def trusted_by_default(self) -> frozenset[str]:
        """FEEDBACK_TRUSTED_APPS: trusted in every channel; /feedback cannot take it back."""
        return self._trusted_default

    async def own_value(self, scope: str, key: str) -> Any:
        """What `scope` itself sets for `key` (None: nothing), not what it inherits."""
        for _, row_key, value in await self._store.config_values([scope]):
            if row_key == key:
                return value
        return None

    async def set(self, scope: str, key: str, value: Any, user: str) -> Any:
        """Set (None: clear) `key` for a channel or the workspace; returns the old value."""
        if key not in KEYS:
            raise KeyError(key)
        if key == "emoji" and value is not None:
            value = {name: Status(status).value for name, status in value.items()}
        old = await self._store.set_config(scope, key, value, user)
        self._cache.clear()
        for listener in self._listeners:
            listener()
        return old
