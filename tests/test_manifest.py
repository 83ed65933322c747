"""manifest.yml creates the whole app in one paste."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = yaml.safe_load((Path(__file__).resolve().parent.parent / "manifest.yml").read_text())


def test_scopes_events_command_and_modes() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"reactions:read", "chat:write", "commands", "users:read"} <= scopes
    events = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    assert {"reaction_added", "reaction_removed", "app_home_opened"} <= events
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == "/feedback"
    assert len(command["description"]) <= 100
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert len(MANIFEST["display_information"]["name"]) <= 35
    assert len(MANIFEST["features"]["bot_user"]["display_name"]) <= 80
