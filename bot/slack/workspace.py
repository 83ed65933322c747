"""One install, one workspace: Bolt middleware, for both doors (HTTP and Socket Mode), that
drops requests for any other workspace and answers Slack's app_rate_limited notice."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

FOREIGN_COMMAND = "This feedback-bot is set up for another Slack workspace, so it did nothing here."
Next = Callable[[], Awaitable[BoltResponse]]
Guard = Callable[[dict[str, Any], AsyncBoltContext, Next], Awaitable[BoltResponse]]


def workspace_guard(team_id: str) -> Guard:
    """Bolt middleware that runs before authorize, on both doors: requests for a workspace
    other than ours are acknowledged (so Slack does not retry them) and dropped.

    One install, one bot token: an event from another workspace (the app installed there
    too, pointing at this URL) would otherwise be handled with our token and our database.
    """

    # Bolt passes arguments by name: `next_` is its name for the next middleware.
    async def guard(body: dict[str, Any], context: AsyncBoltContext, next_: Next) -> BoltResponse:
        kind = body.get("type")
        if kind in ("url_verification", "ssl_check"):
            return await next_()  # Slack's handshakes name no workspace
        if kind == "app_rate_limited":
            _rate_limited(body, team_id)
            return BoltResponse(status=200, body="")
        teams = _installation_teams(body, context)
        if team_id in teams:
            return await next_()
        what = kind or ("slash command" if "command" in body else "request")
        named = ", ".join(sorted(t for t in teams if t)) or "none named"
        log.debug(
            "ignored a request for another workspace (%s; workspace %s): this feedback-bot"
            " serves %s",
            what,
            named,
            team_id,
        )
        if "command" in body:
            return BoltResponse(status=200, body=FOREIGN_COMMAND)
        return BoltResponse(status=200, body="")

    return guard


def _installation_teams(body: dict[str, Any], context: AsyncBoltContext) -> set[str | None]:
    """The workspaces whose installation this request is for.

    Bolt's team_id is already the installation's: view.app_installed_team_id, then
    team.id (in a Slack Connect channel, a click by someone from another organisation
    still names the workspace the app is installed in there; the clicker's own is
    user.team_id), then authorizations[0]. An event lists the installations that may see
    it in `authorizations`; its own team_id is where it happened, which in a shared
    channel may be the other organisation's — or ours, with another installation listed.
    """
    teams: set[str | None] = {context.team_id}
    for authorization in body.get("authorizations") or ():
        teams.add(authorization.get("team_id"))
    if body.get("type") == "event_callback":
        teams.add(body.get("team_id"))
    return teams


def _rate_limited(body: dict[str, Any], ours: str) -> None:
    team = body.get("team_id")
    if team != ours:
        log.debug("ignored an app_rate_limited for %s: this feedback-bot serves %s", team, ours)
        return
    minute = body.get("minute_rate_limited")
    try:
        since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(minute))
    except (TypeError, ValueError, OverflowError, OSError):
        since = "an unknown minute"
    log.warning(
        "Slack dropped this app's events for workspace %s in the minute from %s"
        " (app_rate_limited): the app went over 30,000 events for one workspace in an hour."
        " Those events, reactions among them, are lost: Slack does not send them again.",
        team,
        since,
    )
