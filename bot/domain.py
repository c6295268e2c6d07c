"""What a drop request is: its states, its outcomes, and the answer to a claim.

Plain values with no database or Slack code, so that the card builders, the workflow and the
store can all speak of requests without depending on each other.

    pending ──claim──▶ approving ──finish──▶ done | failed
       ├──cancel──▶ cancelled
       └──expire──▶ expired
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from genesys.models import CallMatch


class RequestState(enum.StrEnum):
    """Where a drop request is in its life."""

    PENDING = "pending"
    APPROVING = "approving"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


CLOSED_STATES = frozenset(
    {RequestState.DONE, RequestState.FAILED, RequestState.CANCELLED, RequestState.EXPIRED}
)


class TargetKind(enum.StrEnum):
    """What a command named: a caller's number, one conversation, or an agent."""

    NUMBER = "number"
    CONVERSATION = "conversation"
    AGENT = "agent"
    UNBLOCK = "unblock"
    """Not a call: the number is to come off the block list (the request has no calls)."""


class Outcome(enum.StrEnum):
    """How an approved request ended (cancelled and expired requests have none)."""

    DISCONNECTED = "disconnected"
    """Genesys accepted the disconnect and the caller was seen to leave."""
    ALREADY_GONE = "already_gone"
    """The caller (or the whole call) had gone before the disconnect."""
    UNCONFIRMED = "unconfirmed"
    """Genesys accepted the disconnect, but the caller had not left when the bot stopped looking."""
    DRY_RUN = "dry_run"
    """Every check passed; nothing was sent to Genesys."""
    FAILED = "failed"
    """Genesys refused or could not be reached; the sentence says why."""
    UNKNOWN = "unknown"
    """The bot hit an internal error during the drop."""
    RECOVERED_GONE = "recovered_gone"
    """The bot was interrupted mid-drop; afterwards the caller was no longer on the call."""
    INTERRUPTED = "interrupted"
    """The bot was interrupted mid-drop and the caller was still on the call."""
    NOT_POSTED = "not_posted"
    """The card could not be posted, so nobody could act on the request."""
    REFUSED = "refused"
    """At the click, the call included a protected number: nothing was done."""
    ENDED = "ended"
    """A stuck conversation was ended: every participant was seen to leave."""
    ALREADY_ENDED = "already_ended"
    """The stuck conversation had ended before the click."""
    NOT_STUCK = "not_stuck"
    """A caller was on the conversation again at the click: nothing was torn down."""
    TEARDOWN_UNCONFIRMED = "teardown_unconfirmed"
    """Genesys accepted the teardown, but participants had not all left when the bot stopped
    looking."""
    UNBLOCKED = "unblocked"
    """The number came off the block list."""
    NOT_BLOCKED = "not_blocked"
    """The number was not on the block list (taken off by hand, or never there)."""

    @property
    def succeeded(self) -> bool:
        """True when the request ends `done` rather than `failed`."""
        return self not in (
            Outcome.FAILED,
            Outcome.UNKNOWN,
            Outcome.INTERRUPTED,
            Outcome.NOT_POSTED,
            Outcome.REFUSED,
        )


CARD_VIA_CHAT = "chat"
CARD_VIA_RESPONSE_URL = "response_url"


@dataclass(frozen=True)
class DropRequest:
    """One `/drop-caller` request and what became of it."""

    id: str
    team_id: str
    channel_id: str
    requester_id: str
    number: str
    state: RequestState
    created_at: datetime
    expires_at: datetime
    message_ts: str | None
    response_url: str | None
    decided_by: str | None
    decided_at: datetime | None
    chosen_position: int | None
    outcome: Outcome | None
    outcome_detail: str | None
    candidates: tuple[CallMatch, ...]
    dry_run: bool = False
    card_shown_state: str | None = None
    audit_posted: bool = False
    target_kind: TargetKind = TargetKind.NUMBER
    # The conversation id or the agent's email (None for a number: `number` is the target).
    target: str | None = None
    # Why the requester asked, in their words (escaped where shown).
    reason: str | None = None
    # The approval was "Disconnect and block": the number goes on the block list too.
    block: bool = False
    # How the card was posted: "chat" (chat.postMessage, so `message_ts` is where) or
    # "response_url" (the command's own, when the bot was not in the channel).
    card_via: str | None = None
    # Failed attempts so far at catching up on the card or the audit line (`catch_up`).
    announce_attempts: int = 0

    @property
    def chosen(self) -> CallMatch | None:
        """The call a supervisor chose to disconnect, once one has."""
        if self.chosen_position is None or self.chosen_position >= len(self.candidates):
            return None
        return self.candidates[self.chosen_position]

    @property
    def card_through_response_url(self) -> bool:
        """True when the card was posted through the command's response_url, so that URL
        (valid for 30 minutes) is the only way to update it without a click."""
        if self.card_via is None:  # recorded before migration 0005
            return self.message_ts is None
        return self.card_via == CARD_VIA_RESPONSE_URL

    @property
    def card_behind(self) -> bool:
        """True when the card does not yet show the request's state."""
        return self.card_shown_state != self.state.value


class BlockState(enum.StrEnum):
    """Where a block is in its life."""

    ACTIVE = "active"
    EXPIRING = "expiring"
    """An instance is deleting its row from the table (at expiry)."""
    EXPIRED = "expired"
    UNBLOCKED = "unblocked"


@dataclass(frozen=True)
class Block:
    """A number the bot put in the org's block-list data table."""

    id: str
    table_id: str
    number: str
    row_key: str
    reason: str | None
    requested_by: str | None
    approved_by: str | None
    request_id: str
    created_at: datetime
    expires_at: datetime | None
    state: BlockState = BlockState.ACTIVE


class ClaimStatus(enum.Enum):
    """What happened to an attempt to claim or cancel a request."""

    CLAIMED = "claimed"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    PARTICIPANT_BUSY = "participant_busy"
    """Another request (another card) is dropping the same participant right now."""


@dataclass(frozen=True)
class Claim:
    """The answer to `claim` and `cancel`: the status and the request as it now stands."""

    status: ClaimStatus
    request: DropRequest | None
    expired_now: bool = False
    """With EXPIRED: this call is the one that marked the request expired."""


_REQUEST_ID = re.compile(r"^[0-9a-f]{24}$")


def is_request_id(value: str) -> bool:
    """True when `value` has the shape of a request id (so it is worth looking up)."""
    return bool(_REQUEST_ID.match(value))
