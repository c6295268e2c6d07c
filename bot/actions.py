"""The card's buttons: Disconnect caller (one per call), End whole conversation (one per stuck
conversation) and Cancel.

A click is acknowledged at once, parsed once into a `Click`, and handed to the workflow
(`bot.drops`) on the work queue, off Bolt's listener threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.authorisation import home_team_id
from bot.cards import (
    BLOCK_ACTION_PREFIX,
    CANCEL_ACTION,
    DISCONNECT_ACTION_PREFIX,
    END_ACTION_PREFIX,
    UNBLOCK_ACTION,
)
from bot.drops import Click
from bot.replies import BUSY, INTERNAL_ERROR
from bot.services import Services

# Exactly the ids cards carry (drop_caller_disconnect_0 … _99): ASCII digits, no leading zero,
# nothing after (\Z, not $, which would also match before a trailing newline).
DISCONNECT_ACTION = re.compile(rf"^{DISCONNECT_ACTION_PREFIX}(0|[1-9][0-9]?)\Z", re.ASCII)
END_ACTION = re.compile(rf"^{END_ACTION_PREFIX}(0|[1-9][0-9]?)\Z", re.ASCII)
BLOCK_ACTION = re.compile(rf"^{BLOCK_ACTION_PREFIX}(0|[1-9][0-9]?)\Z", re.ASCII)


def register(app: App, services: Services) -> None:
    """Attach the button handlers to `app`."""

    def disconnect_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any
    ) -> None:
        ack()
        click = parse_click(body, action, respond, context)
        _queue(lambda: services.drops.approve(click), click, services)

    def cancel_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any
    ) -> None:
        ack()
        click = parse_click(body, action, respond, context)
        _queue(lambda: services.drops.cancel(click), click, services)

    # Each approves: the workflow does what the request and the chosen call need (drop, drop
    # and block, end a stuck conversation whole, unblock).
    app.action(DISCONNECT_ACTION)(disconnect_clicked)
    app.action(END_ACTION)(disconnect_clicked)
    app.action(BLOCK_ACTION)(disconnect_clicked)
    app.action(UNBLOCK_ACTION)(disconnect_clicked)
    app.action(CANCEL_ACTION)(cancel_clicked)


def parse_click(
    body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any
) -> Click:
    """The click as the workflow reads it; what is missing or misshapen reads as empty."""
    action_id = str(action.get("action_id", ""))
    blocked = BLOCK_ACTION.match(action_id)
    matched = DISCONNECT_ACTION.match(action_id) or END_ACTION.match(action_id) or blocked
    value = action.get("value")
    return Click(
        user_id=_field(body, "user", "id"),
        channel_id=_field(body, "channel", "id") or _field(body, "container", "channel_id"),
        team_id=_field(body, "team", "id") or _field(body, "user", "team_id"),
        home_team_id=home_team_id(context),
        request_id=value if isinstance(value, str) else "",
        respond=respond,
        position=int(matched.group(1)) if matched else 0 if action_id == UNBLOCK_ACTION else -1,
        block=blocked is not None,
    )


def _queue(job: Callable[[], None], click: Click, services: Services) -> None:
    """Run a click's work after the ack, off Bolt's listener threads."""
    tell = services.drops.tell
    if not services.work.submit(job, on_error=lambda _: tell(click, INTERNAL_ERROR)):
        # A click's answer carries no text, so this goes through response_url: from a
        # thread of its own, not before the answer, which would wait for Slack's round trip.
        threading.Thread(target=tell, args=(click, BUSY), name="busy-note", daemon=True).start()


def _field(body: dict[str, Any], part: str, key: str) -> str:
    """body[part][key] as a string, or "" when the payload is not shaped like Slack's."""
    section = body.get(part)
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, str) else ""
