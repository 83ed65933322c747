"""The votes stream, GET /v1/votes: every vote that matches, as JSON Lines, behind the
answers API's bearer token (bot/web/auth.py)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.answers.admin import BadQuery
from bot.services import Services
from bot.votes import export as vote_export
from bot.votes.export import VoteFilter
from bot.web.auth import guarded

ROWS_PER_WRITE = 500  # a write per few hundred rows, not per row


def export_votes(services: Services) -> Handler:
    """Every vote that matches, as JSON Lines, streamed page by page."""

    async def work(request: web.Request) -> web.StreamResponse:
        q = request.query
        unknown = set(q) - {"since", "until", "channel"}
        if unknown:
            raise BadQuery(f"unknown parameter {sorted(unknown)[0]!r} (since, until, channel)")
        where = VoteFilter.parse(q.get("since"), q.get("until"), q.get("channel"))
        rows = vote_export.rows(services.store, where)
        first = await anext(rows, None)  # a database error is still a clean 503 here
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        if first is not None:
            chunk = [vote_export.jsonl(first)]
            async for row in rows:
                chunk.append(vote_export.jsonl(row))
                if len(chunk) >= ROWS_PER_WRITE:
                    await response.write(b"".join(chunk))
                    chunk.clear()
            await response.write(b"".join(chunk))
        await response.write_eof()
        return response

    return guarded(services, work)
