"""The `/drop-caller` slash command: check it, answer at once, and queue the look-up.

The look-up itself, the request and the card come after the answer (`bot.lookup`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.authorisation import home_team_id
from bot.cards import USAGE, escape
from bot.domain import TargetKind
from bot.errors import TargetError
from bot.lookup import look_up_and_post
from bot.phone import display_number, mask_number
from bot.replies import BUSY, INTERNAL_ERROR
from bot.services import Services
from bot.targets import Target, parse_target

logger = logging.getLogger(__name__)

COMMAND = "/drop-caller"
_EXAMPLE = "`/drop-caller +1 555 123 4567`"


def register(app: App, services: Services) -> None:
    """Attach the slash command to `app`."""

    def drop_caller_command(
        ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, context: Any
    ) -> None:
        handle_drop_command(ack, command, respond, client, context, services)

    app.command(COMMAND)(drop_caller_command)


def handle_drop_command(
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: Any,
    services: Services,
) -> None:
    """Check, acknowledge within Slack's 3 seconds, then look the target up and post the card.

    Everything before `ack` is local and fast; Genesys is only called after it.
    """
    text = (command.get("text") or "").strip()
    user_id = command.get("user_id", "")
    channel_id = command.get("channel_id", "")
    if text.lower() in ("", "help"):
        ack(USAGE)
        return
    refusal = services.authoriser.refusal(
        user_id=user_id,
        channel_id=channel_id,
        team_id=command.get("team_id"),
        home_team_id=home_team_id(context),
    )
    if refusal:
        logger.info("Refused /drop-caller from %s in %s", user_id, channel_id)
        ack(refusal)
        return
    if text.lower() == "status":
        # The database check can take seconds while it is down: answer after the ack.
        def report_status() -> None:
            services.publisher.notify(user_id, channel_id, services.health.summary(), respond)

        if services.work.submit(report_status, on_error=lambda _: None):
            ack(":stethoscope: Checking the bot's health…")
        else:
            ack(BUSY)
        return
    if text.lower() == "blocked":
        # The list is read from the database, after the ack.
        def list_blocks() -> None:
            services.publisher.notify(user_id, channel_id, services.blocklist.listing(), respond)

        ack(
            ":lock: Reading the block list…"
            if services.work.submit(list_blocks, on_error=lambda _: None)
            else BUSY
        )
        return
    unblocking = text.lower().startswith("unblock ")
    if unblocking:
        text = text[len("unblock ") :].strip()
        if services.blocklist.table_id is None:
            ack(
                "No block list is configured (DROP_CALLER_BLOCKLIST_TABLE), so there is nothing "
                "to unblock."
            )
            return
    try:
        target = parse_target(text, services.default_region)
    except TargetError as exc:
        emergency = services.policy.emergency_refusal(text)
        if emergency:
            ack(emergency)
            return
        shown = escape(text[:64].replace("`", "'"))
        ack(f"{exc} I read `{shown}`. Give the caller's number, for example {_EXAMPLE}.")
        return
    if unblocking and target.kind != TargetKind.NUMBER:
        ack("Give the number to unblock, for example `/drop-caller unblock +1 555 123 4567`.")
        return
    if unblocking:
        target = replace(target, kind=TargetKind.UNBLOCK)
    elif target.kind == TargetKind.NUMBER:
        refusal = services.policy.emergency_refusal(text) or services.policy.protected_refusal(
            target.value
        )
        if refusal:
            logger.info("Refused to drop protected number %s", mask_number(target.value))
            ack(refusal)
            return
    if services.policy.require_reason and not target.rest:
        ack(
            "Say why, after the target: for example `/drop-caller +1 555 123 4567 abusive "
            "language`. (A reason is required here: DROP_CALLER_REQUIRE_REASON.)"
        )
        return

    def tell(text: str) -> None:
        services.publisher.notify(user_id, channel_id, text, respond)

    # Queued before answering, so that a full queue is said in the answer itself: telling
    # through response_url here would hold the answer up for a round trip to Slack.
    queued = services.work.submit(
        lambda: look_up_and_post(target, command, respond, client, services),
        on_error=lambda _: tell(INTERNAL_ERROR),
    )
    if not queued:
        ack(BUSY)
        return
    ack(_looking_for(target))


def _looking_for(target: Target) -> str:
    if target.kind == TargetKind.UNBLOCK:
        return f":unlock: Asking to unblock {escape(display_number(target.value))}…"
    if target.kind == TargetKind.CONVERSATION:
        return f":mag: Reading conversation `{escape(target.value)}`…"
    if target.kind == TargetKind.AGENT:
        return f":mag: Looking for the live calls of agent *{escape(target.value)}*…"
    return f":mag: Looking for a live call with {escape(display_number(target.value))}…"
