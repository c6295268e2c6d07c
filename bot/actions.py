"""The card's buttons: Disconnect caller (one per call) and Cancel."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.authorisation import home_team_id
from bot.cards import (
    CANCEL_ACTION,
    DISCONNECT_ACTION_PREFIX,
    escape,
    outcome_card,
    progress_card,
)
from bot.commands import BUSY, INTERNAL_ERROR
from bot.errors import BotError
from bot.phone import mask_number
from bot.services import Services
from bot.store import Claim, ClaimStatus, DropRequest, RequestState, is_request_id
from genesys.errors import GenesysError

logger = logging.getLogger(__name__)

# Exactly the ids cards carry (drop_caller_disconnect_0 … _99): ASCII digits, no leading zero,
# nothing after (\Z, not $, which would also match before a trailing newline).
DISCONNECT_ACTION = re.compile(rf"^{DISCONNECT_ACTION_PREFIX}(0|[1-9][0-9]?)\Z", re.ASCII)


def register(app: App, services: Services) -> None:
    """Attach the button handlers to `app`."""

    def disconnect_clicked(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Respond,
        context: Any,
    ) -> None:
        ack()
        _queue(
            lambda: handle_disconnect_click(body, action, respond, context, services),
            body,
            respond,
            services,
        )

    def cancel_clicked(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Respond,
        context: Any,
    ) -> None:
        ack()
        _queue(
            lambda: handle_cancel_click(body, action, respond, context, services),
            body,
            respond,
            services,
        )

    app.action(DISCONNECT_ACTION)(disconnect_clicked)
    app.action(CANCEL_ACTION)(cancel_clicked)


def _queue(
    job: Callable[[], None], body: dict[str, Any], respond: Respond, services: Services
) -> None:
    """Run a click's work after the ack, off Bolt's listener threads."""
    queued = services.work.submit(
        job, on_error=lambda _: _tell(services, body, respond, INTERNAL_ERROR)
    )
    if not queued:
        # A click's answer carries no text, so this goes through response_url: from a
        # thread of its own, not before the answer, which would wait for Slack's round trip.
        threading.Thread(
            target=_tell, args=(services, body, respond, BUSY), name="busy-note", daemon=True
        ).start()


def handle_disconnect_click(
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    context: Any,
    services: Services,
) -> None:
    """Authorise, claim the request atomically, re-check and disconnect, update the card."""
    matched = DISCONNECT_ACTION.match(str(action.get("action_id", "")))
    position = int(matched.group(1)) if matched else -1
    request = _authorised_request(body, action, respond, context, services)
    if request is None:
        return
    user_id = _user_id(body)
    refusal = services.policy.self_approval_refusal(
        request.requester_id, user_id
    ) or services.policy.protected_refusal(request.number)
    if refusal:
        _tell(services, body, respond, refusal)
        return
    try:
        claim = services.store.claim(request.id, user_id, position)
    except BotError as exc:
        _tell(services, body, respond, f":warning: {escape(str(exc))}")
        return
    if _report_unclaimed(claim, body, respond, services):
        return
    claimed = claim.request
    assert claimed is not None
    chosen = claimed.chosen
    assert chosen is not None
    logger.info(
        "%s approved dropping %s from %s",
        user_id,
        mask_number(claimed.number),
        chosen.conversation_id,
    )
    services.publisher.replace(claimed, *progress_card(claimed, services.now()), respond=respond)
    try:
        result = services.calls.disconnect_participant(
            chosen.conversation_id,
            chosen.participant_id,
            claimed.number,
            dry_run=claimed.dry_run,
        )
    except GenesysError as exc:
        logger.warning("Disconnect for request %s failed: %r", claimed.id, exc)
        outcome = _Outcome(False, "failed", str(exc), exc.code, exc.context_id)
    except Exception:
        # A bug, not a Genesys answer: record it so the request is not left "approving".
        _finish(
            body,
            respond,
            services,
            claimed,
            _Outcome(
                False,
                "unknown",
                "The bot hit an internal error, so the outcome is unknown. "
                "Check the call in Genesys Cloud.",
            ),
        )
        raise
    else:
        # "unconfirmed" is not a failure: Genesys accepted the request, and the card says
        # plainly that the caller had not yet been seen to leave.
        outcome = _Outcome(True, result.outcome.value, result.detail)
    _finish(body, respond, services, claimed, outcome)


@dataclass(frozen=True)
class _Outcome:
    succeeded: bool
    outcome: str
    detail: str
    error_code: str | None = None
    context_id: str | None = None


def _finish(
    body: dict[str, Any],
    respond: Respond,
    services: Services,
    claimed: DropRequest,
    outcome: _Outcome,
) -> None:
    """Record the outcome, then show it on the card and in the audit channel.

    The card shows the outcome even if recording it failed: the supervisor must see what
    happened on Genesys, and the log keeps the record (crash recovery: see the README).
    """
    try:
        final = services.store.finish(
            claimed.id,
            succeeded=outcome.succeeded,
            outcome=outcome.outcome,
            detail=outcome.detail,
            error_code=outcome.error_code,
            context_id=outcome.context_id,
        )
    except BotError:
        # The supervisor must still see what happened on Genesys; the log keeps the record.
        logger.exception(
            "Could not record the outcome of request %s: %s (%s)",
            claimed.id,
            outcome.outcome,
            outcome.detail,
        )
        final = replace(
            claimed,
            state=RequestState.DONE if outcome.succeeded else RequestState.FAILED,
            outcome=outcome.outcome,
            outcome_detail=outcome.detail + " (The bot could not record this outcome.)",
        )
    if not services.publisher.show_outcome(final, services.now(), respond=respond):
        # The card could not be updated: the approver must still learn the outcome.
        _tell(services, body, respond, outcome_card(final, services.now())[0])
    services.publisher.audit(final)


def handle_cancel_click(
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    context: Any,
    services: Services,
) -> None:
    """Authorise, cancel the request atomically, update the card."""
    request = _authorised_request(body, action, respond, context, services)
    if request is None:
        return
    try:
        claim = services.store.cancel(request.id, _user_id(body))
    except BotError as exc:
        _tell(services, body, respond, f":warning: {escape(str(exc))}")
        return
    if _report_unclaimed(claim, body, respond, services):
        return
    assert claim.request is not None
    services.publisher.show_outcome(claim.request, services.now(), respond=respond)
    services.publisher.audit(claim.request)


def _authorised_request(
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    context: Any,
    services: Services,
) -> DropRequest | None:
    """The request a click refers to, if the clicker may act on it; otherwise say why not."""
    user_id = _user_id(body)
    channel_id = _channel_id(body)
    value = action.get("value")
    request_id = value if isinstance(value, str) else ""
    team_id = _team_id(body)
    refusal = services.authoriser.refusal(
        user_id=user_id,
        channel_id=channel_id,
        team_id=team_id,
        home_team_id=home_team_id(context),
    )
    if refusal:
        logger.info("Refused a click from %s in %s", user_id, channel_id)
        _tell(services, body, respond, refusal)
        return None
    try:
        request = services.store.get(request_id) if is_request_id(request_id) else None
    except BotError as exc:
        _tell(services, body, respond, f":warning: {escape(str(exc))}")
        return None
    if request is None or request.channel_id != channel_id or request.team_id != team_id:
        _tell(services, body, respond, "The bot has no such request here, so nothing was done.")
        return None
    return request


def _report_unclaimed(
    claim: Claim, body: dict[str, Any], respond: Respond, services: Services
) -> bool:
    """Tell the clicker why their click did nothing; False when the claim succeeded."""
    if claim.status == ClaimStatus.CLAIMED:
        return False
    request = claim.request
    if claim.status == ClaimStatus.EXPIRED and request is not None:
        services.publisher.show_outcome(request, services.now(), respond=respond)
        if claim.expired_now:
            services.publisher.audit(request)
        _tell(services, body, respond, "This request had expired, so nothing was disconnected.")
    elif claim.status == ClaimStatus.ALREADY_DECIDED and request is not None:
        _tell(services, body, respond, _already_decided(request))
    elif claim.status == ClaimStatus.PARTICIPANT_BUSY:
        _tell(
            services,
            body,
            respond,
            "Another card's request is disconnecting this caller right now, so this one did "
            "nothing. Its card shows the outcome.",
        )
    else:
        _tell(services, body, respond, "The bot has no such request here, so nothing was done.")
    return True


def _already_decided(request: DropRequest) -> str:
    """Why a click on a decided request did nothing, in words."""
    who = f"<@{request.decided_by}>" if request.decided_by else "someone"
    sentences = {
        RequestState.APPROVING: f"{who} already approved this drop and it is being carried out.",
        RequestState.DONE: f"{who} already approved this drop; the card shows the outcome.",
        RequestState.FAILED: f"{who} already tried this drop and it failed; the card says why. "
        "Run the command again to retry.",
        RequestState.CANCELLED: f"This request was already cancelled by {who}.",
        RequestState.EXPIRED: "This request had already expired.",
    }
    return sentences.get(request.state, "This request was already decided.") + (
        " Nothing more was done."
    )


def _tell(services: Services, body: dict[str, Any], respond: Respond, text: str) -> None:
    """An ephemeral note to the clicker that leaves the card as it is."""
    services.publisher.notify(_user_id(body), _channel_id(body), text, respond)


def _user_id(body: dict[str, Any]) -> str:
    return _field(body, "user", "id")


def _channel_id(body: dict[str, Any]) -> str:
    return _field(body, "channel", "id") or _field(body, "container", "channel_id")


def _team_id(body: dict[str, Any]) -> str:
    return _field(body, "team", "id") or _field(body, "user", "team_id")


def _field(body: dict[str, Any], part: str, key: str) -> str:
    """body[part][key] as a string, or "" when the payload is not shaped like Slack's."""
    section = body.get(part)
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, str) else ""
