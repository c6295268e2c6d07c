"""Slack's published Block Kit limits, checked the way Slack checks them.

The simulated Slack refuses a message or view that breaks one (`invalid_blocks`, or
`msg_too_long` for the text), as the real one does, and the tests run every card the bot can
build through `problems`. Sources: api.slack.com/reference/block-kit/blocks,
/block-elements, /composition-objects, /surfaces (messages 50 blocks, Home tab 100), and
chat.postMessage (text truncated past 40,000 characters; Slack asks for at most 4,000).
"""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000

_BLOCK_ID = 255
_ACTION_ID = 255
_SECTION_TEXT = 3000
_SECTION_FIELDS = 10
_FIELD_TEXT = 2000
_CONTEXT_ELEMENTS = 10
_CONTEXT_TEXT = 2000
_ACTIONS_ELEMENTS = 25
_HEADER_TEXT = 150
_BUTTON_TEXT = 75
_BUTTON_VALUE = 2000
_BUTTON_URL = 3000
_CONFIRM_TITLE = 100
_CONFIRM_TEXT = 300
_CONFIRM_BUTTON = 30
_TEXT_TYPES = ("plain_text", "mrkdwn")


def problems(blocks: list[dict[str, Any]], *, surface: str = "message") -> list[str]:
    """Every way `blocks` breaks Slack's limits for a message or a Home tab view ([] if none)."""
    found: list[str] = []
    most = VIEW_BLOCKS if surface == "home" else MESSAGE_BLOCKS
    if len(blocks) > most:
        found.append(f"{len(blocks)} blocks (a {surface} takes at most {most})")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > _BLOCK_ID:
                found.append(f"{where}: block_id longer than {_BLOCK_ID}")
            if block_id in block_ids:
                found.append(f"{where}: block_id {block_id!r} used twice")
            block_ids.add(str(block_id))
        found.extend(f"{where}: {problem}" for problem in _block(block))
    return found


def text_problem(text: str) -> str | None:
    """Why a message's top-level text is refused, or None."""
    if len(text) > MESSAGE_TEXT:
        return f"text of {len(text)} characters (at most {MESSAGE_TEXT})"
    return None


def _block(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "section":
        return _section(block)
    if kind == "context":
        elements = block.get("elements") or []
        found = [] if elements else ["no elements"]
        if len(elements) > _CONTEXT_ELEMENTS:
            found.append(f"{len(elements)} elements (at most {_CONTEXT_ELEMENTS})")
        for element in elements:
            if element.get("type") in _TEXT_TYPES:
                found.extend(_text(element, _CONTEXT_TEXT, "element"))
        return found
    if kind == "actions":
        elements = block.get("elements") or []
        found = [] if elements else ["no elements"]
        if len(elements) > _ACTIONS_ELEMENTS:
            found.append(f"{len(elements)} elements (at most {_ACTIONS_ELEMENTS})")
        action_ids = [e.get("action_id") for e in elements if e.get("action_id")]
        if len(action_ids) != len(set(action_ids)):
            found.append("an action_id used twice")
        for element in elements:
            found.extend(_element(element))
        return found
    if kind == "header":
        text = block.get("text") or {}
        if text.get("type") != "plain_text":
            return ["header text must be plain_text"]
        return _text(text, _HEADER_TEXT, "header")
    if kind == "divider":
        return []
    return [f"unknown block type {kind!r}"]


def _section(block: dict[str, Any]) -> list[str]:
    found: list[str] = []
    text = block.get("text")
    fields = block.get("fields")
    if text is None and not fields:
        found.append("neither text nor fields")
    if text is not None:
        found.extend(_text(text, _SECTION_TEXT, "text"))
    if fields:
        if len(fields) > _SECTION_FIELDS:
            found.append(f"{len(fields)} fields (at most {_SECTION_FIELDS})")
        for field in fields:
            found.extend(_text(field, _FIELD_TEXT, "field"))
    if "accessory" in block:
        found.extend(_element(block["accessory"]))
    return found


def _element(element: dict[str, Any]) -> list[str]:
    if element.get("type") != "button":
        return [f"unknown element type {element.get('type')!r}"]
    found: list[str] = []
    text = element.get("text") or {}
    if text.get("type") != "plain_text":
        found.append("button text must be plain_text")
    found.extend(_text(text, _BUTTON_TEXT, "button"))
    if len(str(element.get("action_id", ""))) > _ACTION_ID:
        found.append(f"action_id longer than {_ACTION_ID}")
    if len(str(element.get("value", ""))) > _BUTTON_VALUE:
        found.append(f"button value longer than {_BUTTON_VALUE}")
    if len(str(element.get("url", ""))) > _BUTTON_URL:
        found.append(f"button url longer than {_BUTTON_URL}")
    if element.get("style") not in (None, "primary", "danger"):
        found.append(f"button style {element.get('style')!r}")
    confirm = element.get("confirm")
    if confirm is not None:
        for key, limit in (
            ("title", _CONFIRM_TITLE),
            ("text", _CONFIRM_TEXT),
            ("confirm", _CONFIRM_BUTTON),
            ("deny", _CONFIRM_BUTTON),
        ):
            part = confirm.get(key)
            if part is None:
                found.append(f"confirm has no {key}")
            else:
                found.extend(_text(part, limit, f"confirm {key}"))
    return found


def _text(text: Any, limit: int, what: str) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in _TEXT_TYPES:
        return [f"{what} is not a text object"]
    value = text.get("text")
    if not isinstance(value, str) or not value:
        return [f"{what} text is empty"]
    if len(value) > limit:
        return [f"{what} text of {len(value)} characters (at most {limit})"]
    return []
