"""What the Slack handlers work with, gathered in one object built by `create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.authorisation import Authoriser
from bot.store import RequestStore
from genesys.models import CallMatch, DisconnectResult


class CallDirectory(Protocol):
    """The Genesys operations the bot needs (implemented by `genesys.client.GenesysCalls`)."""

    def find_active_calls(self, number: str) -> list[CallMatch]:
        """Live calls in which `number` is a droppable party."""
        ...

    def disconnect_participant(
        self, conversation_id: str, participant_id: str, number: str
    ) -> DisconnectResult:
        """Disconnect one participant after re-checking it."""
        ...


@dataclass(frozen=True)
class Services:
    """The collaborators and policy values every handler needs."""

    calls: CallDirectory
    store: RequestStore
    authoriser: Authoriser
    default_region: str
    request_ttl: int
    now: Callable[[], datetime]
