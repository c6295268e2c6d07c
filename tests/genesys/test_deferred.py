"""genesys.deferred: the client is built in the background, at once when a call needs it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from genesys.deferred import DeferredGenesysCalls
from genesys.errors import GenesysUnavailable


class _Built:
    """Stands in for GenesysCalls: answers find_active_calls."""

    last_contact = None

    def find_active_calls(self, number: str) -> list[Any]:
        return [number]


def test_a_call_starts_the_build_at_once() -> None:
    """Told to wait 30 s before building, the client is still built as soon as a look-up
    needs it, and the look-up gets its answer."""
    built = threading.Event()

    def build() -> Any:
        built.set()
        return _Built()

    calls = DeferredGenesysCalls(build, start_after=30.0, wait=5.0)
    assert not built.wait(0.2)  # nothing asked for it yet

    assert calls.find_active_calls("+15551234567") == ["+15551234567"]  # type: ignore[comparison-overlap]
    assert built.is_set()


def test_the_client_is_built_by_itself_after_the_delay() -> None:
    """With no call asking for it, the build still happens once `start_after` has passed."""
    built = threading.Event()

    def build() -> Any:
        built.set()
        return _Built()

    DeferredGenesysCalls(build, start_after=0.05)

    assert built.wait(5.0)


def test_a_failed_build_is_reported_as_unavailable() -> None:
    """A build that raises leaves every call with GenesysUnavailable, not a hang."""

    def build() -> Any:
        raise RuntimeError("no SDK")

    calls = DeferredGenesysCalls(build, start_after=30.0, wait=5.0)

    with pytest.raises(GenesysUnavailable, match="not ready"):
        calls.find_active_calls("+15551234567")
