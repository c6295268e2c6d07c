"""The Genesys operations the Slack side needs, as a protocol.

`genesys.client.GenesysCalls` implements it; the Slack side depends only on this (tests can
hand the bot anything that does the same).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from genesys.models import (
    Agent,
    CallLookup,
    DisconnectResult,
    Guard,
    LiveCall,
    TableSchema,
    TeardownResult,
)
from genesys.realtime import SourceStatus


class DataTables(Protocol):
    """Architect data tables (`genesys.datatables.DataTables`): the block list."""

    def schema(self, table_id: str) -> TableSchema:
        """The table's columns."""
        ...

    def row(self, table_id: str, key: str) -> dict[str, Any] | None:
        """The row with this key, or None."""
        ...

    def add_row(self, table_id: str, row: dict[str, Any]) -> None:
        """Add a row."""
        ...

    def update_row(self, table_id: str, key: str, row: dict[str, Any]) -> None:
        """Replace the row with this key."""
        ...

    def delete_row(self, table_id: str, key: str) -> bool:
        """Delete the row with this key; False if it was already gone."""
        ...


class CallDirectory(Protocol):
    """Find live calls (by number, by agent, one conversation), read one, and act on it."""

    def find_active_calls(self, number: str, *, guard: Guard | None = None) -> CallLookup:
        """Live calls in which `number` is a droppable party, and what stood in the way."""
        ...

    def find_agent(self, email: str) -> Agent | None:
        """The Genesys user with exactly this email, or None."""
        ...

    def find_agent_calls(self, user_id: str, *, guard: Guard | None = None) -> CallLookup:
        """The agent's live calls, newest first (a stuck one as one entry to end)."""
        ...

    def look_up_conversation(
        self, conversation_id: str, *, guard: Guard | None = None
    ) -> CallLookup:
        """One conversation's live callers, or itself when stuck; `CallNotFound` if unknown."""
        ...

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
        """Disconnect one participant after re-checking it (only check, with `dry_run`)."""
        ...

    def end_conversation(
        self,
        conversation_id: str,
        *,
        dry_run: bool = False,
        guard: Guard | None = None,
        note: dict[str, str] | None = None,
    ) -> TeardownResult:
        """End a whole stuck conversation after re-checking it is still stuck."""
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
    def data_tables(self) -> DataTables:
        """The org's Architect data tables."""
        ...

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered a request, if ever."""
        ...
