"""Background upkeep on a clock: it decides when; the workflow (`bot.drops`) does the work.

Every sweep expires overdue cards, recovers drops a crash left half-done and catches up on
card updates and audit lines left behind. With several instances, each runs a sweeper; every
change is a conditional UPDATE in the store, so each card is edited by exactly one of them.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from bot.drops import DropWorkflow
from bot.errors import BotError

logger = logging.getLogger(__name__)

# The default of DROP_CALLER_CATCH_UP_AFTER: a decided request whose card or audit line is
# still behind this long after the decision lost them to a crash or a Slack outage: the
# sweeper shows or posts them again (then waits twice as long after each failure).
CATCH_UP_AFTER = timedelta(seconds=30)


class Sweeper:
    """Runs `sweep_once` every `interval` seconds in a daemon thread."""

    def __init__(
        self,
        drops: DropWorkflow,
        *,
        interval: float,
        catch_up_after: timedelta = CATCH_UP_AFTER,
    ) -> None:
        self._drops = drops
        self._interval = interval
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
        self._drops.expire_due()
        self._drops.recover_interrupted()
        self._drops.catch_up(self._catch_up_after)

    def _run(self) -> None:
        while True:
            try:
                self.sweep_once()
            except BotError as exc:
                # Keep sweeping: a database outage passes (one line, not a traceback a sweep).
                logger.warning("Sweep stopped (%s); trying again in %g s", exc, self._interval)
            except Exception:
                logger.exception("Sweep failed; trying again in %g s", self._interval)
            if self._stop.wait(self._interval):
                return
