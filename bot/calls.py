"""The Genesys operations the Slack side needs, as a protocol.

`genesys.client.GenesysCalls` implements it; the Slack side depends only on this (tests can
hand the bot anything that does the same).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from genesys.models import CallLookup, DisconnectResult, LiveCall
from genesys.realtime import SourceStatus


class CallDirectory(Protocol):
    """Find live calls, read one, disconnect one participant."""

    def find_active_calls(self, number: str) -> CallLookup:
        """Live calls in which `number` is a droppable party, and what stood in the way."""
        ...

    def disconnect_participant(
        self, conversation_id: str, participant_id: str, number: str, *, dry_run: bool = False
    ) -> DisconnectResult:
        """Disconnect one participant after re-checking it (only check, with `dry_run`)."""
        ...

    def get_live_call(self, conversation_id: str) -> LiveCall:
        """The call as Genesys sees it now."""
        ...

    def check_realtime_sources(self) -> list[SourceStatus]:
        """Ask each real-time lookup source once; how each fares."""
        ...

    def realtime_statuses(self) -> list[SourceStatus]:
        """How each real-time lookup source fared when last asked."""
        ...

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered a request, if ever."""
        ...
