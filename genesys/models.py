"""Small typed domain objects the Genesys side hands to the rest of the bot, and how they are
read from Genesys' JSON.

They are parsed at the edge (`parse_live_call`, and `genesys.queries` for the look-up's
queries), so no SDK model or Genesys JSON leaks out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from genesys.addresses import number_in_address
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
    started_at: datetime | None = None
    ended_at: datetime | None = None

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

    @property
    def is_live(self) -> bool:
        """True while any leg is still on the call."""
        return any(p.is_live for p in self.parties)

    @property
    def numbers(self) -> frozenset[str]:
        """Every number any leg of the call carries as its own, live or ended."""
        return frozenset(n for p in self.parties for n in p.numbers)

    def live_outside_parties(self) -> list[CallParty]:
        """The callers and external parties still on the call, whatever their number."""
        return [p for p in self.parties if p.is_outside_party and p.is_live]

    def stuck(self) -> Stuck | None:
        """What keeps the call open when it is stuck (live, but no caller or external party
        is: the caller has left, and agent, ACD or IVR legs remain); None otherwise."""
        if not self.is_live or self.live_outside_parties():
            return None
        left = [p.ended_at for p in self.parties if p.is_outside_party and p.ended_at]
        starts = [p.started_at or p.connected_at for p in self.parties]
        return Stuck(
            connected=tuple(
                StillConnected(p.purpose, p.name, p.connected_at or p.started_at)
                for p in self.parties
                if p.is_live
            ),
            caller_left_at=max(left) if left else None,
            opened_at=min((s for s in starts if s), default=None),
        )


@dataclass(frozen=True)
class StillConnected:
    """A leg still on a stuck conversation."""

    purpose: str
    name: str | None
    since: datetime | None


@dataclass(frozen=True)
class Stuck:
    """A conversation whose caller has gone while other legs remain."""

    connected: tuple[StillConnected, ...]
    caller_left_at: datetime | None
    opened_at: datetime | None


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
    # Set for a stuck conversation: the candidate is the whole conversation (participant_id
    # and number are then empty), to be ended, not one caller to be dropped.
    stuck: Stuck | None = None


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
    # Why calls were left out by the caller's guard (a protected number on the call, say).
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agent:
    """A Genesys user found by email."""

    user_id: str
    name: str | None
    email: str


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
    REFUSED = "refused"
    """The caller's guard refused the call as it is now (a protected number on it, say)."""


@dataclass(frozen=True)
class DisconnectResult:
    """The outcome of `disconnect_participant`, with a detail sentence for the card."""

    outcome: DisconnectOutcome
    conversation_id: str
    participant_id: str
    detail: str
    # The note written into the interaction first (participant attributes): whether it was
    # written, and if it was tried and failed, why.
    note_written: bool = False
    note_error: str | None = None


class TeardownOutcome(enum.Enum):
    """How ending a whole (stuck) conversation went."""

    ENDED = "ended"
    """Genesys accepted the request and every participant was seen to leave."""
    ALREADY_ENDED = "already_ended"
    """The conversation had ended before the request."""
    NOT_STUCK = "not_stuck"
    """A caller or external party was on the call again: nothing was torn down."""
    UNCONFIRMED = "teardown_unconfirmed"
    """Genesys accepted the request, but some participant had not left when we stopped looking."""
    DRY_RUN = "dry_run"
    """Every check passed and the conversation would have been ended; nothing was sent."""
    REFUSED = "refused"
    """The caller's guard refused the conversation as it is now."""


@dataclass(frozen=True)
class TeardownResult:
    """The outcome of `end_conversation`, with a sentence for the card."""

    outcome: TeardownOutcome
    conversation_id: str
    detail: str
    context_id: str | None = None
    note_written: bool = False
    note_error: str | None = None


@dataclass(frozen=True)
class TableSchema:
    """A data table's name and its columns (JSON-schema properties) by name and type."""

    table_id: str
    name: str
    columns: dict[str, str]
    key: str = "key"


# A check of a live call the caller wants made before anything is offered or done to it: None
# to go ahead, or the sentence saying why not (a protected number is on the call, say).
Guard = Callable[[LiveCall], str | None]


# -------------------------------------------------------------------- parsing


def parse_live_call(raw: Any) -> LiveCall:
    """A live call from the JSON of GET /api/v2/conversations/calls/{id}."""
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("id"), str)
        or not isinstance(raw.get("participants"), list)
    ):
        raise ValueError("the call has no id or no participant list")
    return LiveCall(
        conversation_id=raw["id"],
        parties=tuple(_parse_party(p) for p in raw["participants"]),
    )


def _parse_party(raw: Any) -> CallParty:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise ValueError("a participant of the call has no id")
    return CallParty(
        participant_id=raw["id"],
        purpose=(_text(raw.get("purpose")) or "").lower(),
        state=(_text(raw.get("state")) or "").lower(),
        name=_text(raw.get("name")),
        numbers=frozenset(_own_numbers(raw)),
        connected_at=parse_moment(raw.get("connectedTime")),
        started_at=parse_moment(raw.get("startTime")),
        ended_at=parse_moment(raw.get("endTime")),
    )


def _own_numbers(raw: dict[str, Any]) -> Iterable[str]:
    """The numbers that identify this participant itself.

    `address` is the participant's own address. Of `ani` and `dnis`, only the side that is
    the participant counts: the caller's `ani` on an inbound leg, the dialled `dnis` on an
    outbound one. The other side is the contact center's own number, and typing it must
    not match every caller who dialled it.
    """
    direction = (_text(raw.get("direction")) or "").lower()
    keys: tuple[str, ...]
    if direction == "inbound":
        keys = ("address", "ani")
    elif direction == "outbound":
        keys = ("address", "dnis")
    else:
        # Without a direction there is no telling which of ani/dnis is this participant.
        keys = ("address",)
    for key in keys:
        number = number_in_address(_text(raw.get(key)))
        if number:
            yield number


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 time from Genesys ("2026-03-02T14:58:54.319Z"), always timezone-aware."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
