"""The Genesys operations the bot needs, behind one object: find calls, read one,
disconnect one participant, end a stuck conversation.

Requests go through one `GenesysSession` (token, pacing, retries, errors); finding calls is
`genesys.lookup`. This module carries out the two actions, each re-checked against the live
call first and confirmed by reading it again afterwards, since Genesys applies both
asynchronously.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import wait
from datetime import UTC, datetime

from genesys.config import GenesysConfig
from genesys.datatables import DataTables
from genesys.errors import (
    CallNotFound,
    GenesysError,
    GenesysRequestRejected,
    GenesysUnavailable,
)
from genesys.lookup import CallFinder
from genesys.models import (
    GONE_STATES,
    Agent,
    CallLookup,
    DisconnectOutcome,
    DisconnectResult,
    Guard,
    LiveCall,
    TeardownOutcome,
    TeardownResult,
)
from genesys.probes import Features, Probe, run_probes
from genesys.realtime import SourceStatus
from genesys.sdk import sdk
from genesys.session import GenesysSession, in_background

logger = logging.getLogger(__name__)

DISCONNECT_PERMISSION = "conversation:communication:disconnect"

# Genesys error codes that mean "that participant is not on the call any more".
_ALREADY_GONE_CODES = frozenset(
    {"conversation.error.call.disconnected", "conversation.error.not.conversation.participant"}
)


class GenesysCalls:
    """Find live calls and act on them, through the official SDK."""

    def __init__(
        self,
        config: GenesysConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._session = GenesysSession(config, clock=clock, sleep=sleep, now=now)
        self._finder = CallFinder(self._session)
        self.data_tables = DataTables(self._session)

    # ---------------------------------------------------------------- state

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered a request, if ever."""
        return self._session.last_contact

    @property
    def tokens_fetched(self) -> int:
        """How many times this client has signed in."""
        return self._session.tokens_fetched

    def realtime_statuses(self) -> list[SourceStatus]:
        """How each real-time source fared when last asked (no request is sent)."""
        return self._finder.realtime.statuses()

    def check_realtime_sources(self) -> list[SourceStatus]:
        """See `CallFinder.check_realtime_sources`."""
        return self._finder.check_realtime_sources()

    def probe_access(self, features: Features) -> list[Probe]:
        """Sign in and probe each permission `features` need, changing nothing (see
        `genesys.probes`)."""
        return run_probes(self._session, self._finder, self.data_tables, features)

    # ---------------------------------------------------------------- finding calls

    def find_active_calls(self, number: str, *, guard: Guard | None = None) -> CallLookup:
        """Live voice calls in which `number` (E.164) is a live caller or external party."""
        return self._finder.by_number(number, guard=guard)

    def find_agent(self, email: str) -> Agent | None:
        """The Genesys user whose email is exactly `email`, or None."""
        return self._finder.agent(email)

    def find_agent_calls(self, user_id: str, *, guard: Guard | None = None) -> CallLookup:
        """The agent's live voice calls, newest first (stuck ones as one entry each)."""
        return self._finder.by_agent(user_id, guard=guard)

    def look_up_conversation(
        self, conversation_id: str, *, guard: Guard | None = None
    ) -> CallLookup:
        """One conversation's live callers, or itself when stuck; `CallNotFound` if unknown."""
        return self._finder.conversation(conversation_id, guard=guard)

    def get_live_call(self, conversation_id: str) -> LiveCall:
        """The call as Genesys sees it now; raises `CallNotFound` for an unknown call."""
        return self._finder.read_call(conversation_id)

    # ---------------------------------------------------------------- actions

    def disconnect_participant(
        self,
        conversation_id: str,
        participant_id: str,
        number: str,
        *,
        dry_run: bool = False,
        guard: Guard | None = None,
        note: dict[str, str] | None = None,
    ) -> DisconnectResult:
        """Disconnect exactly one outside participant, after checking it is still the caller.

        The call is re-read first: the participant must still be a live customer or external
        party carrying `number` (any number, when `number` is empty: a party chosen by
        conversation or agent), and the call must pass `guard`. Genesys applies the PATCH
        asynchronously, so the call is read again until the participant has left (bounded by
        `confirm_timeout`). With `dry_run`, every check runs but the PATCH is not sent.

        `note`: participant attributes written into the interaction just before the PATCH
        (best-effort, see `_write_note`), so that Genesys itself says who dropped the caller.
        """
        noted: tuple[bool, str | None] = (False, None)

        def result(outcome: DisconnectOutcome, detail: str) -> DisconnectResult:
            return DisconnectResult(
                outcome, conversation_id, participant_id, detail, noted[0], noted[1]
            )

        try:
            live = self.get_live_call(conversation_id)
        except CallNotFound:
            # Any 404, whatever Genesys' code for it: the call is over.
            return result(
                DisconnectOutcome.ALREADY_GONE,
                "The caller had already hung up: the call has ended.",
            )
        party = live.party(participant_id)
        if party is None or party.state in GONE_STATES:
            return result(DisconnectOutcome.ALREADY_GONE, "The caller had already hung up.")
        if not party.is_outside_party or (number and number not in party.numbers):
            # Our store chose this participant; if Genesys now says otherwise, do nothing.
            raise GenesysRequestRejected(
                "That participant is no longer the caller with this number, "
                "so nothing was disconnected. Run the command again."
            )
        if not party.is_live:
            return result(
                DisconnectOutcome.ALREADY_GONE,
                f"The caller is no longer on the call (state {party.state}).",
            )

        refusal = guard(live) if guard is not None else None
        if refusal is not None:
            return result(DisconnectOutcome.REFUSED, refusal)
        if dry_run:
            return result(
                DisconnectOutcome.DRY_RUN,
                "Dry run: the caller is on the call and would have been disconnected; "
                "nothing was sent to Genesys.",
            )
        if note:
            noted = self._write_note(conversation_id, participant_id, note)
        attempts = 0

        def send_patch() -> None:
            nonlocal attempts
            attempts += 1
            # A retry after a lost answer: the first PATCH may have gone through. Look
            # before sending another, so Genesys never gets a second disconnect.
            if attempts > 1 and self._has_left(conversation_id, participant_id):
                return
            body = sdk.MediaParticipantRequest()
            body.state = "disconnected"
            self._session.conversations.patch_conversations_call_participant(
                conversation_id, participant_id, body
            )

        try:
            self._session.request(
                "disconnecting the caller", send_patch, needs=DISCONNECT_PERMISSION
            )
        except (GenesysRequestRejected, CallNotFound) as error:
            # A 404 (the call or the participant is gone) or a 400 saying it disconnected.
            if isinstance(error, GenesysRequestRejected) and error.code not in _ALREADY_GONE_CODES:
                raise
            if attempts == 1:
                return result(DisconnectOutcome.ALREADY_GONE, "The caller had already hung up.")
            # An earlier attempt may have gone through before its answer was lost: the
            # confirming read below tells whether the participant has left.
        except GenesysUnavailable as error:
            # A timeout or 5xx does not say the PATCH was not applied: look before saying so.
            if not self._has_left(conversation_id, participant_id):
                raise
            return result(
                DisconnectOutcome.DISCONNECTED,
                "The caller has left the call, though Genesys did not confirm the request "
                f"({error}).",
            )

        try:
            gone = self._wait_until_gone(conversation_id, participant_id)
        except GenesysError as error:
            # The disconnect was accepted; only the check failed. Say exactly that.
            return result(
                DisconnectOutcome.UNCONFIRMED,
                "Genesys accepted the request, but the bot could not check that the caller "
                f"left ({error}). Check the call in Genesys Cloud.",
            )
        if gone:
            return result(DisconnectOutcome.DISCONNECTED, "The caller was disconnected.")
        return result(
            DisconnectOutcome.UNCONFIRMED,
            "Genesys accepted the request, but the caller was still on the call "
            f"{self._config.confirm_timeout:g} s later. Check the call in Genesys Cloud.",
        )

    def end_conversation(
        self,
        conversation_id: str,
        *,
        dry_run: bool = False,
        guard: Guard | None = None,
        note: dict[str, str] | None = None,
    ) -> TeardownResult:
        """End a whole stuck conversation (every participant, agents included).

        The conversation is re-read first: it must still be stuck (live, with no caller or
        external party on it) and pass `guard`. Then `POST /api/v2/conversations/{id}/
        disconnect`; Genesys applies it asynchronously, so the conversation is read again
        until every participant has gone (bounded by `confirm_timeout`), and only then is it
        said to have ended. With `dry_run`, every check runs but nothing is sent. `note` goes
        on the conversation's first live participant, as for a disconnect.
        """
        noted: tuple[bool, str | None] = (False, None)

        def result(
            outcome: TeardownOutcome, detail: str, context_id: str | None = None
        ) -> TeardownResult:
            return TeardownResult(outcome, conversation_id, detail, context_id, *noted)

        try:
            live = self.get_live_call(conversation_id)
        except CallNotFound:
            return result(TeardownOutcome.ALREADY_ENDED, "The conversation had already ended.")
        if not live.is_live:
            return result(TeardownOutcome.ALREADY_ENDED, "The conversation had already ended.")
        if live.live_outside_parties():
            return result(
                TeardownOutcome.NOT_STUCK,
                "A caller or external party is on the call again, so it was not stuck after "
                "all: nothing was torn down. Drop the caller instead if needed.",
            )
        refusal = guard(live) if guard is not None else None
        if refusal is not None:
            return result(TeardownOutcome.REFUSED, refusal)
        if dry_run:
            return result(
                TeardownOutcome.DRY_RUN,
                "Dry run: the conversation is still stuck and would have been ended; nothing "
                "was sent to Genesys.",
            )
        if note:
            first = next(p for p in live.parties if p.is_live)
            noted = self._write_note(conversation_id, first.participant_id, note)
        try:
            _, headers = self._session.request(
                "ending the conversation",
                lambda: self._session.call_json(
                    "POST",
                    "/api/v2/conversations/{conversationId}/disconnect",
                    path_params={"conversationId": conversation_id},
                    with_headers=True,
                ),
                needs=DISCONNECT_PERMISSION,
            )
        except CallNotFound:
            return result(TeardownOutcome.ALREADY_ENDED, "The conversation had already ended.")
        context_id = headers.get("inin-correlation-id")
        try:
            ended = self._wait_until_ended(conversation_id)
        except GenesysError as error:
            return result(
                TeardownOutcome.UNCONFIRMED,
                "Genesys accepted the request, but the bot could not check that the "
                f"conversation ended ({error}). For a support case, Genesys' contextId is "
                f"{context_id or 'not known'}.",
                context_id,
            )
        if ended:
            return result(TeardownOutcome.ENDED, "Every participant has left the conversation.")
        return result(
            TeardownOutcome.UNCONFIRMED,
            "Genesys accepted the request, but some participants were still on the "
            f"conversation {self._config.confirm_timeout:g} s later. Check it in Genesys "
            f"Cloud; for a support case, Genesys' contextId is {context_id or 'not known'}.",
            context_id,
        )

    # ---------------------------------------------------------------- the note

    def _write_note(
        self, conversation_id: str, participant_id: str, note: dict[str, str]
    ) -> tuple[bool, str | None]:
        """Write `note` as participant attributes; (written, why not).

        Best-effort: one attempt, waited for `note_budget` seconds at most, so a Genesys that
        refuses it (a 403, any 4xx, a 5xx) or does not answer never stops the disconnect nor
        holds it up for longer. Written while the participant is still connected, as Genesys
        accepts it only then.
        """
        budget = self._config.note_budget
        future = in_background(
            self._session.once,
            "writing the note into the interaction",
            lambda: self._session.call_json(
                "PATCH",
                "/api/v2/conversations/calls/{conversationId}/participants/{participantId}"
                "/attributes",
                path_params={"conversationId": conversation_id, "participantId": participant_id},
                body={"attributes": note},
            ),
        )
        done, _ = wait([future], timeout=budget)
        if not done:
            logger.warning("The note on %s was not written within %g s", conversation_id, budget)
            return False, f"Genesys Cloud did not answer within {budget:g} s"
        error = future.exception()
        if error is None:
            return True, None
        logger.warning("The note on %s was not written: %r", conversation_id, error)
        return False, str(error) if isinstance(error, GenesysError) else repr(error)

    # ---------------------------------------------------------------- confirming

    def _has_left(self, conversation_id: str, participant_id: str) -> bool:
        """One read: True when the participant is known to have left; False if unsure."""
        try:
            party = self.get_live_call(conversation_id).party(participant_id)
        except CallNotFound:
            return True
        except GenesysError:
            return False
        return party is None or party.state in GONE_STATES

    def _wait_until_gone(self, conversation_id: str, participant_id: str) -> bool:
        """Read the call until the participant has left, bounded by confirm_timeout."""

        def gone() -> bool:
            party = self.get_live_call(conversation_id).party(participant_id)
            return party is None or party.state in GONE_STATES

        return self._poll(gone)

    def _wait_until_ended(self, conversation_id: str) -> bool:
        """Read the conversation until no participant is on it, bounded by confirm_timeout."""
        return self._poll(lambda: not self.get_live_call(conversation_id).is_live)

    def _poll(self, done: Callable[[], bool]) -> bool:
        """Call `done` until it is True (a 404 counts as done), backing off, until
        `confirm_timeout`; False if it never was."""
        deadline = self._clock() + self._config.confirm_timeout
        # Genesys usually applies a change at once; back off after that, so a slow one costs
        # a handful of reads (and of the rate limit), not twenty.
        interval = self._config.confirm_interval
        while True:
            try:
                if done():
                    return True
            except CallNotFound:
                return True
            if self._clock() + interval > deadline:
                return False
            self._sleep(interval)
            interval = min(interval * 2, 1.0)
