"""A drop request's life once its card is out: approve and carry out, cancel, expire, recover
after a crash, catch up on a lost card update or audit line.

Every path ends the same way (`_conclude`): the store records the new state first, then the
card shows it, then the audit channel gets its line. The store's record is what survives a
crash; the card and the line are caught up from it by the sweeper (`catch_up`) if either is
lost. The button handlers (`bot.actions`) hand a parsed `Click` here; the sweeper
(`bot.sweeper`) decides when to expire, recover and catch up.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import Respond

from bot.authorisation import Authoriser
from bot.blocking import BlockList, BlockListOff
from bot.calls import CallDirectory
from bot.cards import escape, outcome_card, progress_card, requester_notice
from bot.domain import (
    Claim,
    ClaimStatus,
    DropRequest,
    Outcome,
    RequestState,
    TargetKind,
    is_request_id,
)
from bot.errors import BotError
from bot.policy import Policy
from bot.publisher import CardPublisher, Delivery
from bot.store import RequestStore
from genesys.config import GenesysConfig
from genesys.errors import CallNotFound, GenesysError
from genesys.models import GONE_STATES, CallMatch

logger = logging.getLogger(__name__)

NO_SUCH_REQUEST = "The bot has no such request here, so nothing was done."

# Catching up on a card update or an audit line that did not go out gives up after this
# many failed attempts (spaced out, doubling from the sweeper's catch-up delay up to an
# hour), or once the request is this old, or at once on an error that cannot heal.
CATCH_UP_ATTEMPTS = 6
CATCH_UP_MAX_AGE = timedelta(days=1)
CATCH_UP_MAX_WAIT = timedelta(hours=1)
# A lease is renewed this many times per its length while the drop is carried out, and for
# at most this many lease lengths (every step is bounded; this only catches a bug).
_RENEWALS_PER_LEASE = 3
_MAX_LEASES = 10


def lease_for(config: GenesysConfig) -> timedelta:
    """How long a claimed drop may go unrenewed before another instance takes it as
    interrupted (its instance died): the longest one Genesys step can take while the
    instance is alive (a request's retry budget, then a last attempt's connect and read
    timeouts, or the confirming wait and its last read), plus a margin for the database.

    With the defaults, 3 + 10 + 8 + 4 = 25 s: a drop a crash interrupted is recovered
    within that plus one sweep (15 s), well inside a minute.
    """
    request = config.connect_timeout + config.read_timeout
    longest_step = max(config.retry.max_total_seconds + request, config.confirm_timeout + request)
    return timedelta(seconds=longest_step + 4)


@dataclass(frozen=True)
class Click:
    """A click on a card's button, parsed once from Slack's payload."""

    user_id: str
    channel_id: str
    team_id: str
    home_team_id: str | None
    request_id: str
    respond: Respond
    # The position of the call whose Disconnect button was clicked (-1 for Cancel).
    position: int = -1
    # The button was Disconnect and block.
    block: bool = False


@dataclass(frozen=True)
class Decision:
    """How an approved request ended, with the sentence for its card."""

    outcome: Outcome
    detail: str
    error_code: str | None = None
    context_id: str | None = None
    # More for the outcome's audit event (whether the note was written into Genesys).
    extra: dict[str, Any] | None = None


class DropWorkflow:
    """Carries requests from a click (or the sweeper's clock) to their recorded end."""

    def __init__(
        self,
        *,
        store: RequestStore,
        calls: CallDirectory,
        publisher: CardPublisher,
        authoriser: Authoriser,
        policy: Policy,
        blocklist: BlockList,
        lease: timedelta,
        now: Callable[[], datetime],
        on_end: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_end = on_end
        self._blocklist = blocklist
        self._lease = lease
        self._store = store
        self._calls = calls
        self._publisher = publisher
        self._authoriser = authoriser
        self._policy = policy
        self._now = now

    # ------------------------------------------------------------ clicks

    def approve(self, click: Click) -> None:
        """Authorise, claim the request atomically, re-check and act (disconnect, end a stuck
        conversation, or unblock a number), then show the outcome."""
        request = self._authorised_request(click)
        if request is None:
            return
        candidates = request.candidates
        teardown = 0 <= click.position < len(candidates) and candidates[click.position].stuck
        refusal = (
            self._policy.teardown_refusal(request.requester_id, click.user_id)
            if teardown
            else self._policy.self_approval_refusal(request.requester_id, click.user_id)
            or self._policy.protected_refusal(request.number)
        )
        if refusal:
            self.tell(click, refusal)
            return
        block = click.block and not teardown and request.target_kind != TargetKind.UNBLOCK
        try:
            claim = self._store.claim(
                request.id,
                click.user_id,
                click.position,
                block=block,
                lease_until=self._now() + self._lease,
            )
        except BotError as exc:
            self.tell(click, f":warning: {escape(str(exc))}")
            return
        if self._report_unclaimed(claim, click):
            return
        claimed = claim.request
        assert claimed is not None
        logger.info("%s approved request %s", click.user_id, claimed.id)
        self._publisher.replace(
            claimed, *progress_card(claimed, self._now()), respond=click.respond
        )
        try:
            with self._leased(claimed.id):
                decision = self._carry_out(claimed, click.user_id)
        except (GenesysError, BlockListOff) as exc:
            logger.warning("Request %s failed: %r", claimed.id, exc)
            code = exc.code if isinstance(exc, GenesysError) else None
            context = exc.context_id if isinstance(exc, GenesysError) else None
            decision = Decision(Outcome.FAILED, str(exc), code, context)
        except Exception:
            # A bug, not a Genesys answer: record it so the request is not left "approving".
            self._finish(
                claimed,
                Decision(
                    Outcome.UNKNOWN,
                    "The bot hit an internal error, so the outcome is unknown. "
                    "Check the call in Genesys Cloud.",
                ),
                click,
            )
            raise
        self._finish(claimed, decision, click)

    def _carry_out(self, claimed: DropRequest, approver: str) -> Decision:
        """Unblock the number; or end the chosen stuck conversation; or disconnect the chosen
        caller, then block the number when asked to. The call (and the policy: no protected
        number on it) is re-checked first, and a note saying who and why is written into the
        interaction (DROP_CALLER_WRITE_BACK).

        "Unconfirmed" is not a failure: Genesys accepted the request, and the card says
        plainly that the call had not yet been seen to change.
        """
        if claimed.target_kind == TargetKind.UNBLOCK:
            outcome, sentence = self._blocklist.unblock(claimed, approver)
            return Decision(outcome, sentence)
        chosen = claimed.chosen
        assert chosen is not None
        guard = self._policy.call_refusal
        note = self._note(claimed, approver)
        if chosen.stuck is not None:
            ended = self._calls.end_conversation(
                chosen.conversation_id, dry_run=claimed.dry_run, guard=guard, note=note
            )
            return Decision(
                Outcome(ended.outcome.value),
                ended.detail + _note_line(ended.note_error),
                None,
                ended.context_id,
                _note_record(note, ended.note_written, ended.note_error),
            )
        result = self._calls.disconnect_participant(
            chosen.conversation_id,
            chosen.participant_id,
            chosen.number,
            dry_run=claimed.dry_run,
            guard=guard,
            note=note,
        )
        outcome = Outcome(result.outcome.value)
        detail = result.detail + _note_line(result.note_error)
        if claimed.block:
            detail = f"{detail} {self._block_after(claimed, chosen, outcome, approver)}".strip()
        return Decision(
            outcome, detail, extra=_note_record(note, result.note_written, result.note_error)
        )

    def _block_after(
        self, claimed: DropRequest, chosen: CallMatch, outcome: Outcome, approver: str
    ) -> str:
        """Block the caller's number after its drop ("Disconnect and block"); the sentence."""
        if outcome == Outcome.DRY_RUN:
            return ""  # the dry run's card says what would have been blocked
        if outcome not in (Outcome.DISCONNECTED, Outcome.ALREADY_GONE, Outcome.UNCONFIRMED):
            return "Not blocked: the drop did not happen."
        return self._blocklist.block(claimed, chosen.number, approver).sentence

    def _note(self, claimed: DropRequest, approver: str) -> dict[str, str] | None:
        """The participant attributes written into the interaction before the action."""
        if not self._policy.write_back or claimed.dry_run:
            return None
        return {
            "dropCaller.requestId": claimed.id,
            "dropCaller.requestedBy": claimed.requester_id,
            "dropCaller.approvedBy": approver,
            "dropCaller.reason": (claimed.reason or "")[:200],
        }

    def cancel(self, click: Click) -> None:
        """Authorise, cancel the request atomically, show it on the card."""
        request = self._authorised_request(click)
        if request is None:
            return
        try:
            claim = self._store.cancel(request.id, click.user_id)
        except BotError as exc:
            self.tell(click, f":warning: {escape(str(exc))}")
            return
        if self._report_unclaimed(claim, click):
            return
        assert claim.request is not None
        self._conclude(claim.request, click)

    def tell(self, click: Click, text: str) -> None:
        """An ephemeral note to the clicker that leaves the card as it is."""
        self._publisher.notify(click.user_id, click.channel_id, text, click.respond)

    # ------------------------------------------------------------ the sweeper's work

    def expire_due(self) -> None:
        """Close the cards whose time has run out, and end the blocks whose time has run out
        (each by exactly one instance)."""
        for request in self._store.expire_due():
            logger.info("Request %s expired", request.id)
            self._conclude(request)
        for line in self._blocklist.expire_due():
            self._publisher.audit_text(f":unlock: {line}")

    def recover_interrupted(self) -> None:
        """Decide drops whose instance stopped renewing its lease (it died mid-drop)."""
        for request in self._store.stale_approvals(self._lease):
            self._recover(request)

    def catch_up(self, older_than: timedelta) -> None:
        """Show the state on cards, and post audit lines, that a crash or Slack left behind
        `older_than` ago: oldest first, each failure spacing the next attempt out, until an
        error that cannot heal, `CATCH_UP_ATTEMPTS` or `CATCH_UP_MAX_AGE` ends it
        (`announce_abandoned` in the audit trail, one warning in the log). A rate limit ends
        the sweep's catch-up: the rest wait for the next."""
        for request in self._store.unannounced(older_than, audit=self._publisher.audits):
            failed: dict[str, Delivery] = {}
            if request.card_behind:
                logger.info("Updating the card of request %s, left behind", request.id)
                card = self._publisher.show_outcome(request, self._now())
                if not card.ok:
                    failed["card"] = card
            if self._publisher.audits and not request.audit_posted:
                line = self._publisher.audit(request)
                if not line.ok:
                    failed["audit_line"] = line
            if failed:
                self._catch_up_failed(request, failed, older_than)
                if any(d.retry_after is not None for d in failed.values()):
                    return

    def _catch_up_failed(
        self, request: DropRequest, failed: dict[str, Delivery], first_wait: timedelta
    ) -> None:
        """Give up on a request's card and line, or wait longer before the next attempt."""
        attempts = request.announce_attempts + 1
        now = self._now()
        final = [what for what, delivery in failed.items() if delivery.final]
        if final or attempts >= CATCH_UP_ATTEMPTS or now - request.created_at >= CATCH_UP_MAX_AGE:
            errors = {what: delivery.error for what, delivery in failed.items()}
            why = (
                "an error that cannot heal"
                if final
                else f"{attempts} attempts"
                if attempts >= CATCH_UP_ATTEMPTS
                else "the request's age"
            )
            if self._store.abandon_announcing(
                request.id, {**errors, "attempts": attempts, "why": why}
            ):
                logger.warning(
                    "Gave up updating request %s in Slack after %s: %s",
                    request.id,
                    why,
                    ", ".join(f"{what} {error}" for what, error in errors.items()),
                )
            return
        wait = min(first_wait * 2 ** (attempts - 1), CATCH_UP_MAX_WAIT)
        asked = max((d.retry_after or 0.0 for d in failed.values()), default=0.0)
        wait = max(wait, timedelta(seconds=asked))
        self._store.postpone_announcing(request.id, attempts, now + wait)

    # ------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _leased(self, request_id: str) -> Iterator[None]:
        """Keep renewing the claimed drop's lease while the body runs, so that no other
        instance takes a slow drop for an interrupted one; a crash stops the renewals."""
        stop = threading.Event()
        every = self._lease.total_seconds() / _RENEWALS_PER_LEASE

        def renew() -> None:
            for _ in range(_RENEWALS_PER_LEASE * _MAX_LEASES):
                if stop.wait(every):
                    return
                try:
                    if not self._store.renew_lease(request_id, self._now() + self._lease):
                        return  # it has an outcome (recorded here or by a recovery)
                except BotError as exc:
                    logger.warning("Could not renew the lease on request %s: %s", request_id, exc)

        keeper = threading.Thread(target=renew, name=f"lease-{request_id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()

    def _recover(self, request: DropRequest) -> None:
        """Decide an interrupted drop from the call as it is now, and say so on the card."""
        chosen = request.chosen
        assert chosen is not None
        try:
            call = self._calls.get_live_call(chosen.conversation_id)
        except CallNotFound:
            call = None
        except GenesysError as exc:
            logger.warning("Cannot recover request %s yet: %s", request.id, exc)
            return
        if chosen.stuck is not None:
            decision = (
                Decision(
                    Outcome.ENDED,
                    "The bot was interrupted while ending this conversation. It has ended "
                    "since (ended by the bot or by Genesys).",
                )
                if call is None or not call.is_live
                else Decision(
                    Outcome.INTERRUPTED,
                    "The bot was interrupted while ending this conversation, and it is still "
                    "open. Run the command again if it still needs ending.",
                )
            )
            self._finish(request, decision)
            logger.warning("Recovered interrupted request %s: %s", request.id, decision.outcome)
            return
        party = call.party(chosen.participant_id) if call is not None else None
        if party is None or party.state in GONE_STATES:
            decision = Decision(
                Outcome.RECOVERED_GONE,
                "The bot was interrupted during this drop. The caller is no longer on "
                "the call (disconnected by the bot or hung up).",
            )
        else:
            decision = Decision(
                Outcome.INTERRUPTED,
                "The bot was interrupted during this drop and the caller is still on "
                "the call. Run the command again if the caller still needs dropping.",
            )
        final = self._finish(request, decision)
        logger.warning("Recovered interrupted request %s: %s", request.id, final.outcome)

    def _finish(
        self, claimed: DropRequest, decision: Decision, click: Click | None = None
    ) -> DropRequest:
        """Record how an approved request ended, then show it (`_conclude`).

        After a click, the card shows the outcome even if recording it failed: the
        supervisor must see what happened on Genesys, the log keeps the record, and the
        sweeper records it later (crash recovery: see the README). Without a click (the
        sweeper's recovery), a failure to record is raised: the next sweep tries again.
        """
        try:
            final = self._store.finish(
                claimed.id,
                succeeded=decision.outcome.succeeded,
                outcome=decision.outcome,
                detail=decision.detail,
                error_code=decision.error_code,
                context_id=decision.context_id,
                extra=decision.extra,
            )
        except BotError:
            if click is None:
                raise
            logger.exception(
                "Could not record the outcome of request %s: %s (%s)",
                claimed.id,
                decision.outcome,
                decision.detail,
            )
            final = replace(
                claimed,
                state=RequestState.DONE if decision.outcome.succeeded else RequestState.FAILED,
                outcome=decision.outcome,
                outcome_detail=decision.detail + " (The bot could not record this outcome.)",
            )
        self._conclude(final, click)
        return final

    def _conclude(
        self, request: DropRequest, click: Click | None = None, *, decided_here: bool = True
    ) -> None:
        """The end of every path: the card shows the recorded state; then, from the caller
        that made the change (`decided_here`), `on_end`, the audit line and a private word to
        the requester when someone else decided or the request expired.

        If the card cannot be updated after a click, the clicker is told the outcome.
        """
        respond = click.respond if click is not None else None
        shown = self._publisher.show_outcome(request, self._now(), respond=respond)
        if not shown.ok and click is not None:
            logger.warning("Could not update the card of request %s: %s", request.id, shown.error)
            self.tell(click, outcome_card(request, self._now())[0])
        if decided_here:
            self._on_end()  # the Home tab (bot.home), refreshed in the background
            self._publisher.audit(request)
            notice = requester_notice(request)
            if notice is not None:
                self._publisher.notify(request.requester_id, request.channel_id, notice)

    def _authorised_request(self, click: Click) -> DropRequest | None:
        """The request a click refers to, if the clicker may act on it; otherwise say why not."""
        refusal = self._authoriser.refusal(
            user_id=click.user_id,
            channel_id=click.channel_id,
            team_id=click.team_id,
            home_team_id=click.home_team_id,
        )
        if refusal:
            logger.info("Refused a click from %s in %s", click.user_id, click.channel_id)
            self.tell(click, refusal)
            return None
        try:
            request = self._store.get(click.request_id) if is_request_id(click.request_id) else None
        except BotError as exc:
            self.tell(click, f":warning: {escape(str(exc))}")
            return None
        if (
            request is None
            or request.channel_id != click.channel_id
            or request.team_id != click.team_id
        ):
            self.tell(click, NO_SUCH_REQUEST)
            return None
        return request

    def _report_unclaimed(self, claim: Claim, click: Click) -> bool:
        """Tell the clicker why their click did nothing; False when the claim succeeded."""
        if claim.status == ClaimStatus.CLAIMED:
            return False
        request = claim.request
        if claim.status == ClaimStatus.EXPIRED and request is not None:
            # Only the click that expired it posts its audit line; the card is shown anyway.
            self._conclude(request, click, decided_here=claim.expired_now)
            self.tell(click, "This request had expired, so nothing was disconnected.")
        elif claim.status == ClaimStatus.ALREADY_DECIDED and request is not None:
            self.tell(click, _already_decided(request))
        elif claim.status == ClaimStatus.PARTICIPANT_BUSY:
            self.tell(
                click,
                "Another card's request is disconnecting this caller right now, so this one "
                "did nothing. Its card shows the outcome.",
            )
        else:
            self.tell(click, NO_SUCH_REQUEST)
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


def _note_line(error: str | None) -> str:
    """The card's line when the note could not be written into Genesys."""
    return f" The note could not be written into Genesys ({error})." if error else ""


def _note_record(
    note: dict[str, str] | None, written: bool, error: str | None
) -> dict[str, Any] | None:
    if note is None:
        return None
    return {"note": "written" if written else f"not written: {error}"}
