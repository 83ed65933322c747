"""The answers API: register an answer (POST /v1/answers), list them, show one, remove one
(/v1/answers/{channel}/{ts}); all behind the bearer token (bot/web/auth.py)."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from bot.answers.admin import DEFAULT_LIMIT, MAX_LIMIT, BadQuery, detail_json, removal_json
from bot.answers.register import PostError
from bot.answers.request import answer_errors, answer_json
from bot.domain import Registration
from bot.services import Services
from bot.slack.inbound import Malformed, load_json_object
from bot.web.auth import guarded, refused
from bot.web.request import error, read_body
from storage import StorageError

log = logging.getLogger(__name__)


def post_answer(services: Services) -> Handler:
    token = services.settings.feedback_api_token

    async def handle(request: web.Request) -> web.StreamResponse:
        if (answer := refused(request, token)) is not None:
            return answer
        raw = await read_body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            body = load_json_object(raw)
        except Malformed as e:
            detail = [{"type": e.kind, "loc": [], "msg": str(e)}]
            return web.json_response({"error": "invalid answer", "detail": detail}, status=422)
        try:
            answer_in = await services.answers.validate(body)
            registered = await services.answers.register(answer_in)
        except ValidationError as e:
            return web.json_response(
                {"error": "invalid answer", "detail": answer_errors(e)}, status=422
            )
        except PostError as e:
            return error(502, str(e))
        except StorageError as e:
            # Disk full, file gone: a JSON 503 that says why, so the caller tries again
            # later, and never a 200 for a write that did not happen.
            log.error("POST /v1/answers: %s", e)
            return error(503, f"feedback-bot cannot store this right now: {e}")
        existing = answer_json(registered.answer)
        if registered.outcome is Registration.CONFLICT:
            where = f"{registered.answer.channel}/{registered.answer.ts}"
            return error(
                409, f"message {where} is already mapped to another answer", answer=existing
            )
        status = 201 if registered.outcome is Registration.CREATED else 200
        return web.json_response(
            {"status": registered.outcome.value, "answer": existing}, status=status
        )

    return handle


def list_answers(services: Services) -> Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        q = request.query
        unknown = set(q) - {"channel", "limit", "cursor"}
        if unknown:
            raise BadQuery(f"unknown parameter {sorted(unknown)[0]!r} (channel, limit, cursor)")
        raw_limit = q.get("limit", str(DEFAULT_LIMIT))
        if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 6):
            raise BadQuery(f"limit must be a number from 1 to {MAX_LIMIT}")
        page = await services.answer_admin.list(q.get("channel"), int(raw_limit), q.get("cursor"))
        return web.json_response(
            {"answers": [answer_json(a) for a in page.answers], "next_cursor": page.next_cursor}
        )

    return guarded(services, work)


def show_answer(services: Services) -> Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        channel, ts = request.match_info["channel"], request.match_info["ts"]
        detail = await services.answer_admin.show(channel, ts)
        if detail is None:
            return error(404, f"no answer is registered on {channel}/{ts}")
        return web.json_response(detail_json(detail))

    return guarded(services, work)


def remove_answer(services: Services) -> Handler:
    async def work(request: web.Request) -> web.StreamResponse:
        channel, ts = request.match_info["channel"], request.match_info["ts"]
        removal = await services.answer_admin.remove(channel, ts, "DELETE /v1/answers")
        if removal is None:
            return error(404, f"no answer is registered on {channel}/{ts}")
        return web.json_response(removal_json(removal))

    return guarded(services, work)
