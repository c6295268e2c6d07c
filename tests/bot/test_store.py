"""bot.store.RequestStore on a SQLite file and on PostgreSQL, with an injected clock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.audit import audit_records
from bot.domain import ClaimStatus, DropRequest, RequestState
from bot.errors import StoreUnavailable
from bot.schema import create_engine, drop_events
from bot.store import RequestStore
from genesys.models import CallMatch

START = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NUMBER = "+15551234567"
TTL = 300


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _call(position: int, **overrides: Any) -> CallMatch:
    values: dict[str, Any] = {
        "conversation_id": f"3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f6071{position}",
        "participant_id": f"9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6{position}",
        "number": NUMBER,
        "purpose": "customer",
        "participant_name": "Pat Caller",
        "agent_names": ("Ann Agent", "Bo Agent"),
        "queue_names": ("Support",),
        "direction": "inbound",
        "connected_at": START - timedelta(minutes=3, microseconds=250),
    }
    values.update(overrides)
    return CallMatch(**values)


CALLS = (
    _call(0),
    _call(
        1,
        purpose="external",
        participant_name=None,
        agent_names=(),
        queue_names=(),
        direction=None,
        connected_at=None,
    ),
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def store(db_url: str, clock: Clock) -> RequestStore:
    return RequestStore.from_url(db_url, now=clock)


def _create(store: RequestStore, candidates: tuple[CallMatch, ...] = CALLS) -> DropRequest:
    return store.create_request(
        team_id="T0001",
        channel_id="C0001",
        requester_id="UREQ",
        number=NUMBER,
        candidates=candidates,
        ttl_seconds=TTL,
        response_url="https://hooks.slack.invalid/commands/1",
    )


def _raw_events(db_url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(drop_events).order_by(drop_events.c.id)).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def test_create_and_get_round_trip_with_candidates(store: RequestStore) -> None:
    """A created request reads back whole: fields, times, TTL and candidates in order."""
    created = _create(store)
    fetched = store.get(created.id)
    assert fetched == created
    assert fetched.state == RequestState.PENDING
    assert (fetched.team_id, fetched.channel_id, fetched.requester_id) == ("T0001", "C0001", "UREQ")
    assert fetched.number == NUMBER
    assert fetched.created_at == START
    assert fetched.expires_at == START + timedelta(seconds=TTL)
    assert fetched.response_url == "https://hooks.slack.invalid/commands/1"
    assert fetched.message_ts is None
    assert fetched.decided_by is None
    assert fetched.decided_at is None
    assert fetched.chosen is None
    assert fetched.candidates == CALLS
    assert [e["kind"] for e in store.events(created.id)] == ["requested"]


def test_get_of_an_unknown_id_is_none(store: RequestStore) -> None:
    """Asking for a request that does not exist gives None, not an error."""
    assert store.get("0" * 24) is None


def test_set_message_remembers_where_the_card_is(store: RequestStore) -> None:
    """set_message stores the card's message ts on the request."""
    request = _create(store)
    store.set_message(request.id, "1712345678.123456")
    fetched = store.get(request.id)
    assert fetched is not None
    assert fetched.message_ts == "1712345678.123456"


def test_times_with_a_non_utc_offset_keep_their_instant(store: RequestStore) -> None:
    """A connected_at given at +02:00 reads back as the same instant."""
    connected_at = datetime(2024, 5, 1, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    request = _create(store, (_call(0, connected_at=connected_at),))
    fetched = store.get(request.id)
    assert fetched is not None
    assert fetched.candidates[0].connected_at == connected_at


def test_claim_succeeds_once(store: RequestStore, clock: Clock) -> None:
    """The first claim moves the request to approving; a second claim is ALREADY_DECIDED."""
    request = _create(store)
    clock.advance(10)
    first = store.claim(request.id, "USUP1", 1)
    assert first.status == ClaimStatus.CLAIMED
    assert first.request is not None
    assert first.request.state == RequestState.APPROVING
    assert first.request.decided_by == "USUP1"
    assert first.request.decided_at == START + timedelta(seconds=10)
    assert first.request.chosen == CALLS[1]

    second = store.claim(request.id, "USUP2", 0)
    assert second.status == ClaimStatus.ALREADY_DECIDED
    assert second.request is not None
    assert second.request.decided_by == "USUP1"
    assert second.request.chosen_position == 1
    assert [e["kind"] for e in store.events(request.id)] == ["requested", "approved"]


@pytest.mark.parametrize("position", [-1, 2, 99])
def test_claim_of_a_position_with_no_call_is_not_found(store: RequestStore, position: int) -> None:
    """A click naming a call the request does not have claims nothing."""
    request = _create(store)
    claim = store.claim(request.id, "USUP1", position)
    assert claim.status == ClaimStatus.NOT_FOUND
    fetched = store.get(request.id)
    assert fetched is not None
    assert fetched.state == RequestState.PENDING


def test_claim_of_an_unknown_request_is_not_found(store: RequestStore) -> None:
    """Claiming an id that does not exist is NOT_FOUND with no request."""
    claim = store.claim("f" * 24, "USUP1", 0)
    assert claim.status == ClaimStatus.NOT_FOUND
    assert claim.request is None


def test_twenty_concurrent_claims_have_exactly_one_winner(
    store: RequestStore, db_url: str, clock: Clock
) -> None:
    """20 threads (over two stores on one file) claim at once: one CLAIMED, one approved event."""
    request = _create(store)
    other = RequestStore.from_url(db_url, now=clock)
    barrier = threading.Barrier(20)
    statuses: list[ClaimStatus] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def click(index: int) -> None:
        target = store if index % 2 else other
        try:
            barrier.wait(timeout=10)
            status = target.claim(request.id, f"USUP{index}", 0).status
        except BaseException as exc:  # noqa: BLE001 - reported below, after join
            with lock:
                errors.append(exc)
            return
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert statuses.count(ClaimStatus.CLAIMED) == 1
    assert statuses.count(ClaimStatus.ALREADY_DECIDED) == 19
    kinds = [e["kind"] for e in store.events(request.id)]
    assert kinds.count("approved") == 1
    final = store.get(request.id)
    assert final is not None
    assert final.state == RequestState.APPROVING


def test_claim_just_before_expiry_succeeds(store: RequestStore, clock: Clock) -> None:
    """A claim one second before expires_at is accepted."""
    request = _create(store)
    clock.advance(TTL - 1)
    assert store.claim(request.id, "USUP1", 0).status == ClaimStatus.CLAIMED


@pytest.mark.parametrize("late_by", [0, 1, 3600])
def test_claim_after_expiry_is_expired_and_marks_it(
    store: RequestStore, clock: Clock, late_by: int
) -> None:
    """A claim at or after expires_at returns EXPIRED and the request becomes expired."""
    request = _create(store)
    clock.advance(TTL + late_by)
    claim = store.claim(request.id, "USUP1", 0)
    assert claim.status == ClaimStatus.EXPIRED
    assert claim.request is not None
    assert claim.request.state == RequestState.EXPIRED
    assert claim.request.decided_by is None
    assert [e["kind"] for e in store.events(request.id)] == ["requested", "expired"]
    again = store.claim(request.id, "USUP2", 0)
    assert again.status != ClaimStatus.CLAIMED
    assert [e["kind"] for e in store.events(request.id)] == ["requested", "expired"]


def test_expire_leaves_an_unexpired_request_pending(store: RequestStore, clock: Clock) -> None:
    """expire() before expires_at changes nothing; after it, marks the request expired once."""
    request = _create(store)
    clock.advance(TTL - 1)
    still = store.expire(request.id)
    assert still is not None
    assert still.state == RequestState.PENDING
    clock.advance(1)
    expired = store.expire(request.id)
    assert expired is not None
    assert expired.state == RequestState.EXPIRED
    store.expire(request.id)
    assert [e["kind"] for e in store.events(request.id)] == ["requested", "expired"]


def test_cancel(store: RequestStore, clock: Clock) -> None:
    """cancel moves a pending request to cancelled, by whom and when; a later claim loses."""
    request = _create(store)
    clock.advance(5)
    cancelled = store.cancel(request.id, "USUP1")
    assert cancelled.status == ClaimStatus.CLAIMED
    assert cancelled.request is not None
    assert cancelled.request.state == RequestState.CANCELLED
    assert cancelled.request.decided_by == "USUP1"
    assert cancelled.request.decided_at == START + timedelta(seconds=5)
    assert cancelled.request.chosen is None
    assert store.claim(request.id, "USUP2", 0).status == ClaimStatus.ALREADY_DECIDED
    assert store.cancel(request.id, "USUP2").status == ClaimStatus.ALREADY_DECIDED
    events = store.events(request.id)
    assert [e["kind"] for e in events] == ["requested", "cancelled"]
    assert events[1]["actor_id"] == "USUP1"


def test_cancel_after_expiry_is_expired(store: RequestStore, clock: Clock) -> None:
    """Cancelling a request whose time is up reports EXPIRED."""
    request = _create(store)
    clock.advance(TTL)
    assert store.cancel(request.id, "USUP1").status == ClaimStatus.EXPIRED


def test_finish_success_moves_approving_to_done(store: RequestStore, clock: Clock) -> None:
    """finish(succeeded=True) records done, the outcome and an "outcome" event."""
    request = _create(store)
    store.claim(request.id, "USUP1", 0)
    clock.advance(2)
    done = store.finish(
        request.id, succeeded=True, outcome="disconnected", detail="The caller left the call."
    )
    assert done.state == RequestState.DONE
    assert done.outcome == "disconnected"
    assert done.outcome_detail == "The caller left the call."
    assert done.decided_by == "USUP1"
    event = store.events(request.id)[-1]
    assert event["kind"] == "outcome"
    assert event["at"] == START + timedelta(seconds=2)
    assert event["detail"] == {
        "outcome": "disconnected",
        "detail": "The caller left the call.",
        "error_code": None,
        "context_id": None,
    }


def test_finish_failure_records_error_code_and_context_id(store: RequestStore) -> None:
    """finish(succeeded=False) records failed with Genesys's error code and correlation id."""
    request = _create(store)
    store.claim(request.id, "USUP1", 0)
    failed = store.finish(
        request.id,
        succeeded=False,
        outcome="failed",
        detail="Genesys refused.",
        error_code="conversation.participant.not.found",
        context_id="ctx-0123",
    )
    assert failed.state == RequestState.FAILED
    assert failed.outcome == "failed"
    event = store.events(request.id)[-1]
    assert event["kind"] == "outcome"
    assert event["detail"]["error_code"] == "conversation.participant.not.found"
    assert event["detail"]["context_id"] == "ctx-0123"


@pytest.mark.parametrize("before", ["pending", "cancelled", "unknown"])
def test_finish_on_a_request_that_was_never_approved_raises(
    store: RequestStore, before: str
) -> None:
    """finish is refused (RuntimeError) for a request nobody approved, and records nothing."""
    request = _create(store)
    request_id = request.id
    if before == "cancelled":
        store.cancel(request_id, "USUP1")
    elif before == "unknown":
        request_id = "e" * 24
    events_before = store.events(request_id)
    with pytest.raises(RuntimeError):
        store.finish(request_id, succeeded=False, outcome="failed", detail="late")
    assert store.events(request_id) == events_before


def test_a_late_outcome_keeps_the_state_and_is_still_recorded(store: RequestStore) -> None:
    """An outcome for a request already finished (by recovery) is appended, state unchanged."""
    request = _create(store)
    store.claim(request.id, "USUP1", 0)
    store.finish(request.id, succeeded=False, outcome="interrupted", detail="recovered")

    late = store.finish(request.id, succeeded=True, outcome="disconnected", detail="real")

    assert late.outcome == "disconnected"
    assert store.get(request.id).state == RequestState.FAILED  # type: ignore[union-attr]
    events = store.events(request.id)
    assert [e["kind"] for e in events][-2:] == ["outcome", "outcome"]
    assert events[-1]["detail"]["late"] is True
    assert events[-1]["actor_id"] == "USUP1"


def test_events_are_append_only(store: RequestStore, db_url: str, clock: Clock) -> None:
    """Each state change adds an event row and never changes an earlier one."""
    request = _create(store)
    snapshots = [_raw_events(db_url)]
    clock.advance(1)
    store.set_message(request.id, "1712345678.000100")
    snapshots.append(_raw_events(db_url))
    clock.advance(1)
    store.claim(request.id, "USUP1", 0)
    snapshots.append(_raw_events(db_url))
    clock.advance(1)
    store.finish(request.id, succeeded=True, outcome="disconnected", detail="ok")
    snapshots.append(_raw_events(db_url))
    assert [len(s) for s in snapshots] == [1, 1, 2, 3]
    for earlier, later in itertools.pairwise(snapshots):
        assert later[: len(earlier)] == earlier
    assert [e["kind"] for e in store.events(request.id)] == ["requested", "approved", "outcome"]
    assert [e["at"] for e in store.events(request.id)] == [
        START,
        START + timedelta(seconds=2),
        START + timedelta(seconds=3),
    ]


def test_events_of_one_request_exclude_other_requests(store: RequestStore) -> None:
    """events() returns only the given request's rows."""
    first = _create(store)
    second = _create(store)
    store.cancel(second.id, "USUP1")
    assert [e["kind"] for e in store.events(first.id)] == ["requested"]
    assert [e["kind"] for e in store.events(second.id)] == ["requested", "cancelled"]


def test_requests_survive_a_restart(store: RequestStore, db_url: str, clock: Clock) -> None:
    """A second RequestStore on the same file sees the same requests and their changes."""
    request = _create(store)
    restarted = RequestStore.from_url(db_url, now=clock)
    assert restarted.get(request.id) == request
    assert restarted.claim(request.id, "USUP1", 0).status == ClaimStatus.CLAIMED
    seen = store.get(request.id)
    assert seen is not None
    assert seen.state == RequestState.APPROVING
    assert store.claim(request.id, "USUP2", 0).status == ClaimStatus.ALREADY_DECIDED


def test_create_schema_is_idempotent(store: RequestStore, db_url: str, clock: Clock) -> None:
    """Creating the schema again (directly or by reopening) keeps the data and works."""
    request = _create(store)
    store.create_schema()
    store.create_schema()
    reopened = RequestStore.from_url(db_url, now=clock)
    assert reopened.get(request.id) == request
    assert reopened.ping()


def test_ping_answers_for_a_working_database(store: RequestStore) -> None:
    """ping() is True when the database answers."""
    assert store.ping()


@pytest.fixture
def unopenable(tmp_path: Path) -> Iterator[RequestStore]:
    """A store whose SQLite file lies in a directory that does not exist."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 's.db'}")
    try:
        yield RequestStore(engine, now=Clock())
    finally:
        engine.dispose()


def test_operations_on_an_unopenable_database_raise_store_unavailable(
    unopenable: RequestStore,
) -> None:
    """Every operation raises StoreUnavailable (a readable sentence), not a SQLAlchemy error."""
    calls: list[Any] = [
        lambda: unopenable.create_request(
            team_id="T",
            channel_id="C",
            requester_id="U",
            number=NUMBER,
            candidates=CALLS,
            ttl_seconds=TTL,
            response_url=None,
        ),
        lambda: unopenable.get("a" * 24),
        lambda: unopenable.set_message("a" * 24, "1.2"),
        lambda: unopenable.claim("a" * 24, "U", 0),
        lambda: unopenable.cancel("a" * 24, "U"),
        lambda: unopenable.expire("a" * 24),
        lambda: unopenable.finish("a" * 24, succeeded=True, outcome="x", detail="y"),
        lambda: unopenable.events("a" * 24),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert "database is unavailable" in str(caught.value)
        assert isinstance(caught.value.__cause__, sa.exc.OperationalError | OSError)


def test_ping_of_an_unopenable_database_is_false(unopenable: RequestStore) -> None:
    """ping() reports False instead of raising when the database cannot be opened."""
    assert unopenable.ping() is False


def test_from_url_on_an_unopenable_database_still_starts(tmp_path: Path) -> None:
    """from_url on a database that cannot be opened returns a store that says so on each use."""
    url = f"sqlite:///{tmp_path / 'missing' / 's.db'}"
    store = RequestStore.from_url(url)
    assert store.ping() is False
    with pytest.raises(StoreUnavailable, match="database is unavailable"):
        store.get("a" * 24)


def test_store_recovers_when_the_database_comes_back(tmp_path: Path) -> None:
    """A database that appears after start is used without a restart."""
    folder = tmp_path / "later"
    store = RequestStore.from_url(f"sqlite:///{folder / 's.db'}")
    with pytest.raises(StoreUnavailable):
        store.get("a" * 24)
    folder.mkdir()
    time.sleep(2.1)  # the store retries a down database at most every 2 s
    assert store.get("a" * 24) is None


def test_operations_on_a_closed_postgresql_port_raise_store_unavailable() -> None:
    """With psycopg installed, a PostgreSQL URL to a closed port gives StoreUnavailable."""
    pytest.importorskip("psycopg")
    engine = sa.create_engine(
        "postgresql+psycopg://127.0.0.1:1/x", connect_args={"connect_timeout": 2}
    )
    try:
        store = RequestStore(engine)
        with pytest.raises(StoreUnavailable):
            store.get("a" * 24)
        assert store.ping() is False
    finally:
        engine.dispose()


def test_one_participant_is_claimed_by_one_request_at_a_time(store: RequestStore) -> None:
    """Two requests (two cards) for the same caller: only one can be approving at once."""
    first = _create(store)
    second = _create(store)

    assert store.claim(first.id, "USUP1", 0).status == ClaimStatus.CLAIMED
    busy = store.claim(second.id, "USUP2", 0)

    assert busy.status == ClaimStatus.PARTICIPANT_BUSY
    assert store.get(second.id).state == RequestState.PENDING  # type: ignore[union-attr]
    assert [e["kind"] for e in store.events(second.id)] == ["requested"]
    # Another participant of the same request is free.
    assert store.claim(second.id, "USUP2", 1).status == ClaimStatus.CLAIMED


def test_a_finished_drop_frees_the_participant(store: RequestStore) -> None:
    """After the first request's outcome, a second request may try the participant again."""
    first = _create(store)
    second = _create(store)
    store.claim(first.id, "USUP1", 0)
    store.finish(first.id, succeeded=False, outcome="failed", detail="403")

    assert store.claim(second.id, "USUP2", 0).status == ClaimStatus.CLAIMED


def test_schema_head_matches_the_newest_migration() -> None:
    """SCHEMA_HEAD (the fast path that skips Alembic at start) is Alembic's own head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from bot.schema import SCHEMA_HEAD

    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).resolve().parents[2] / "bot" / "migrations")
    )
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_audit_records_read_every_request_across_batches(store: RequestStore) -> None:
    """The export reads requests 500 ids to a query: 501 requests (and look-ups between them,
    which have no request) come out whole, each event beside its own request's facts. (A
    `cancelled` event carries none of them itself: they can only come from its request.)"""
    created = []
    for n in range(501):
        created.append(_create(store, CALLS[n % 2 :]))
        assert store.cancel(created[-1].id, "UCANCEL").status == ClaimStatus.CLAIMED
        if n % 100 == 0:
            store.record_lookup(
                channel_id="C0009",
                requester_id="ULOOK",
                number="+15550000000",
                outcome="no_live_call",
                detail="none",
            )

    records = audit_records(store)

    cancelled = [r for r in records if r["event"] == "cancelled"]
    looked_up = [r for r in records if r["event"] == "looked_up"]
    assert [r["request_id"] for r in cancelled] == [request.id for request in created]
    assert all(
        (r["actor_id"], r["requester_id"], r["channel_id"], r["number"])
        == ("UCANCEL", "UREQ", "C0001", NUMBER)
        for r in cancelled
    )
    assert len(looked_up) == 6
    assert all(
        (r["requester_id"], r["channel_id"], r["number"]) == ("ULOOK", "C0009", "+15550000000")
        for r in looked_up
    )
