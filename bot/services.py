"""What the Slack handlers work with, gathered in one object built by `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.authorisation import Authoriser
from bot.policy import Policy
from bot.publisher import CardPublisher
from bot.store import RequestStore
from bot.work import WorkQueue

if TYPE_CHECKING:
    from bot.health import Health
from genesys.models import CallLookup, DisconnectResult, LiveCall
from genesys.realtime import SourceStatus


class CallDirectory(Protocol):
    """The Genesys operations the bot needs (implemented by `genesys.client.GenesysCalls`)."""

    def find_active_calls(self, number: str) -> CallLookup:
        """Live calls in which `number` is a droppable party, and what stood in the way."""
        ...

    def check_realtime_sources(self) -> list[SourceStatus]:
        """Ask each real-time lookup source once; how each fares."""
        ...

    def realtime_statuses(self) -> list[SourceStatus]:
        """How each real-time lookup source fared when last asked."""
        ...

    def disconnect_participant(
        self, conversation_id: str, participant_id: str, number: str, *, dry_run: bool = False
    ) -> DisconnectResult:
        """Disconnect one participant after re-checking it (only check, with `dry_run`)."""
        ...

    def get_live_call(self, conversation_id: str) -> LiveCall:
        """The call as Genesys sees it now."""
        ...

    @property
    def last_contact(self) -> datetime | None:
        """When Genesys last answered a request, if ever."""
        ...


@dataclass(frozen=True)
class Services:
    """The collaborators and policy values every handler needs."""

    calls: CallDirectory
    store: RequestStore
    authoriser: Authoriser
    policy: Policy
    publisher: CardPublisher
    work: WorkQueue
    health: Health
    request_ttl: int
    now: Callable[[], datetime]

    @property
    def default_region(self) -> str:
        """Region for numbers typed without a country code."""
        return self.policy.default_region
