"""The real-time sources' state: each cause said once, a refused source left alone a while."""

from __future__ import annotations

import logging

import pytest

from genesys.errors import GenesysPermissionError, GenesysUnavailable
from genesys.realtime import RealtimeSource, RealtimeSources, SourceState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _missing(permission: str | None) -> GenesysPermissionError:
    return GenesysPermissionError(
        "refused", permission=permission, code="missing.any.permissions", context_id="ctx"
    )


def test_each_cause_is_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    """The same failure ten times is one warning; a new cause is another; answering again is
    one info line."""
    caplog.set_level(logging.INFO, logger="genesys.realtime")
    sources = RealtimeSources()
    down = GenesysUnavailable("Genesys Cloud is unavailable (HTTP 500)", status=500)
    for _ in range(10):
        sources.failed(RealtimeSource.QUEUES, down)
    sources.failed(RealtimeSource.QUEUES, GenesysUnavailable("no answer in time"))
    sources.answered(RealtimeSource.QUEUES)
    sources.answered(RealtimeSource.QUEUES)

    messages = [r.getMessage() for r in caplog.records]
    assert sum("HTTP 500" in m for m in messages) == 1
    assert sum("no answer in time" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1


def test_missing_permission_turns_the_source_off_until_a_recheck() -> None:
    """A 403 names the permission in the status and skips the source for `recheck_after`."""
    clock = Clock()
    sources = RealtimeSources(recheck_after=300, clock=clock)
    sources.failed(RealtimeSource.FLOWS, _missing("analytics:flowObservation:view"))

    assert not sources.should_try(RealtimeSource.FLOWS)
    assert sources.should_try(RealtimeSource.QUEUES)
    flows = next(s for s in sources.statuses() if s.source is RealtimeSource.FLOWS)
    assert flows.state is SourceState.NO_PERMISSION
    assert "the role lacks Analytics > Flow Observation > View" in flows.sentence
    clock.now += 301
    assert sources.should_try(RealtimeSource.FLOWS)


def test_a_403_naming_no_permission_does_not_claim_one_is_missing() -> None:
    """A bare 403 says Genesys refused the source and which permission it needs, not that
    the role lacks it."""
    sources = RealtimeSources()
    sources.failed(RealtimeSource.QUEUES, _missing(None))

    [queues] = [s for s in sources.statuses() if s.source is RealtimeSource.QUEUES]
    assert "lacks" not in queues.sentence
    assert "Genesys refused it" in queues.sentence
    assert "needs Analytics > Queue Observation > View" in queues.sentence


def test_untried_sources_say_so() -> None:
    """Before the first attempt, every source reads as not tried yet."""
    assert {s.state for s in RealtimeSources().statuses()} == {SourceState.UNTRIED}
