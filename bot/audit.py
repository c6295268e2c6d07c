"""The audit trail read back: every event with its request's facts, and
`python app.py audit`, which exports it as CSV or JSON for compliance."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.store import RequestStore

COLUMNS = (
    "at",
    "request_id",
    "event",
    "actor_id",
    "requester_id",
    "channel_id",
    "number",
    "reason",
    "conversation_id",
    "participant_id",
    "outcome",
    "detail",
    "error_code",
    "context_id",
    "dry_run",
)
# Audit events about the chosen call, whose ids older rows may not carry themselves.
_DECIDED = frozenset({"approved", "outcome"})


def audit_records(
    store: RequestStore, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Every audit event in [since, until), oldest first, with its request's facts.

    Built from the append-only `drop_events` plus the request columns that never change
    after creation (who asked, where, which number and calls).
    """
    events = store.events_between(since, until)
    # Look-ups that ended without a card have no request behind them.
    requests = store.get_many(sorted({e.request_id for e in events if e.kind != "looked_up"}))
    records: list[dict[str, Any]] = []
    for event in events:
        request = requests.get(event.request_id)
        detail = json.loads(event.detail)
        chosen = request.chosen if request is not None else None
        decided = chosen if chosen is not None and event.kind in _DECIDED else None
        records.append(
            {
                "at": _utc(event.at).isoformat(),
                "request_id": event.request_id,
                "event": event.kind,
                # The first release did not name the approver on outcome events.
                "actor_id": event.actor_id
                or (request.decided_by if request and event.kind == "outcome" else None),
                # A look-up that found nothing has no request: its event carries these.
                "requester_id": request.requester_id if request else event.actor_id,
                "channel_id": request.channel_id if request else detail.get("channel_id"),
                "number": request.number if request else detail.get("number"),
                "reason": request.reason if request else detail.get("reason"),
                "conversation_id": detail.get("conversation_id")
                or (decided.conversation_id if decided else None),
                "participant_id": detail.get("participant_id")
                or (decided.participant_id if decided else None),
                "outcome": detail.get("outcome"),
                "detail": detail.get("detail"),
                "error_code": detail.get("error_code"),
                "context_id": detail.get("context_id"),
                "dry_run": bool(request.dry_run if request else detail.get("dry_run")),
            }
        )
    return records


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_records(records: Sequence[dict[str, Any]], fmt: str, out: TextIO) -> None:
    """Write audit records as `csv` (a header row, one row each) or `json` (one array)."""
    if fmt == "json":
        json.dump(list(records), out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({key: "" if value is None else value for key, value in record.items()})


def export(argv: Sequence[str]) -> int:
    """`python app.py audit`: print the audit trail; needs only DATABASE_URL."""
    from bot.errors import StoreUnavailable

    parser = argparse.ArgumentParser(
        prog="app.py audit", description="Export the drop-caller audit trail to stdout."
    )
    parser.add_argument("--since", type=parse_moment, help="from this ISO date/time (UTC)")
    parser.add_argument("--until", type=parse_moment, help="before this ISO date/time (UTC)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    args = parser.parse_args(argv)
    store = RequestStore.from_url(os.environ.get("DATABASE_URL") or "sqlite:///drop_caller.db")
    try:
        records = audit_records(store, args.since, args.until)
    except StoreUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    write_records(records, args.format, sys.stdout)
    return 0


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
