"""How the best-effort, real-time lookup sources are faring, said once per cause.

The activity queries (`genesys.queries`) are preview endpoints that need permissions of their
own. Whatever they answer never fails a command; what this module adds is that an admin can
see why they are not helping:

- each cause of failure is logged once when it starts, and once when the source works again,
  not once per command;
- a source refused for a permission (403) is left alone for `recheck_after` seconds, instead
  of costing a request (and a share of the rate limit) on every command; after that the next
  command tries it again, so granting the permission heals it without a restart;
- `statuses()` gives a sentence per source for `/drop-caller status`.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from genesys.errors import PERMISSION_NAMES, GenesysError, GenesysPermissionError

logger = logging.getLogger(__name__)

# A number no call has, for the start-up check of the real-time sources (555-01xx numbers are
# reserved for fiction).
PROBE_NUMBER = "+15555550100"
# How long a source refused for a missing permission is left alone before it is tried again.
RECHECK_AFTER = 300.0


class RealtimeSource(enum.Enum):
    """A real-time source of candidate calls, with the role permission it needs."""

    QUEUES = ("calls in queues", "analytics:queueObservation:view")
    FLOWS = ("callers in IVR flows", "analytics:flowObservation:view")

    def __init__(self, label: str, permission: str) -> None:
        self.label = label
        self.permission = permission

    @property
    def permission_name(self) -> str:
        """The permission as the Genesys admin UI names it."""
        return PERMISSION_NAMES.get(self.permission, self.permission)


class SourceState(enum.Enum):
    """What the last attempt of a source said."""

    UNTRIED = "untried"
    ANSWERING = "answering"
    FAILING = "failing"
    """It answered with an error or not in time; it is tried again on every command."""
    NO_PERMISSION = "no_permission"
    """Genesys refused it (403): it is off until `recheck_after` has passed."""


@dataclass(frozen=True)
class SourceStatus:
    """One source's state, with the sentence an admin reads."""

    source: RealtimeSource
    state: SourceState
    sentence: str


@dataclass
class _Track:
    state: SourceState = SourceState.UNTRIED
    cause: str | None = None
    sentence: str = ""
    recheck_at: float = 0.0


class RealtimeSources:
    """The state of every real-time source; safe to use from any thread."""

    def __init__(
        self,
        *,
        recheck_after: float = RECHECK_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recheck_after = recheck_after
        self._clock = clock
        self._lock = threading.Lock()
        self._tracks = {source: _Track() for source in RealtimeSource}

    def should_try(self, source: RealtimeSource) -> bool:
        """False while the source is off for a missing permission and not yet due a retry."""
        with self._lock:
            track = self._tracks[source]
            return track.state != SourceState.NO_PERMISSION or self._clock() >= track.recheck_at

    def answered(self, source: RealtimeSource) -> None:
        """The source answered: say so once if it had been failing."""
        with self._lock:
            track = self._tracks[source]
            was_failing = track.state in (SourceState.FAILING, SourceState.NO_PERMISSION)
            track.state = SourceState.ANSWERING
            track.cause = None
            track.sentence = f"Real-time lookup of {source.label} is on."
        if was_failing:
            logger.info("Real-time lookup of %s answers again.", source.label)

    def failed(self, source: RealtimeSource, error: GenesysError) -> None:
        """The source failed: log the cause if it is a new one, and remember it."""
        if isinstance(error, GenesysPermissionError):
            state = SourceState.NO_PERMISSION
            named = error.permission or source.permission
            lacks = (
                f"the role lacks {PERMISSION_NAMES.get(named, named)} ({named})"
                if error.permission
                else f"Genesys refused it ({_said(error)}); the role needs "
                f"{source.permission_name} ({source.permission})"
            )
            sentence = (
                f"Real-time lookup of {source.label} is off: {lacks}. Until an admin grants it, "
                "calls that started in the last few seconds may not be found."
            )
        else:
            state = SourceState.FAILING
            sentence = (
                f"Real-time lookup of {source.label} is failing ({error}); "
                "commands use the conversation index alone meanwhile."
            )
        cause = f"{type(error).__name__}:{error.status}:{error.code}:{error}"
        with self._lock:
            track = self._tracks[source]
            new_cause = track.cause != cause
            track.state = state
            track.cause = cause
            track.sentence = sentence
            if state == SourceState.NO_PERMISSION:
                track.recheck_at = self._clock() + self._recheck_after
        if new_cause:
            logger.warning("%s (contextId %s)", sentence, error.context_id or "none")

    def statuses(self) -> list[SourceStatus]:
        """Each source's state and sentence, in a fixed order."""
        with self._lock:
            return [
                SourceStatus(
                    source,
                    track.state,
                    track.sentence or f"Real-time lookup of {source.label}: not tried yet.",
                )
                for source, track in self._tracks.items()
            ]


def _said(error: GenesysError) -> str:
    parts = [str(error.status or "")]
    if error.code:
        parts.append(error.code)
    if error.context_id:
        parts.append(f"contextId {error.context_id}")
    return " ".join(part for part in parts if part)
