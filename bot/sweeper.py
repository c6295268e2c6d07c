"""Background upkeep: close expired cards, and finish drops a crash left half-done.

With several instances, each runs a sweeper; every change it makes is a conditional UPDATE
in the store, so each card is edited by exactly one of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.publisher import CardPublisher
from bot.services import CallDirectory
from bot.store import DropRequest, RequestStore
from genesys.errors import CallNotFound, GenesysError
from genesys.models import GONE_STATES

logger = logging.getLogger(__name__)

# Defaults (settings DROP_CALLER_RECOVER_AFTER and DROP_CALLER_CATCH_UP_AFTER):
# an approval older than this with no outcome was interrupted (the bot died mid-drop): every
# Genesys step is bounded well below it (retries 8 s, confirmation 5 s, timeouts 10 s each).
RECOVER_AFTER = timedelta(minutes=2)
# A decided request whose card or audit line is still behind this long after the decision
# lost them to a crash or a Slack outage: the sweeper shows or posts them again.
CATCH_UP_AFTER = timedelta(seconds=30)


class Sweeper:
    """Runs `sweep_once` every `interval` seconds in a daemon thread."""

    def __init__(
        self,
        store: RequestStore,
        calls: CallDirectory,
        publisher: CardPublisher,
        *,
        interval: float,
        now: Callable[[], datetime],
        recover_after: timedelta = RECOVER_AFTER,
        catch_up_after: timedelta = CATCH_UP_AFTER,
    ) -> None:
        self._store = store
        self._calls = calls
        self._publisher = publisher
        self._interval = interval
        self._now = now
        self._recover_after = recover_after
        self._catch_up_after = catch_up_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sweep now (a restart may have left work) and then every `interval` seconds."""
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def sweep_once(self) -> None:
        """Expire overdue cards, recover interrupted drops, catch up on lost card updates."""
        for request in self._store.expire_due():
            logger.info("Request %s expired", request.id)
            self._publisher.show_outcome(request, self._now())
            self._publisher.audit(request)
        for request in self._store.stale_approvals(self._recover_after):
            self._recover(request)
        for request in self._store.unannounced(self._catch_up_after, audit=self._publisher.audits):
            if request.card_shown_state != request.state.value:
                logger.info("Updating the card of request %s, left behind", request.id)
                self._publisher.show_outcome(request, self._now())
            if self._publisher.audits and not request.audit_posted:
                self._publisher.audit(request)

    def _run(self) -> None:
        while True:
            try:
                self.sweep_once()
            except Exception:
                # Keep sweeping: a database or Slack outage passes.
                logger.exception("Sweep failed; trying again in %g s", self._interval)
            if self._stop.wait(self._interval):
                return

    def _recover(self, request: DropRequest) -> None:
        """Decide an interrupted drop from the call as it is now, and say so on the card."""
        chosen = request.chosen
        assert chosen is not None
        try:
            party = self._calls.get_live_call(chosen.conversation_id).party(chosen.participant_id)
        except CallNotFound:
            party = None
        except GenesysError as exc:
            logger.warning("Cannot recover request %s yet: %s", request.id, exc)
            return
        if party is None or party.state in GONE_STATES:
            final = self._store.finish(
                request.id,
                succeeded=True,
                outcome="recovered_gone",
                detail="The bot was interrupted during this drop. The caller is no longer on "
                "the call (disconnected by the bot or hung up).",
            )
        else:
            final = self._store.finish(
                request.id,
                succeeded=False,
                outcome="interrupted",
                detail="The bot was interrupted during this drop and the caller is still on "
                "the call. Run the command again if the caller still needs dropping.",
            )
        logger.warning("Recovered interrupted request %s: %s", request.id, final.outcome)
        self._publisher.show_outcome(final, self._now())
        self._publisher.audit(final)
