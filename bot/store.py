"""Drop requests and their decisions, kept in a SQL database (SQLite by default, PostgreSQL
for several instances).

Every state change is one conditional UPDATE (`_transition`), so it is atomic in the
database itself: two clicks on one card, in one process or in two, cannot both claim a
request. Each change also appends a row to `drop_events` in the same transaction; the
database refuses any UPDATE or DELETE of that table (triggers from migration 0002).

The schema is created and migrated in place (`bot.schema`) when the store is first used. A
database that is down at start is retried on every use, so the bot starts without it. The
request states are drawn in `bot.domain`.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa

from bot.domain import (
    CARD_VIA_CHAT,
    CARD_VIA_RESPONSE_URL,
    CLOSED_STATES,
    Block,
    BlockState,
    Claim,
    ClaimStatus,
    DropRequest,
    Outcome,
    RequestState,
    TargetKind,
)
from bot.errors import StoreUnavailable
from bot.schema import (
    create_engine,
    drop_blocks,
    drop_candidates,
    drop_events,
    drop_participant_claims,
    drop_requests,
    migrate,
)
from genesys.models import CallMatch, StillConnected, Stuck

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# How often a store whose database is down tries to reach it again, at most.
_RETRY_SECONDS = 2.0
# Ids per IN (...) list: well under SQLite's limit on bound parameters.
_IDS_PER_QUERY = 500


def _unavailable_as_error(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a database outage into `StoreUnavailable`, whose text a supervisor can read."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, RequestStore)
        try:
            store.ensure_schema()
            return method(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, StoreUnavailable) as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(
                "The bot's database is unavailable, so nothing was recorded or done. "
                "Try again in a minute."
            ) from exc

    return wrapper


class RequestStore:
    """Drop requests in a SQL database; every transition is atomic."""

    def __init__(self, engine: sa.Engine, *, now: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._last_attempt = float("-inf")
        self._last_error: BaseException | None = None

    def _now(self) -> datetime:
        # SQLite drops UTC offsets, so everything is stored in UTC.
        return self._clock().astimezone(UTC)

    @classmethod
    def from_url(
        cls, url: str, *, now: Callable[[], datetime] | None = None, prepare: bool = True
    ) -> RequestStore:
        """A store for a `sqlite:///…` or `postgresql://…` URL.

        With `prepare`, the schema is prepared at once if the database answers; if it does
        not, the store is returned anyway. Either way the store prepares the schema on its
        first use if that has not been done (`StoreUnavailable` until it succeeds).
        """
        store = cls(create_engine(url), now=now)
        if prepare:
            try:
                store.ensure_schema()
            except StoreUnavailable as exc:
                logger.error("%s The bot starts anyway and keeps trying.", exc)
        return store

    def close(self) -> None:
        """Close the pooled connections (before a fork, or when done with the store)."""
        self._engine.dispose()

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    def ensure_schema(self) -> None:
        """Create or migrate the schema once; `StoreUnavailable` while the database is down."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            # While the database is down, do not pay a connection timeout on every request.
            if time.monotonic() - self._last_attempt >= _RETRY_SECONDS:
                self._last_attempt = time.monotonic()
                try:
                    self.create_schema()
                except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
                    self._last_error = exc
                else:
                    self._schema_ready = True
                    return
            raise StoreUnavailable(
                "The bot's database is unavailable, so nothing was recorded or done. "
                "Try again in a minute."
            ) from self._last_error

    def create_schema(self) -> None:
        """Bring the schema to the newest revision, keeping every row (idempotent)."""
        migrate(self._engine)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    # ------------------------------------------------------------ writes

    @_unavailable_as_error
    def create_request(
        self,
        *,
        team_id: str,
        channel_id: str,
        requester_id: str,
        number: str,
        candidates: Sequence[CallMatch],
        ttl_seconds: int,
        response_url: str | None,
        dry_run: bool = False,
        target_kind: TargetKind = TargetKind.NUMBER,
        target: str | None = None,
        reason: str | None = None,
    ) -> DropRequest:
        """Record a new pending request for the calls found.

        `number` is the number typed (or, for a conversation or an agent, the first
        candidate's, "" if none); `target_kind` and `target` what else the command named.
        """
        request_id = secrets.token_hex(12)
        now = self._now()
        with self._engine.begin() as connection:
            connection.execute(
                drop_requests.insert().values(
                    id=request_id,
                    team_id=team_id,
                    channel_id=channel_id,
                    requester_id=requester_id,
                    number=number,
                    state=RequestState.PENDING.value,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_seconds),
                    response_url=response_url,
                    dry_run=dry_run,
                    target_kind=target_kind.value,
                    target=target,
                    reason=reason,
                    # Until set_message says otherwise, so that a crash between the post
                    # and set_message never sends the card's update to the response_url.
                    card_via=CARD_VIA_CHAT,
                )
            )
            for position, match in enumerate(candidates):
                connection.execute(
                    drop_candidates.insert().values(
                        request_id=request_id,
                        position=position,
                        conversation_id=match.conversation_id,
                        participant_id=match.participant_id,
                        purpose=match.purpose,
                        participant_name=match.participant_name,
                        agent_names=json.dumps(list(match.agent_names)),
                        queue_names=json.dumps(list(match.queue_names)),
                        direction=match.direction,
                        connected_at=_utc_or_none(match.connected_at),
                        number=match.number,
                        stuck=_stuck_json(match.stuck),
                    )
                )
            _record(
                connection,
                request_id,
                now,
                "requested",
                requester_id,
                {
                    "channel_id": channel_id,
                    "number": number,
                    "target_kind": target_kind.value,
                    "target": target,
                    "reason": reason,
                    "dry_run": dry_run,
                    "candidates": [
                        {"conversation_id": m.conversation_id, "participant_id": m.participant_id}
                        for m in candidates
                    ],
                },
            )
        request = self.get(request_id)
        assert request is not None
        return request

    @_unavailable_as_error
    def set_message(self, request_id: str, message_ts: str | None) -> None:
        """Remember where the card was posted, so it can be updated in place: the message's
        ts, or None when it went through the command's response_url."""
        via = CARD_VIA_CHAT if message_ts else CARD_VIA_RESPONSE_URL
        with self._engine.begin() as connection:
            _transition(connection, request_id, message_ts=message_ts, card_via=via)

    @_unavailable_as_error
    def claim(
        self,
        request_id: str,
        user_id: str,
        position: int,
        *,
        block: bool = False,
        lease_until: datetime | None = None,
    ) -> Claim:
        """Atomically move a pending, unexpired request to `approving` for this user.

        In the same transaction the chosen participant is claimed, so that two cards for
        one caller cannot both send a disconnect. `block`: the approval also blocks the
        number. An unblock request has no calls; its one button is position 0.
        `lease_until`: the claimer's lease (`renew_lease`); without one, the request counts
        as claimed at `decided_at` (`stale_approvals`).
        """

        def valid(request: DropRequest) -> bool:
            if request.target_kind == TargetKind.UNBLOCK:
                return position == 0
            return 0 <= position < len(request.candidates)

        def describe(request: DropRequest) -> dict[str, Any]:
            if request.target_kind == TargetKind.UNBLOCK:
                return {"chosen_position": position}
            chosen = request.candidates[position]
            return {
                "chosen_position": position,
                "conversation_id": chosen.conversation_id,
                "participant_id": chosen.participant_id,
                **({"block": True} if block else {}),
            }

        return self._decide(
            request_id,
            user_id,
            RequestState.APPROVING,
            "approved",
            extra={"chosen_position": position, "block": block, "lease_until": lease_until},
            valid=valid,
            describe=describe,
        )

    @_unavailable_as_error
    def cancel(self, request_id: str, user_id: str) -> Claim:
        """Atomically move a pending, unexpired request to `cancelled`."""
        return self._decide(request_id, user_id, RequestState.CANCELLED, "cancelled")

    @_unavailable_as_error
    def expire(self, request_id: str) -> DropRequest | None:
        """Mark a pending request whose time is up as expired; return it as it now stands."""
        self._expire(request_id)
        return self.get(request_id)

    @_unavailable_as_error
    def record_lookup(
        self,
        *,
        channel_id: str,
        requester_id: str,
        number: str,
        outcome: str,
        detail: str,
        error_code: str | None = None,
        context_id: str | None = None,
        dry_run: bool = False,
        target_kind: TargetKind = TargetKind.NUMBER,
        target: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Record a look-up that ended without a card (`outcome`: "no_live_call" or
        "lookup_failed", with Genesys' error code and contextId if it gave them): one audit
        event under an id of its own, with no request behind it, since there is nothing to
        decide. Returns that id."""
        lookup_id = secrets.token_hex(12)
        with self._engine.begin() as connection:
            _record(
                connection,
                lookup_id,
                self._now(),
                "looked_up",
                requester_id,
                {
                    "channel_id": channel_id,
                    "number": number,
                    "outcome": outcome,
                    "detail": detail,
                    "error_code": error_code,
                    "context_id": context_id,
                    "dry_run": dry_run,
                    "target_kind": target_kind.value,
                    "target": target,
                    "reason": reason,
                },
            )
        return lookup_id

    @_unavailable_as_error
    def abandon(self, request_id: str, reason: str) -> bool:
        """Close a pending request nobody can act on (its card was never posted)."""
        now = self._now()
        with self._engine.begin() as connection:
            if _transition(
                connection,
                request_id,
                drop_requests.c.state == RequestState.PENDING.value,
                state=RequestState.FAILED.value,
                outcome=Outcome.NOT_POSTED.value,
                outcome_detail=reason,
                finished_at=now,
                # No card to update: the sweeper has nothing to catch up on.
                card_shown_state=RequestState.FAILED.value,
            ):
                _record(connection, request_id, now, "abandoned", None, {"detail": reason})
                return True
        return False

    @_unavailable_as_error
    def expire_due(self, limit: int = 100) -> list[DropRequest]:
        """Expire pending requests whose time is up; return those this call expired.

        Each is expired by its own conditional UPDATE, so with several instances sweeping
        at once every request is returned to exactly one of them.
        """
        with self._engine.connect() as connection:
            due = connection.execute(
                sa.select(drop_requests.c.id)
                .where(
                    drop_requests.c.state == RequestState.PENDING.value,
                    drop_requests.c.expires_at <= self._now(),
                )
                .order_by(drop_requests.c.expires_at)
                .limit(limit)
            ).scalars()
            ids = list(due)
        expired = [request_id for request_id in ids if self._expire(request_id)]
        return [request for request in map(self.get, expired) if request is not None]

    @_unavailable_as_error
    def stale_approvals(self, fallback: timedelta, limit: int = 100) -> list[DropRequest]:
        """Approved requests whose instance stopped renewing its lease before they got an
        outcome (it died mid-drop); without a lease, those approved `fallback` ago."""
        now = self._now()
        with self._engine.connect() as connection:
            ids = list(
                connection.execute(
                    sa.select(drop_requests.c.id)
                    .where(
                        drop_requests.c.state == RequestState.APPROVING.value,
                        sa.or_(
                            drop_requests.c.lease_until <= now,
                            sa.and_(
                                drop_requests.c.lease_until.is_(None),
                                drop_requests.c.decided_at <= now - fallback,
                            ),
                        ),
                    )
                    .order_by(drop_requests.c.decided_at)
                    .limit(limit)
                ).scalars()
            )
        return [request for request in map(self.get, ids) if request is not None]

    @_unavailable_as_error
    def renew_lease(self, request_id: str, until: datetime) -> bool:
        """Extend the lease on a drop being carried out; False once it has an outcome."""
        with self._engine.begin() as connection:
            return _transition(
                connection,
                request_id,
                drop_requests.c.state == RequestState.APPROVING.value,
                lease_until=until,
            )

    def _expire(self, request_id: str) -> bool:
        now = self._now()
        with self._engine.begin() as connection:
            if _transition(
                connection,
                request_id,
                drop_requests.c.state == RequestState.PENDING.value,
                drop_requests.c.expires_at <= now,
                state=RequestState.EXPIRED.value,
            ):
                _record(connection, request_id, now, "expired", None, {})
                return True
        return False

    @_unavailable_as_error
    def finish(
        self,
        request_id: str,
        *,
        succeeded: bool,
        outcome: Outcome | str,
        detail: str,
        error_code: str | None = None,
        context_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> DropRequest:
        """Record the outcome of an approved request (`approving` → `done` or `failed`);
        `extra` goes into the outcome's audit event.

        If the request had already been finished (by crash recovery on another instance),
        its state stays as it is, but this outcome is still appended to the audit trail.
        """
        now = self._now()
        state = RequestState.DONE if succeeded else RequestState.FAILED
        with self._engine.begin() as connection:
            late = not _transition(
                connection,
                request_id,
                drop_requests.c.state == RequestState.APPROVING.value,
                state=state.value,
                outcome=str(outcome),
                outcome_detail=detail,
                error_code=error_code,
                context_id=context_id,
                finished_at=now,
            )
            # The drop is over either way: another request may try this participant again.
            connection.execute(
                drop_participant_claims.delete().where(
                    drop_participant_claims.c.request_id == request_id
                )
            )
            row = connection.execute(
                sa.select(drop_requests.c.state, drop_requests.c.decided_by).where(
                    drop_requests.c.id == request_id
                )
            ).one_or_none()
            finished = (RequestState.DONE.value, RequestState.FAILED.value)
            if row is None or (late and row.state not in finished):
                raise RuntimeError(f"request {request_id} was not being approved")
            decided_by = row.decided_by
            _record(
                connection,
                request_id,
                now,
                "outcome",
                decided_by,
                {
                    "outcome": outcome,
                    "detail": detail,
                    "error_code": error_code,
                    "context_id": context_id,
                    **(extra or {}),
                    **({"late": True} if late else {}),
                },
            )
        request = self.get(request_id)
        assert request is not None
        if late:
            logger.warning("Request %s was already finished; recorded a late outcome", request_id)
            return replace(request, outcome=Outcome(outcome), outcome_detail=detail)
        return request

    @_unavailable_as_error
    def mark_card_shown(self, request_id: str, state: RequestState) -> None:
        """Remember that the card now shows `state`."""
        with self._engine.begin() as connection:
            _transition(connection, request_id, card_shown_state=state.value)

    @_unavailable_as_error
    def claim_audit_post(self, request_id: str, retry_after: timedelta) -> bool:
        """True when this caller should post the request's audit line now.

        A claim older than `retry_after` that never became a post (the poster died) can be
        taken again, so a line is posted at least once and, barring crashes, exactly once.
        """
        now = self._now()
        with self._engine.begin() as connection:
            return _transition(
                connection,
                request_id,
                drop_requests.c.audit_posted_at.is_(None),
                sa.or_(
                    drop_requests.c.audit_claimed_at.is_(None),
                    drop_requests.c.audit_claimed_at <= now - retry_after,
                ),
                audit_claimed_at=now,
            )

    @_unavailable_as_error
    def release_audit_claim(self, request_id: str) -> None:
        """Give up a claim whose post failed, so the next sweep tries again."""
        with self._engine.begin() as connection:
            _transition(
                connection,
                request_id,
                drop_requests.c.audit_posted_at.is_(None),
                audit_claimed_at=None,
            )

    @_unavailable_as_error
    def mark_audit_posted(self, request_id: str) -> None:
        """Remember that the request's audit line is in the audit channel."""
        with self._engine.begin() as connection:
            _transition(connection, request_id, audit_posted_at=self._now())

    @_unavailable_as_error
    def unannounced(
        self, older_than: timedelta, *, audit: bool, limit: int = 20
    ) -> list[DropRequest]:
        """Decided requests whose card, or audit line, was left behind (a crash, a Slack
        outage) and is due another try: oldest first, those given up on left out."""
        closed = sorted(state.value for state in CLOSED_STATES)
        behind = sa.or_(
            drop_requests.c.card_shown_state.is_(None),
            drop_requests.c.card_shown_state != drop_requests.c.state,
        )
        if audit:
            behind = sa.or_(behind, drop_requests.c.audit_posted_at.is_(None))
        now = self._now()
        ended = sa.func.coalesce(
            drop_requests.c.finished_at, drop_requests.c.decided_at, drop_requests.c.expires_at
        )
        with self._engine.connect() as connection:
            ids = list(
                connection.execute(
                    sa.select(drop_requests.c.id)
                    .where(
                        drop_requests.c.state.in_(closed),
                        behind,
                        ended <= now - older_than,
                        drop_requests.c.announce_abandoned_at.is_(None),
                        sa.or_(
                            drop_requests.c.announce_after.is_(None),
                            drop_requests.c.announce_after <= now,
                        ),
                    )
                    .order_by(ended, drop_requests.c.id)
                    .limit(limit)
                ).scalars()
            )
        return [request for request in map(self.get, ids) if request is not None]

    @_unavailable_as_error
    def postpone_announcing(self, request_id: str, attempts: int, until: datetime) -> None:
        """Count a failed catch-up attempt and wait until `until` before the next."""
        with self._engine.begin() as connection:
            _transition(connection, request_id, announce_attempts=attempts, announce_after=until)

    @_unavailable_as_error
    def abandon_announcing(self, request_id: str, detail: dict[str, Any]) -> bool:
        """Stop catching up on this request's card and audit line for good, and say why in
        its audit trail (`announce_abandoned`); False if another instance already did."""
        now = self._now()
        with self._engine.begin() as connection:
            if _transition(
                connection,
                request_id,
                drop_requests.c.announce_abandoned_at.is_(None),
                announce_abandoned_at=now,
            ):
                _record(connection, request_id, now, "announce_abandoned", None, detail)
                return True
        return False

    # ------------------------------------------------------------ reads

    @_unavailable_as_error
    def get(self, request_id: str) -> DropRequest | None:
        """The request with this id, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(drop_requests).where(drop_requests.c.id == request_id)
            ).one_or_none()
            if row is None:
                return None
            candidates = connection.execute(
                sa.select(drop_candidates)
                .where(drop_candidates.c.request_id == request_id)
                .order_by(drop_candidates.c.position)
            ).all()
        return _request_from_rows(row._mapping, [c._mapping for c in candidates])

    @_unavailable_as_error
    def recent(self, limit: int = 10) -> list[DropRequest]:
        """The newest requests, newest first (for the Home tab)."""
        with self._engine.connect() as connection:
            ids = list(
                connection.execute(
                    sa.select(drop_requests.c.id)
                    .order_by(drop_requests.c.created_at.desc(), drop_requests.c.id)
                    .limit(limit)
                ).scalars()
            )
        found = self.get_many(ids)
        return [found[request_id] for request_id in ids if request_id in found]

    @_unavailable_as_error
    def events(self, request_id: str) -> list[dict[str, Any]]:
        """The audit events of one request, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(drop_events)
                .where(drop_events.c.request_id == request_id)
                .order_by(drop_events.c.id)
            ).all()
        return [
            {
                "kind": row.kind,
                "at": _utc(row.at),
                "actor_id": row.actor_id,
                "detail": json.loads(row.detail),
            }
            for row in rows
        ]

    @_unavailable_as_error
    def events_between(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[sa.Row[Any]]:
        """Every audit event in [since, until), oldest first, as rows of `drop_events`."""
        query = sa.select(drop_events).order_by(drop_events.c.id)
        if since is not None:
            query = query.where(drop_events.c.at >= since.astimezone(UTC))
        if until is not None:
            query = query.where(drop_events.c.at < until.astimezone(UTC))
        with self._engine.connect() as connection:
            return list(connection.execute(query).all())

    @_unavailable_as_error
    def get_many(self, ids: Sequence[str]) -> dict[str, DropRequest]:
        """The requests with these ids (those that exist), read two queries per 500 ids rather
        than two per request."""
        found: dict[str, DropRequest] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                rows = connection.execute(
                    sa.select(drop_requests).where(drop_requests.c.id.in_(chunk))
                ).all()
                candidates: dict[str, list[Any]] = {}
                for candidate in connection.execute(
                    sa.select(drop_candidates)
                    .where(drop_candidates.c.request_id.in_(chunk))
                    .order_by(drop_candidates.c.request_id, drop_candidates.c.position)
                ).all():
                    candidates.setdefault(candidate.request_id, []).append(candidate._mapping)
                for row in rows:
                    found[row.id] = _request_from_rows(row._mapping, candidates.get(row.id, []))
        return found

    # ------------------------------------------------------------ blocks

    @_unavailable_as_error
    def add_block(self, block: Block, event: dict[str, Any]) -> None:
        """Record a block put in the table, with its `blocked` audit event, in one step; any
        earlier active block of the number in that table is superseded by it."""
        with self._engine.begin() as connection:
            connection.execute(
                drop_blocks.update()
                .where(
                    drop_blocks.c.table_id == block.table_id,
                    drop_blocks.c.number == block.number,
                    drop_blocks.c.state == BlockState.ACTIVE.value,
                )
                .values(state=BlockState.UNBLOCKED.value, ended_at=block.created_at)
            )
            connection.execute(
                drop_blocks.insert().values(
                    id=block.id,
                    table_id=block.table_id,
                    number=block.number,
                    row_key=block.row_key,
                    reason=block.reason,
                    requested_by=block.requested_by,
                    approved_by=block.approved_by,
                    request_id=block.request_id,
                    created_at=block.created_at.astimezone(UTC),
                    expires_at=_utc_or_none(block.expires_at),
                    state=BlockState.ACTIVE.value,
                )
            )
            _record(connection, block.request_id, self._now(), "blocked", block.approved_by, event)

    @_unavailable_as_error
    def record_event(
        self, request_id: str, kind: str, actor_id: str | None, detail: dict[str, Any]
    ) -> None:
        """Append one audit event (block events that change no request)."""
        with self._engine.begin() as connection:
            _record(connection, request_id, self._now(), kind, actor_id, detail)

    @_unavailable_as_error
    def active_blocks(self, table_id: str, number: str | None = None) -> list[Block]:
        """The table's active blocks (of one number, if given), the soonest to expire first."""
        query = sa.select(drop_blocks).where(
            drop_blocks.c.table_id == table_id,
            drop_blocks.c.state == BlockState.ACTIVE.value,
        )
        if number is not None:
            query = query.where(drop_blocks.c.number == number)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(drop_blocks.c.created_at)).all()
        blocks = [_block_from_row(row._mapping) for row in rows]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(blocks, key=lambda b: b.expires_at or far)

    @_unavailable_as_error
    def end_block(
        self,
        block_id: str,
        state: BlockState,
        *,
        by: str | None,
        from_states: tuple[BlockState, ...] = (BlockState.ACTIVE,),
    ) -> bool:
        """Move a block to `state` if it is still in one of `from_states` (atomic)."""
        with self._engine.begin() as connection:
            result = connection.execute(
                drop_blocks.update()
                .where(
                    drop_blocks.c.id == block_id,
                    drop_blocks.c.state.in_([s.value for s in from_states]),
                )
                .values(state=state.value, ended_at=self._now(), ended_by=by)
            )
        return bool(result.rowcount == 1)

    @_unavailable_as_error
    def claim_due_blocks(self, stale_after: timedelta, limit: int = 50) -> list[Block]:
        """Blocks whose time is up, each claimed for this caller alone (active -> expiring);
        a claim older than `stale_after` (its instance died) can be taken again."""
        now = self._now()
        due = sa.or_(
            sa.and_(
                drop_blocks.c.state == BlockState.ACTIVE.value,
                drop_blocks.c.expires_at.is_not(None),
                drop_blocks.c.expires_at <= now,
            ),
            sa.and_(
                drop_blocks.c.state == BlockState.EXPIRING.value,
                drop_blocks.c.claimed_at <= now - stale_after,
            ),
        )
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(drop_blocks).where(due).limit(limit)).all()
        claimed: list[Block] = []
        for row in rows:
            with self._engine.begin() as connection:
                result = connection.execute(
                    drop_blocks.update()
                    .where(
                        drop_blocks.c.id == row.id,
                        drop_blocks.c.state == row.state,
                        sa.or_(
                            drop_blocks.c.claimed_at.is_(None),
                            drop_blocks.c.claimed_at == row.claimed_at,
                        ),
                    )
                    .values(state=BlockState.EXPIRING.value, claimed_at=now)
                )
            if result.rowcount == 1:
                claimed.append(_block_from_row(row._mapping))
        return claimed

    # ------------------------------------------------------------ internals

    def _decide(
        self,
        request_id: str,
        user_id: str,
        state: RequestState,
        event: str,
        *,
        extra: dict[str, Any] | None = None,
        valid: Callable[[DropRequest], bool] = lambda request: True,
        describe: Callable[[DropRequest], dict[str, Any]] = lambda request: {},
    ) -> Claim:
        current = self.get(request_id)
        if current is None or not valid(current):
            return Claim(ClaimStatus.NOT_FOUND, current)
        now = self._now()
        try:
            with self._engine.begin() as connection:
                decided = _transition(
                    connection,
                    request_id,
                    drop_requests.c.state == RequestState.PENDING.value,
                    drop_requests.c.expires_at > now,
                    state=state.value,
                    decided_by=user_id,
                    decided_at=now,
                    **(extra or {}),
                )
                if decided:
                    _record(connection, request_id, now, event, user_id, describe(current))
                    if state == RequestState.APPROVING:
                        # A duplicate key here rolls the whole claim back.
                        _claim_participant(connection, current, now)
        except sa.exc.IntegrityError:
            return Claim(ClaimStatus.PARTICIPANT_BUSY, self.get(request_id))
        if decided:
            return Claim(ClaimStatus.CLAIMED, self.get(request_id))
        if current.state == RequestState.PENDING and _utc(current.expires_at) <= now:
            expired_now = self._expire(request_id)
            return Claim(ClaimStatus.EXPIRED, self.get(request_id), expired_now=expired_now)
        return Claim(ClaimStatus.ALREADY_DECIDED, self.get(request_id))


def _claim_participant(connection: sa.Connection, request: DropRequest, now: datetime) -> None:
    """Claim the participant of the request just approved (IntegrityError if already taken)."""
    if request.target_kind == TargetKind.UNBLOCK:
        # No call: two unblock cards for one number take turns on the number instead.
        conversation_id, participant_id = "unblock", request.number
    else:
        chosen = connection.execute(
            sa.select(drop_requests.c.chosen_position).where(drop_requests.c.id == request.id)
        ).scalar_one()
        match = request.candidates[chosen]
        conversation_id, participant_id = match.conversation_id, match.participant_id
    connection.execute(
        drop_participant_claims.insert().values(
            conversation_id=conversation_id,
            participant_id=participant_id,
            request_id=request.id,
            claimed_at=now,
        )
    )


def _transition(
    connection: sa.Connection,
    request_id: str,
    *conditions: sa.ColumnElement[bool],
    **values: Any,
) -> bool:
    """One conditional UPDATE of a request: True when it applied (every condition held).

    Every state change goes through here, so two instances racing for one request can
    never both change it.
    """
    result = connection.execute(
        drop_requests.update().where(drop_requests.c.id == request_id, *conditions).values(**values)
    )
    return bool(result.rowcount == 1)


def _record(
    connection: sa.Connection,
    request_id: str,
    at: datetime,
    kind: str,
    actor_id: str | None,
    detail: dict[str, Any],
) -> None:
    connection.execute(
        drop_events.insert().values(
            request_id=request_id, at=at, kind=kind, actor_id=actor_id, detail=json.dumps(detail)
        )
    )


def _request_from_rows(row: Any, candidate_rows: list[Any]) -> DropRequest:
    number = row["number"]
    return DropRequest(
        id=row["id"],
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        requester_id=row["requester_id"],
        number=number,
        state=RequestState(row["state"]),
        created_at=_utc(row["created_at"]),
        expires_at=_utc(row["expires_at"]),
        message_ts=row["message_ts"],
        response_url=row["response_url"],
        decided_by=row["decided_by"],
        decided_at=_utc_or_none(row["decided_at"]),
        chosen_position=row["chosen_position"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        outcome_detail=row["outcome_detail"],
        dry_run=bool(row["dry_run"]),
        card_shown_state=row["card_shown_state"],
        audit_posted=row["audit_posted_at"] is not None,
        target_kind=TargetKind(row["target_kind"]),
        target=row["target"],
        reason=row["reason"],
        block=bool(row["block"]),
        card_via=row["card_via"],
        announce_attempts=int(row["announce_attempts"] or 0),
        candidates=tuple(
            CallMatch(
                conversation_id=c["conversation_id"],
                participant_id=c["participant_id"],
                number=number if c["number"] is None else c["number"],
                purpose=c["purpose"],
                participant_name=c["participant_name"],
                agent_names=tuple(json.loads(c["agent_names"])),
                queue_names=tuple(json.loads(c["queue_names"])),
                direction=c["direction"],
                connected_at=_utc_or_none(c["connected_at"]),
                stuck=_stuck_from_json(c["stuck"]),
            )
            for c in candidate_rows
        ),
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _stuck_json(stuck: Stuck | None) -> str | None:
    if stuck is None:
        return None
    return json.dumps(
        {
            "connected": [
                {"purpose": c.purpose, "name": c.name, "since": _iso_or_none(c.since)}
                for c in stuck.connected
            ],
            "caller_left_at": _iso_or_none(stuck.caller_left_at),
            "opened_at": _iso_or_none(stuck.opened_at),
        }
    )


def _stuck_from_json(text: str | None) -> Stuck | None:
    if not text:
        return None
    data = json.loads(text)
    return Stuck(
        connected=tuple(
            StillConnected(c["purpose"], c["name"], _moment_or_none(c["since"]))
            for c in data["connected"]
        ),
        caller_left_at=_moment_or_none(data["caller_left_at"]),
        opened_at=_moment_or_none(data["opened_at"]),
    )


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _moment_or_none(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _block_from_row(row: Any) -> Block:
    return Block(
        id=row["id"],
        table_id=row["table_id"],
        number=row["number"],
        row_key=row["row_key"],
        reason=row["reason"],
        requested_by=row["requested_by"],
        approved_by=row["approved_by"],
        request_id=row["request_id"],
        created_at=_utc(row["created_at"]),
        expires_at=_utc_or_none(row["expires_at"]),
        state=BlockState(row["state"]),
    )
