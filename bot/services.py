"""What the Slack handlers work with, gathered in one object built by `create_bot`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.authorisation import Authoriser
from bot.blocking import BlockList
from bot.calls import CallDirectory
from bot.drops import DropWorkflow
from bot.health import Health
from bot.policy import Policy
from bot.publisher import CardPublisher
from bot.store import RequestStore
from bot.work import WorkQueue


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
    drops: DropWorkflow
    blocklist: BlockList
    request_ttl: int
    now: Callable[[], datetime]

    @property
    def default_region(self) -> str:
        """Region for numbers typed without a country code."""
        return self.policy.default_region
