"""The card's buttons: Disconnect caller (one per call) and Cancel."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.authorisation import home_team_id
from bot.cards import (
    CANCEL_ACTION,
    DISCONNECT_ACTION_PREFIX,
    escape,
    progress_card,
)
from bot.errors import BotError
from bot.phone import mask_number
from bot.services import Services
from bot.store import Claim, ClaimStatus, DropRequest, RequestState
from genesys.errors import GenesysError

logger = logging.getLogger(__name__)

DISCONNECT_ACTION = re.compile(rf"^{DISCONNECT_ACTION_PREFIX}(\d{{1,2}})$")
_REQUEST_ID = re.compile(r"^[0-9a-f]{24}$")


def register(app: App, services: Services) -> None:
    """Attach the button handlers to `app`."""

    def disconnect_clicked(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Respond,
        context: Any,
    ) -> None:
        handle_disconnect_click(ack, body, action, respond, context, services)

    def cancel_clicked(
        ack: Ack,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Respond,
        context: Any,
    ) -> None:
        handle_cancel_click(ack, body, action, respond, context, services)

    app.action(DISCONNECT_ACTION)(disconnect_clicked)
    app.action(CANCEL_ACTION)(cancel_clicked)


def handle_disconnect_click(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    context: Any,
    services: Services,
) -> None:
    """Authorise, claim the request atomically, re-check and disconnect, update the card."""
    ack()
    matched = DISCONNECT_ACTION.match(str(action.get("action_id", "")))
    position = int(matched.group(1)) if matched else -1
    request = _authorised_request(body, action, respond, context, services)
    if request is None:
        return
    user_id = body["user"]["id"]
    refusal = services.policy.self_approval_refusal(
        request.requester_id, user_id
    ) or services.policy.protected_refusal(request.number)
    if refusal:
        _tell(respond, refusal)
        return
    try:
        claim = services.store.claim(request.id, user_id, position)
    except BotError as exc:
        _tell(respond, f":warning: {escape(str(exc))}")
        return
    if _report_unclaimed(claim, respond, services):
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
            respond,
            services,
            claimed,
            _Outcome(False, "failed", "The bot hit an internal error; check the call in Genesys."),
        )
        raise
    else:
        # "unconfirmed" is not a failure: Genesys accepted the request, and the card says
        # plainly that the caller had not yet been seen to leave.
        outcome = _Outcome(True, result.outcome.value, result.detail)
    _finish(respond, services, claimed, outcome)


@dataclass(frozen=True)
class _Outcome:
    succeeded: bool
    outcome: str
    detail: str
    error_code: str | None = None
    context_id: str | None = None


def _finish(
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
    services.publisher.show_outcome(final, services.now(), respond=respond)
    services.publisher.audit(final)


def handle_cancel_click(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    context: Any,
    services: Services,
) -> None:
    """Authorise, cancel the request atomically, update the card."""
    ack()
    request = _authorised_request(body, action, respond, context, services)
    if request is None:
        return
    try:
        claim = services.store.cancel(request.id, body["user"]["id"])
    except BotError as exc:
        _tell(respond, f":warning: {escape(str(exc))}")
        return
    if _report_unclaimed(claim, respond, services):
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
    user_id = str((body.get("user") or {}).get("id", ""))
    channel_id = str(
        (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    )
    request_id = str(action.get("value", ""))
    team_id = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    refusal = services.authoriser.refusal(
        user_id=user_id,
        channel_id=channel_id,
        team_id=team_id,
        home_team_id=home_team_id(context),
    )
    if refusal:
        logger.info("Refused a click from %s in %s", user_id, channel_id)
        _tell(respond, refusal)
        return None
    try:
        request = services.store.get(request_id) if _REQUEST_ID.match(request_id) else None
    except BotError as exc:
        _tell(respond, f":warning: {escape(str(exc))}")
        return None
    if request is None or request.channel_id != channel_id or request.team_id != team_id:
        _tell(respond, "The bot has no such request here, so nothing was done.")
        return None
    return request


def _report_unclaimed(claim: Claim, respond: Respond, services: Services) -> bool:
    """Tell the clicker why their click did nothing; False when the claim succeeded."""
    if claim.status == ClaimStatus.CLAIMED:
        return False
    request = claim.request
    if claim.status == ClaimStatus.EXPIRED and request is not None:
        services.publisher.show_outcome(request, services.now(), respond=respond)
        if claim.expired_now:
            services.publisher.audit(request)
        _tell(respond, "This request had expired, so nothing was disconnected.")
    elif claim.status == ClaimStatus.ALREADY_DECIDED and request is not None:
        who = f" by <@{request.decided_by}>" if request.decided_by else ""
        _tell(
            respond, f"This request was already {request.state.value}{who}; nothing more was done."
        )
    else:
        _tell(respond, "The bot has no such request here, so nothing was done.")
    return True


def _tell(respond: Respond, text: str) -> None:
    """An ephemeral note to the clicker that leaves the card as it is."""
    answer = respond(text=text, response_type="ephemeral", replace_original=False)
    if answer.status_code != 200:
        logger.warning("Could not tell the clicker (HTTP %s)", answer.status_code)
