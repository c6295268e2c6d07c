"""Small typed domain objects the Genesys side hands to the rest of the bot.

They are parsed at the edge (`genesys.client`), so no SDK model or Genesys JSON leaks out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from genesys.errors import GenesysError

# Participant states in which a leg is still on the call. "disconnected" and "terminated"
# are the two end states; "none", "converting", "uploading" and "transmitting" are not calls.
LIVE_STATES = frozenset({"alerting", "dialing", "contacting", "offering", "connected", "parked"})
GONE_STATES = frozenset({"disconnected", "terminated"})
# Only these legs are outside parties. Agents ("agent", "user") carry the caller's number too
# and must never be chosen by number.
DROPPABLE_PURPOSES = frozenset({"customer", "external"})


@dataclass(frozen=True)
class CallParty:
    """One participant of a live call, as the live conversation reports it."""

    participant_id: str
    purpose: str
    state: str
    name: str | None
    numbers: frozenset[str]
    connected_at: datetime | None

    @property
    def is_live(self) -> bool:
        """True while the leg is still on the call."""
        return self.state in LIVE_STATES

    @property
    def is_outside_party(self) -> bool:
        """True for a caller or an external party, never for an agent or a system leg."""
        return self.purpose in DROPPABLE_PURPOSES

    def is_droppable_for(self, number: str) -> bool:
        """True when this leg is a live outside party carrying `number`."""
        return self.is_outside_party and self.is_live and number in self.numbers


@dataclass(frozen=True)
class LiveCall:
    """A call conversation as `GET /api/v2/conversations/calls/{id}` reports it now."""

    conversation_id: str
    parties: tuple[CallParty, ...]

    def party(self, participant_id: str) -> CallParty | None:
        """The participant with this id, or None when the call has no such participant."""
        return next((p for p in self.parties if p.participant_id == participant_id), None)

    def droppable_parties(self, number: str) -> list[CallParty]:
        """The live outside parties carrying `number`."""
        return [p for p in self.parties if p.is_droppable_for(number)]

    def names(self, *purposes: str, live_only: bool = False) -> list[str]:
        """The names of the legs with these purposes (only live ones with `live_only`)."""
        names: list[str] = []
        for party in self.parties:
            if party.purpose not in purposes or (live_only and not party.is_live):
                continue
            if party.name and party.name not in names:
                names.append(party.name)
        return names

    def has_live(self, *purposes: str) -> bool:
        """True when a leg with one of these purposes is still on the call."""
        return any(p.purpose in purposes and p.is_live for p in self.parties)


@dataclass(frozen=True)
class CallMatch:
    """A live call in which `number` is a droppable party: what a confirmation card shows."""

    conversation_id: str
    participant_id: str
    number: str
    purpose: str
    participant_name: str | None
    agent_names: tuple[str, ...]
    queue_names: tuple[str, ...]
    direction: str | None
    connected_at: datetime | None


@dataclass(frozen=True)
class CallLookup:
    """What looking a number up found, and what stood in the way.

    `matches` are confirmed against the live call. `unreadable` holds, for each candidate call
    the bot could not read (a 403 or another refusal), Genesys' error: such calls may be live,
    so "no active call" would not be the truth. `realtime` is True when at least one real-time
    source answered, so a call too new for the conversation index would have been found.
    """

    matches: tuple[CallMatch, ...]
    unreadable: tuple[GenesysError, ...] = ()
    realtime: bool = False


class DisconnectOutcome(enum.Enum):
    """How a disconnect ended."""

    DISCONNECTED = "disconnected"
    """Genesys accepted the request and the participant was seen to leave."""
    ALREADY_GONE = "already_gone"
    """The participant (or the whole call) had already ended before the request."""
    UNCONFIRMED = "unconfirmed"
    """Genesys accepted the request, but the participant had not left when we stopped looking."""
    DRY_RUN = "dry_run"
    """Every check passed and the participant would have been disconnected; nothing was sent."""


@dataclass(frozen=True)
class DisconnectResult:
    """The outcome of `disconnect_participant`, with a detail sentence for the card."""

    outcome: DisconnectOutcome
    conversation_id: str
    participant_id: str
    detail: str
