"""The `/drop-caller` slash command: answer at once, look the number up, post the card."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.authorisation import home_team_id
from bot.cards import USAGE, confirmation_card, escape
from bot.errors import BotError, PhoneNumberError
from bot.phone import display_number, mask_number, parse_phone_number
from bot.publisher import post_to_response_url
from bot.replies import BUSY, INTERNAL_ERROR
from bot.services import Services
from genesys.errors import GenesysError, GenesysPermissionError

logger = logging.getLogger(__name__)

COMMAND = "/drop-caller"
_EXAMPLE = "`/drop-caller +1 555 123 4567`"
# Posting into a channel the bot is not a member of fails with one of these.
_NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
# Slack allows 50 blocks and 25 buttons a message; a card lists this many calls at most.
MAX_CALLS_ON_A_CARD = 10


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
    """Check, acknowledge within Slack's 3 seconds, then look the number up and post the card.

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
    emergency = services.policy.emergency_refusal(text)
    if emergency:
        ack(emergency)
        return
    try:
        number = parse_phone_number(text, services.default_region)
    except PhoneNumberError as exc:
        shown = escape(text[:64].replace("`", "'"))
        ack(f"{exc} I read `{shown}`. Give the caller's number, for example {_EXAMPLE}.")
        return
    protected = services.policy.protected_refusal(number)
    if protected:
        logger.info("Refused to drop protected number %s", mask_number(number))
        ack(protected)
        return

    def tell(text: str) -> None:
        services.publisher.notify(user_id, channel_id, text, respond)

    # Queued before answering, so that a full queue is said in the answer itself: telling
    # through response_url here would hold the answer up for a round trip to Slack.
    queued = services.work.submit(
        lambda: look_up_and_post(number, command, respond, client, services),
        on_error=lambda _: tell(INTERNAL_ERROR),
    )
    if not queued:
        ack(BUSY)
        return
    ack(f":mag: Looking for a live call with {escape(display_number(number))}…")


def look_up_and_post(
    number: str,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    services: Services,
) -> None:
    """After the ack: find the calls, record the request, post the card."""
    user_id = command.get("user_id", "")
    channel_id = command.get("channel_id", "")
    # Logged here rather than before the ack: the answer to Slack carries no log write.
    logger.info("%s asked to drop %s in %s", user_id, mask_number(number), channel_id)
    shown_number = escape(display_number(number))

    def tell(text: str) -> None:
        services.publisher.notify(user_id, channel_id, text, respond)

    def record(outcome: str, detail: str, error: GenesysError | None = None) -> None:
        try:
            services.store.record_lookup(
                channel_id=channel_id,
                requester_id=user_id,
                number=number,
                outcome=outcome,
                detail=detail,
                error_code=error.code if error else None,
                context_id=error.context_id if error else None,
                dry_run=services.policy.dry_run,
            )
        except BotError as exc:
            # The supervisor has been told already; the database says why it failed.
            logger.error("Could not record the look-up of %s: %s", mask_number(number), exc)
        except Exception:
            # Anything else the database raises: logged, and the supervisor (who has their
            # answer) is not told of an internal error on top.
            logger.exception("Could not record the look-up of %s", mask_number(number))

    try:
        lookup = services.calls.find_active_calls(number)
    except GenesysError as exc:
        logger.warning("Lookup of %s failed: %r", mask_number(number), exc)
        tell(f":warning: Could not look up {shown_number}: {escape(str(exc))}")
        # Recorded after telling: a database that does not answer must not hold that up.
        record("lookup_failed", str(exc), exc)
        return
    matches = list(lookup.matches)
    if not matches and lookup.unreadable:
        sentence = unreadable_sentence(shown_number, lookup.unreadable)
        tell(f":warning: {sentence}")
        record("calls_unreadable", sentence, lookup.unreadable[0])
        return
    if not matches:
        tell(no_call_sentence(shown_number, realtime=lookup.realtime))
        record("no_live_call", "Genesys Cloud listed no live call for the number.")
        return
    if len(matches) > MAX_CALLS_ON_A_CARD:
        tell(
            f"{shown_number} is on {len(matches)} live calls; the card shows the "
            f"{MAX_CALLS_ON_A_CARD} that have been connected longest."
        )
        matches = matches[:MAX_CALLS_ON_A_CARD]

    try:
        request = services.store.create_request(
            team_id=command.get("team_id", ""),
            channel_id=channel_id,
            requester_id=user_id,
            number=number,
            candidates=matches,
            ttl_seconds=services.request_ttl,
            response_url=command.get("response_url"),
            dry_run=services.policy.dry_run,
        )
    except BotError as exc:
        tell(f":warning: {escape(str(exc))}")
        return
    card_text, blocks = confirmation_card(
        request, services.now(), two_person=services.policy.two_person
    )
    try:
        posted = client.chat_postMessage(channel=channel_id, text=card_text, blocks=blocks)
    except (SlackApiError, OSError) as exc:
        error = (
            exc.response.get("error")
            if isinstance(exc, SlackApiError) and exc.response is not None
            else type(exc).__name__
        )
        if error not in _NOT_A_MEMBER:
            logger.error("Could not post the card for request %s: %s", request.id, error)
            _abandon(services, request.id)
            tell(
                f":warning: Could not post the confirmation card ({escape(str(error))}); "
                "nothing will be dropped. Try again in a minute."
            )
            return
        # The bot is not in this channel: the command's response_url can still post here.
        try:
            status = post_to_response_url(
                command.get("response_url") or "",
                text=card_text,
                blocks=blocks,
                response_type="in_channel",
            )
        except (OSError, ValueError):
            status = 0
        if status != 200:
            logger.error("Could not post the card for request %s at all", request.id)
            _abandon(services, request.id)
            tell(
                ":warning: Could not post the confirmation card here. Invite the bot to this "
                "channel (`/invite @drop-caller`) and try again."
            )
        return
    try:
        services.store.set_message(request.id, str(posted["ts"]))
    except BotError:
        # The card is out; its buttons still reach the request, and clicks update it in place
        # through their own response_url.
        logger.exception("Could not record where request %s was posted", request.id)
    if lookup.unreadable:
        note = unreadable_sentence(shown_number, lookup.unreadable, more=True)
        tell(f":information_source: {note}")


def no_call_sentence(shown_number: str, *, realtime: bool) -> str:
    """ "No active call", with what could still hide one: index lag, divisions."""
    lag = (
        ""
        if realtime
        else " A call that started in the last few seconds may not be in Genesys' index yet, "
        "and the real-time lookup did not answer: try again in a few seconds."
    )
    return (
        f"No active call for {shown_number}. Nothing to drop.{lag} (The bot sees only the "
        "calls in the divisions its Genesys role is granted.)"
    )


def unreadable_sentence(
    shown_number: str, errors: Sequence[GenesysError], *, more: bool = False
) -> str:
    """Why calls that were found could not be shown: a named permission, or the divisions.

    `more`: other calls for the number did get their card.
    """
    count = len(errors)
    calls = (
        f"{count} more live call{'s' if count > 1 else ''}"
        if more
        else ("a live call" if count == 1 else f"{count} live calls")
    )
    them = "it" if count == 1 else "them"
    named = next(
        (e for e in errors if isinstance(e, GenesysPermissionError) and e.permission), None
    )
    if named is not None:
        return f"Found {calls} for {shown_number}, but the bot cannot read {them}: " + escape(
            str(named)
        )
    refused = next((e for e in errors if e.status and 400 <= e.status < 500), None)
    if refused is None:
        # Only reads that Genesys did not answer (down, busy): nothing about the role.
        return (
            f"Found {calls} for {shown_number}, but Genesys Cloud did not answer when the bot "
            f"read {them} ({escape(str(errors[0]))}). Run the command again to see {them}."
        )
    said = escape(refused.reason or str(refused))
    if refused.context_id:
        said += f"; contextId {escape(refused.context_id)}"
    return (
        f"Found {calls} for {shown_number}, but the bot's Genesys role cannot read {them} "
        f"(Genesys said: {said}). Check that its role covers the divisions these calls are in."
    )


def _abandon(services: Services, request_id: str) -> None:
    """Close a request whose card could not be posted, so no stray copy of it can act."""
    try:
        services.store.abandon(request_id, "The confirmation card could not be posted.")
    except BotError:
        logger.exception("Could not close request %s; it will expire", request_id)
