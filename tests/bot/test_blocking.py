"""bot.blocking.BlockList against an in-memory data table and a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.blocking import BlockList
from bot.domain import DropRequest, RequestState
from bot.policy import Policy
from bot.store import RequestStore
from genesys.models import TableSchema

TABLE = "6e4c1c0a-1111-4222-8333-444455556666"
NUMBER = "+15551234567"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Tables:
    """An Architect data table in memory (the DataTables protocol)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = ["key", *columns]
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def schema(self, table_id: str) -> TableSchema:
        return TableSchema(table_id, "Blocked", {c: "string" for c in self.columns})

    def row(self, table_id: str, key: str) -> dict[str, Any] | None:
        self.calls.append(f"GET {key}")
        return self.rows.get(key)

    def add_row(self, table_id: str, row: dict[str, Any]) -> None:
        self.calls.append(f"POST {row['key']}")
        self.rows[row["key"]] = row

    def update_row(self, table_id: str, key: str, row: dict[str, Any]) -> None:
        self.calls.append(f"PUT {key}")
        self.rows[key] = row

    def delete_row(self, table_id: str, key: str) -> bool:
        self.calls.append(f"DELETE {key}")
        return self.rows.pop(key, None) is not None


def _request(store: RequestStore) -> DropRequest:
    return store.create_request(
        team_id="T1",
        channel_id="C1",
        requester_id="U1",
        number=NUMBER,
        candidates=(),
        ttl_seconds=300,
        response_url=None,
        reason="spam",
    )


def _blocklist(tmp_path: Path, tables: Tables, clock: list[datetime], **policy: Any) -> BlockList:
    store = RequestStore.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}", now=lambda: clock[0])
    blocklist = BlockList(
        table_id=TABLE,
        key_format="e164_no_plus",
        days=1,
        tables=tables,
        store=store,
        policy=Policy(default_region="US", **policy),
        now=lambda: clock[0],
    )
    assert blocklist.check() is None
    return blocklist


def test_protected_and_emergency_numbers_are_never_blocked(tmp_path: Path) -> None:
    """Neither a protected number nor an emergency one is written to the table."""
    tables = Tables(["reason"])
    blocklist = _blocklist(tmp_path, tables, [NOW], protected_numbers=frozenset({NUMBER}))
    request = _request(blocklist._store)

    for number in (NUMBER, "+44999"):
        outcome = blocklist.block(request, number, "U2")
        assert not outcome.done
        assert outcome.sentence.startswith("Not blocked:")
    assert tables.rows == {}


def test_expiry_leaves_a_row_changed_by_hand_in_place(tmp_path: Path) -> None:
    """A row whose expiresAt someone changed is not deleted at the bot's expiry; one that is
    as the bot wrote it is; each is recorded as found."""
    tables = Tables(["expiresAt"])
    clock = [NOW]
    blocklist = _blocklist(tmp_path, tables, clock)
    request = _request(blocklist._store)
    assert blocklist.block(request, NUMBER, "U2").done
    assert blocklist.block(request, "+15557654321", "U2").done
    tables.rows["15551234567"]["expiresAt"] = "2027-01-01T00:00:00Z"

    clock[0] = NOW + timedelta(days=1, seconds=1)
    lines = blocklist.expire_due()

    assert sorted(tables.rows) == ["15551234567"]
    assert any("changed by hand" in line for line in lines)
    assert any("deleted" in line for line in lines)
    assert blocklist.expire_due() == []
    assert blocklist._store.active_blocks(TABLE) == []


def test_a_table_without_a_key_column_turns_blocking_off(tmp_path: Path) -> None:
    """A table with no key column cannot hold numbers: blocking is off and says why."""
    tables = Tables([])
    tables.columns = ["number"]
    store = RequestStore.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    blocklist = BlockList(
        table_id=TABLE,
        key_format="tel",
        days=0,
        tables=tables,
        store=store,
        policy=Policy(default_region="US"),
        now=lambda: NOW,
    )

    problem = blocklist.check()

    assert problem is not None
    assert "no key column" in problem
    assert not blocklist.enabled
    assert "off" in blocklist.summary()


@pytest.mark.parametrize(
    ("key_format", "key"),
    [("e164_no_plus", "15551234567"), ("e164", "+15551234567"), ("tel", "tel:+15551234567")],
)
def test_the_key_is_written_in_the_configured_form(key_format: str, key: str) -> None:
    """The three forms an org's flow may compare."""
    blocklist = BlockList(
        table_id=TABLE,
        key_format=key_format,
        days=0,
        tables=None,
        store=None,  # type: ignore[arg-type]
        policy=Policy(default_region="US"),
        now=lambda: NOW,
    )
    assert blocklist.key(NUMBER) == key
    assert blocklist.duration() == "until someone unblocks it"


def test_requests_read_as_not_pending(tmp_path: Path) -> None:
    """A block request is a request like any other (pending until decided)."""
    store = RequestStore.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert _request(store).state == RequestState.PENDING
