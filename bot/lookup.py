"""After a command's ack: find what it points at, record the request, post the card.

A number, a conversation or an agent (`bot.targets`) is looked up in Genesys Cloud
(`genesys.client`), every call is checked against the policy (a protected number on it keeps
it off the card), and the request is recorded (`bot.store`) before its card is posted. A
look-up that ends without a card is answered privately and recorded too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.cards import confirmation_card, escape, unblock_card
from bot.domain import TargetKind
from bot.errors import BotError
from bot.phone import display_number, mask_number
from bot.publisher import post_to_response_url
from bot.services import Services
from bot.targets import Target
from genesys.errors import CallNotFound, GenesysError, GenesysPermissionError
from genesys.models import CallLookup, CallMatch

logger = logging.getLogger(__name__)

# Posting into a channel the bot is not a member of fails with one of these.
_NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
# Slack allows 50 blocks and 25 buttons a message; a card lists this many calls at most.
MAX_CALLS_ON_A_CARD = 10
# The reason is kept to this many characters (what follows is cut).
REASON_LIMIT = 200


@dataclass(frozen=True)
class _Asked:
    """Who asked, where, and how to answer them privately."""

    user_id: str
    channel_id: str
    team_id: str
    response_url: str | None
    tell: Callable[[str], object]


def look_up_and_post(
    target: Target,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    services: Services,
) -> None:
    """Find the calls, record the request, post the card; or say privately why not."""
    user_id = command.get("user_id", "")
    channel_id = command.get("channel_id", "")
    asked = _Asked(
        user_id,
        channel_id,
        command.get("team_id", ""),
        command.get("response_url"),
        lambda text: services.publisher.notify(user_id, channel_id, text, respond),
    )
    # Logged here rather than before the ack: the answer to Slack carries no log write.
    logger.info("%s asked to drop %s in %s", user_id, _logged(target), channel_id)
    shown = _shown(target)
    record = _recorder(services, asked, target)
    if target.kind == TargetKind.UNBLOCK:
        # Not a call: the card asks to take the number off the block list.
        _record_and_post(target, (), asked, client, services)
        return
    guard = services.policy.call_refusal
    try:
        if target.kind == TargetKind.NUMBER:
            lookup = services.calls.find_active_calls(target.value, guard=guard)
        elif target.kind == TargetKind.CONVERSATION:
            lookup = services.calls.look_up_conversation(target.value, guard=guard)
        else:
            agent = services.calls.find_agent(target.value)
            if agent is None:
                sentence = (
                    f"Genesys Cloud has no user with the email {shown}, so there is nothing "
                    "to drop. Check the address (it must match exactly)."
                )
                asked.tell(sentence)
                record("unknown_agent", sentence)
                return
            lookup = services.calls.find_agent_calls(agent.user_id, guard=guard)
            if agent.name:
                shown = f"{shown} ({escape(agent.name)})"
    except CallNotFound:
        sentence = (
            f"Genesys Cloud has no conversation {shown}: the id is unknown, or the "
            "conversation ended long ago. Nothing to drop."
        )
        asked.tell(sentence)
        record("no_conversation", sentence)
        return
    except GenesysError as exc:
        logger.warning("Lookup of %s failed: %r", _logged(target), exc)
        asked.tell(f":warning: Could not look up {shown}: {escape(str(exc))}")
        # Recorded after telling: a database that does not answer must not hold that up.
        record("lookup_failed", str(exc), exc)
        return
    matches = list(lookup.matches)
    if not matches:
        _answer_without_card(target, shown, lookup, asked, record)
        return
    if len(matches) > MAX_CALLS_ON_A_CARD:
        order = "newest" if target.kind == TargetKind.AGENT else "connected longest"
        asked.tell(
            f"{shown} is on {len(matches)} live calls; the card shows the "
            f"{MAX_CALLS_ON_A_CARD} {order}."
        )
        matches = matches[:MAX_CALLS_ON_A_CARD]
    _record_and_post(target, matches, asked, client, services)
    for sentence in lookup.refused:
        asked.tell(f":no_entry: {sentence}")
    if lookup.unreadable:
        note = unreadable_sentence(shown, lookup.unreadable, more=True)
        asked.tell(f":information_source: {note}")


def _answer_without_card(
    target: Target,
    shown: str,
    lookup: CallLookup,
    asked: _Asked,
    record: Callable[..., None],
) -> None:
    """Say why there is no card: refused, unreadable, ended, or no live call."""
    if lookup.refused:
        sentence = " ".join(lookup.refused)
        asked.tell(f":no_entry: {sentence}")
        record("refused", sentence)
    elif lookup.unreadable:
        sentence = unreadable_sentence(shown, lookup.unreadable)
        asked.tell(f":warning: {sentence}")
        record("calls_unreadable", sentence, lookup.unreadable[0])
    elif target.kind == TargetKind.CONVERSATION:
        sentence = f"Conversation {shown} has ended: nothing to drop."
        asked.tell(sentence)
        record("conversation_ended", sentence)
    elif target.kind == TargetKind.AGENT:
        sentence = (
            f"Agent {shown} has no live call. (The bot sees only the calls in the divisions "
            "its Genesys role is granted.)"
        )
        asked.tell(sentence)
        record("no_live_call", sentence)
    else:
        asked.tell(no_call_sentence(shown, realtime=lookup.realtime))
        record("no_live_call", "Genesys Cloud listed no live call for the number.")


def _record_and_post(
    target: Target,
    matches: Sequence[CallMatch],
    asked: _Asked,
    client: WebClient,
    services: Services,
) -> None:
    """Record the request, then post its card (through response_url if the bot is not in
    the channel); a card that cannot be posted closes its request."""
    by_number = target.kind in (TargetKind.NUMBER, TargetKind.UNBLOCK)
    number = target.value if by_number else _first_number(matches)
    try:
        request = services.store.create_request(
            team_id=asked.team_id,
            channel_id=asked.channel_id,
            requester_id=asked.user_id,
            number=number,
            candidates=matches,
            ttl_seconds=services.request_ttl,
            response_url=asked.response_url,
            dry_run=services.policy.dry_run,
            target_kind=target.kind,
            target=None if by_number else target.value,
            reason=target.rest[:REASON_LIMIT] or None,
        )
    except BotError as exc:
        asked.tell(f":warning: {escape(str(exc))}")
        return
    if target.kind == TargetKind.UNBLOCK:
        card_text, blocks = unblock_card(
            request, services.now(), two_person=services.policy.two_person
        )
    else:
        card_text, blocks = confirmation_card(
            request,
            services.now(),
            two_person=services.policy.two_person,
            allow_teardown=services.policy.allow_teardown,
            block_for=services.blocklist.duration() if services.blocklist.enabled else None,
        )
    try:
        posted = client.chat_postMessage(channel=asked.channel_id, text=card_text, blocks=blocks)
    except (SlackApiError, OSError) as exc:
        error = (
            exc.response.get("error")
            if isinstance(exc, SlackApiError) and exc.response is not None
            else type(exc).__name__
        )
        if error not in _NOT_A_MEMBER:
            logger.error("Could not post the card for request %s: %s", request.id, error)
            _abandon(services, request.id)
            asked.tell(
                f":warning: Could not post the confirmation card ({escape(str(error))}); "
                "nothing will be dropped. Try again in a minute."
            )
            return
        # The bot is not in this channel: the command's response_url can still post here.
        try:
            status = post_to_response_url(
                asked.response_url or "",
                text=card_text,
                blocks=blocks,
                response_type="in_channel",
            )
        except (OSError, ValueError):
            status = 0
        if status != 200:
            logger.error("Could not post the card for request %s at all", request.id)
            _abandon(services, request.id)
            asked.tell(
                ":warning: Could not post the confirmation card here. Invite the bot to this "
                "channel (`/invite @drop-caller`) and try again."
            )
            return
        message_ts = None
    else:
        message_ts = str(posted["ts"])
    try:
        services.store.set_message(request.id, message_ts)
    except BotError:
        # The card is out; its buttons still reach the request, and clicks update it in place
        # through their own response_url.
        logger.exception("Could not record where request %s was posted", request.id)


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


def _recorder(services: Services, asked: _Asked, target: Target) -> Callable[..., None]:
    """Records a look-up that ended without a card; a database failure is only logged (the
    supervisor has had their answer)."""
    number = target.value if target.kind == TargetKind.NUMBER else ""
    reason = target.rest[:REASON_LIMIT] or None

    def record(outcome: str, detail: str, error: GenesysError | None = None) -> None:
        try:
            services.store.record_lookup(
                channel_id=asked.channel_id,
                requester_id=asked.user_id,
                number=number,
                outcome=outcome,
                detail=detail,
                error_code=error.code if error else None,
                context_id=error.context_id if error else None,
                dry_run=services.policy.dry_run,
                target_kind=target.kind,
                target=None if target.kind == TargetKind.NUMBER else target.value,
                reason=reason,
            )
        except BotError as exc:
            # The supervisor has been told already; the database says why it failed.
            logger.error("Could not record the look-up of %s: %s", _logged(target), exc)
        except Exception:
            # Anything else the database raises: logged, and the supervisor (who has their
            # answer) is not told of an internal error on top.
            logger.exception("Could not record the look-up of %s", _logged(target))

    return record


def _shown(target: Target) -> str:
    """The target as the supervisor's answers name it (mrkdwn, escaped)."""
    if target.kind == TargetKind.NUMBER:
        return escape(display_number(target.value))
    if target.kind == TargetKind.CONVERSATION:
        return f"`{escape(target.value)}`"
    return f"*{escape(target.value)}*"


def _logged(target: Target) -> str:
    """The target for a log line: numbers masked."""
    by_number = target.kind in (TargetKind.NUMBER, TargetKind.UNBLOCK)
    return mask_number(target.value) if by_number else target.value


def _first_number(matches: Sequence[CallMatch]) -> str:
    return next((m.number for m in matches if m.number), "")


def _abandon(services: Services, request_id: str) -> None:
    """Close a request whose card could not be posted, so no stray copy of it can act."""
    try:
        services.store.abandon(request_id, "The confirmation card could not be posted.")
    except BotError:
        logger.exception("Could not close request %s; it will expire", request_id)
