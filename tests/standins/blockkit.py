"""Block Kit checks for what the bot sends to Slack, using slack_sdk's own models and limits
plus the per-surface rules the models do not know."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

_COMMON = {"section", "divider", "image", "actions", "context", "header", "rich_text", "video"}
SURFACE_BLOCKS = {
    "message": _COMMON | {"context_actions", "markdown", "file", "table"},
    "modal": _COMMON | {"input"},
    "home": _COMMON | {"input"},
}
MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
MESSAGE_TEXT_LIMIT = 40_000


def check_blocks(blocks: Any, surface: str) -> list[str]:
    if not isinstance(blocks, list):
        return [f"blocks must be a list, got {type(blocks).__name__}"]
    errors = []
    if len(blocks) > MAX_BLOCKS[surface]:
        errors.append(f"{len(blocks)} blocks: a {surface} takes at most {MAX_BLOCKS[surface]}")
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        errors.append(f"duplicate block_id in {block_ids}")
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in SURFACE_BLOCKS[surface]:
            errors.append(f"block {i}: type {kind!r} is not allowed in a {surface}")
            continue
        errors += [f"block {i} ({kind}): {e}" for e in _validate_model(Block.parse, block)]
    return errors


def check_view(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["view must be an object"]
    surface = view.get("type")
    if surface not in ("modal", "home"):
        return [f"view type {surface!r} must be modal or home"]
    errors = [f"view: {e}" for e in _validate_model(lambda v: View(**v), view)]
    return errors + check_blocks(view.get("blocks", []), surface)


def check_message(args: dict[str, Any]) -> list[str]:
    errors = []
    text, blocks = args.get("text"), args.get("blocks")
    if not text and not blocks:
        errors.append("a message needs text or blocks")
    if isinstance(text, str) and len(text) > MESSAGE_TEXT_LIMIT:
        errors.append(f"text is {len(text)} characters: Slack truncates at {MESSAGE_TEXT_LIMIT}")
    if blocks is not None:
        errors += check_blocks(blocks, "message")
    return errors


def _validate_model(parse: Any, data: dict[str, Any]) -> list[str]:
    try:
        model = parse(dict(data))
        if model is None or type(model) is Block:
            return ["unknown block type"]
        model.validate_json()
        rendered = model.to_dict()
    except (SlackObjectFormationError, TypeError, KeyError, ValueError) as e:
        return [str(e)]
    # slack_sdk drops keys it does not know; Slack would reject them.
    return [f"unknown field {path}" for path in _dropped(data, rendered, "")]


def _dropped(given: Any, rendered: Any, path: str) -> list[str]:
    if isinstance(given, dict) and isinstance(rendered, dict):
        out = []
        for key, value in given.items():
            if key not in rendered:
                out.append(f"{path}.{key}".lstrip("."))
            else:
                out += _dropped(value, rendered[key], f"{path}.{key}")
        return out
    if isinstance(given, list) and isinstance(rendered, list):
        return [
            p
            for i, (g, r) in enumerate(zip(given, rendered, strict=False))
            for p in _dropped(g, r, f"{path}[{i}]")
        ]
    return []
