"""The block list: numbers put in the org's Architect data table, which its inbound flow checks
(Genesys' ani-blacklist blueprint does exactly this), so that a caller who keeps coming back
is refused before reaching an agent.

With `DROP_CALLER_BLOCKLIST_TABLE` set, a caller's card offers **Disconnect and block**. Each
block lasts `DROP_CALLER_BLOCK_DAYS` days (0: until unblocked) and is recorded in the store
(`drop_blocks`) and the audit trail. The bot reads a row before it writes or deletes it, and
does not fight a change made by hand: a row removed by hand is recorded as found gone, a row
whose expiry someone changed is left in place at expiry.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.calls import DataTables
from bot.cards import escape, slack_time
from bot.domain import Block, BlockState, DropRequest, Outcome
from bot.errors import BotError
from bot.phone import display_number
from bot.policy import Policy
from bot.store import RequestStore
from genesys.errors import GenesysError, GenesysPermissionError

logger = logging.getLogger(__name__)

KEY_PREFIXES = {"e164_no_plus": "", "e164": "+", "tel": "tel:+"}
# The optional columns filled when the table has them.
REASON, BLOCKED_BY, EXPIRES_AT = "reason", "blockedBy", "expiresAt"
# A claim on an expiring block older than this (its instance died) is taken again.
STALE_EXPIRY = timedelta(minutes=5)
PERMISSIONS = (
    "Architect > Datatable Row > Add, Edit, Delete and View (architect:datatableRow:add, edit, "
    "delete and view; older orgs: Architect > Datatable > Add, Edit, Delete and View)"
)


@dataclass(frozen=True)
class BlockOutcome:
    """What blocking (or unblocking) did, with the sentence for the card."""

    done: bool
    sentence: str


class BlockList:
    """The org's block-list table as the bot uses it; off when no table is configured or
    the table cannot be used (`problem` says why)."""

    def __init__(
        self,
        *,
        table_id: str | None,
        key_format: str,
        days: float,
        tables: DataTables | None,
        store: RequestStore,
        policy: Policy,
        now: Callable[[], datetime],
    ) -> None:
        self.table_id = table_id
        self._prefix = KEY_PREFIXES[key_format]
        self.key_format = key_format
        self.days = days
        self._tables = tables
        self._store = store
        self._policy = policy
        self._now = now
        self._lock = threading.Lock()
        self._columns: frozenset[str] | None = None
        self.problem: str | None = None if table_id else "no table is configured"

    # ------------------------------------------------------------ state

    @property
    def enabled(self) -> bool:
        """True once the table's schema has been read and suits a block list."""
        return self.table_id is not None and self._columns is not None

    def check(self) -> str | None:
        """Read the table's schema (at start and for `/drop-caller status`); the problem that
        keeps blocking off, or None."""
        if self.table_id is None or self._tables is None:
            return self.problem
        try:
            schema = self._tables.schema(self.table_id)
        except GenesysError as exc:
            problem = f"the bot cannot read its block-list table {self.table_id}: {exc}"
            if isinstance(exc, GenesysPermissionError) or exc.status in (403, 404):
                problem += f" The bot's role needs {PERMISSIONS}."
            self._set(None, problem)
            return problem
        if "key" not in schema.columns:
            problem = (
                f"data table {schema.name!r} ({self.table_id}) has no key column, so it "
                "cannot hold blocked numbers"
            )
            self._set(None, problem)
            return problem
        self._set(frozenset(schema.columns), None)
        logger.info(
            "Block list on: table %r, key %s, optional columns %s",
            schema.name,
            self.key_format,
            ", ".join(c for c in (REASON, BLOCKED_BY, EXPIRES_AT) if c in schema.columns) or "none",
        )
        return None

    def summary(self) -> str:
        """One sentence for `/drop-caller status`."""
        if self.table_id is None:
            return "Block list: not configured (DROP_CALLER_BLOCKLIST_TABLE)."
        if not self.enabled:
            return f"Block list: off, {escape(self.problem or 'not checked yet')}."
        return f"Block list: on (table {self.table_id}, {self.duration()})."

    def duration(self, start: datetime | None = None) -> str:
        """How long a new block lasts, in words."""
        until = self.expiry(start or self._now())
        if until is None:
            return "until someone unblocks it"
        days = f"{self.days:g} day{'' if self.days == 1 else 's'}"
        return f"for {days} (until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"

    def expiry(self, start: datetime) -> datetime | None:
        """When a block made at `start` ends (None: never)."""
        return None if self.days == 0 else start + timedelta(days=self.days)

    def key(self, number: str) -> str:
        """The number as the table's key holds it."""
        return self._prefix + number.removeprefix("+")

    # ------------------------------------------------------------ acting

    def block(self, request: DropRequest, number: str, approved_by: str) -> BlockOutcome:
        """Put `number` on the block list after its drop; never raises for Genesys."""
        refusal = self._policy.number_refusal(number)
        if refusal:
            return BlockOutcome(False, f"Not blocked: {refusal}")
        if not self.enabled or self.table_id is None or self._tables is None:
            return BlockOutcome(False, f"Not blocked: the block list is off ({self.problem}).")
        key = self.key(number)
        now = self._now()
        expires = self.expiry(now)
        row: dict[str, Any] = {"key": key}
        columns = self._columns or frozenset()
        if REASON in columns:
            row[REASON] = (request.reason or "")[:200]
        if BLOCKED_BY in columns:
            row[BLOCKED_BY] = approved_by
        if EXPIRES_AT in columns:
            row[EXPIRES_AT] = _iso(expires) if expires else ""
        try:
            found = self._tables.row(self.table_id, key)
            if found is None:
                self._tables.add_row(self.table_id, row)
            else:
                self._tables.update_row(self.table_id, key, row)
        except GenesysError as exc:
            self._record(request.id, "block_failed", approved_by, number, key, error=exc)
            logger.warning("Could not block %s: %r", request.id, exc)
            return BlockOutcome(
                False,
                f"Not blocked: {exc} To block numbers, the bot's role needs {PERMISSIONS}.",
            )
        block = Block(
            id=secrets.token_hex(12),
            table_id=self.table_id,
            number=number,
            row_key=key,
            reason=request.reason,
            requested_by=request.requester_id,
            approved_by=approved_by,
            request_id=request.id,
            created_at=now,
            expires_at=expires,
        )
        event = self._detail(number, key) | {
            "expires_at": _iso(expires) if expires else None,
            "found": "an existing row, updated" if found is not None else "no row, added",
        }
        try:
            self._store.add_block(block, event)
        except BotError:
            logger.exception("Blocked %s in Genesys but could not record it", request.id)
        return BlockOutcome(True, f"Blocked {self.duration(now)}.")

    def unblock(self, request: DropRequest, by: str) -> tuple[Outcome, str]:
        """Take `request.number` off the block list (an approved unblock request)."""
        if not self.enabled or self.table_id is None or self._tables is None:
            raise BlockListOff(f"The block list is off ({self.problem}), so nothing was done.")
        number = request.number
        key = self.key(number)
        row = self._tables.row(self.table_id, key)
        deleted = row is not None and self._tables.delete_row(self.table_id, key)
        for block in self._store.active_blocks(self.table_id, number):
            self._store.end_block(block.id, BlockState.UNBLOCKED, by=by)
        found = "the row, deleted" if deleted else "no row (removed already, or never there)"
        self._record(request.id, "unblocked", by, number, key, found=found)
        if not deleted:
            return (
                Outcome.NOT_BLOCKED,
                f"{escape(display_number(number))} was not on the block list (someone may have "
                "removed it by hand); nothing to remove.",
            )
        return Outcome.UNBLOCKED, f"{escape(display_number(number))} is no longer blocked."

    def expire_due(self) -> list[str]:
        """Delete the rows of blocks whose time is up (each by exactly one instance); the
        lines for the audit channel."""
        if not self.enabled or self.table_id is None or self._tables is None:
            return []
        lines: list[str] = []
        for block in self._store.claim_due_blocks(STALE_EXPIRY):
            try:
                row = self._tables.row(block.table_id, block.row_key)
                changed = (
                    row is not None
                    and EXPIRES_AT in row
                    and block.expires_at is not None
                    and row[EXPIRES_AT] != _iso(block.expires_at)
                )
                if row is None:
                    found = "no row (removed by hand already)"
                elif changed:
                    found = "the row, changed by hand (its expiresAt): left in place"
                else:
                    self._tables.delete_row(block.table_id, block.row_key)
                    found = "the row, deleted"
            except GenesysError as exc:
                # Claimed: another sweep takes it again once the claim is stale.
                logger.warning("Could not end the block of %s yet: %s", block.request_id, exc)
                continue
            self._store.end_block(
                block.id, BlockState.EXPIRED, by=None, from_states=(BlockState.EXPIRING,)
            )
            self._record(
                block.request_id, "block_expired", None, block.number, block.row_key, found=found
            )
            lines.append(
                f"{escape(display_number(block.number))}'s block (request `{block.request_id}`) "
                f"expired: {found}."
            )
        return lines

    def listing(self, limit: int = 50) -> str:
        """The active blocks, for `/drop-caller blocked` and the Home tab (`limit` at most)."""
        if self.table_id is None:
            return "No block list is configured (DROP_CALLER_BLOCKLIST_TABLE)."
        blocks = self._store.active_blocks(self.table_id)
        if not blocks:
            return "No number is blocked by the bot right now."
        lines = [f"*Blocked numbers* ({len(blocks)}):"]
        for block in blocks[:limit]:
            until = (
                f"until {slack_time(block.expires_at, date=True)}"
                if block.expires_at
                else "until unblocked"
            )
            why = f" ({escape(block.reason[:100])})" if block.reason else ""
            lines.append(
                f"• {escape(display_number(block.number))}{why}, by <@{block.approved_by}>, {until}"
            )
        if len(blocks) > limit:
            lines.append(f"…and {len(blocks) - limit} more.")
        return "\n".join(lines)

    # ------------------------------------------------------------ internals

    def _set(self, columns: frozenset[str] | None, problem: str | None) -> None:
        with self._lock:
            changed = problem != self.problem
            self._columns, self.problem = columns, problem
        if problem and changed:
            logger.error("Blocking is off: %s. Dropping callers keeps working.", problem)

    def _detail(self, number: str, key: str) -> dict[str, Any]:
        return {"table_id": self.table_id, "key": key, "number": number}

    def _record(
        self,
        request_id: str,
        kind: str,
        actor: str | None,
        number: str,
        key: str,
        *,
        error: GenesysError | None = None,
        found: str | None = None,
    ) -> None:
        detail = self._detail(number, key)
        if error is not None:
            detail |= {
                "detail": str(error),
                "error_code": error.code,
                "context_id": error.context_id,
            }
        if found is not None:
            detail["found"] = found
        try:
            self._store.record_event(request_id, kind, actor, detail)
        except BotError:
            logger.exception("Could not record %s for %s", kind, request_id)


class BlockListOff(BotError):
    """The block list cannot be used (no table, or one that does not suit)."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
