"""`python app.py audit`: the audit trail as CSV or JSON, for compliance."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

COLUMNS = (
    "at",
    "request_id",
    "event",
    "actor_id",
    "requester_id",
    "channel_id",
    "number",
    "conversation_id",
    "participant_id",
    "outcome",
    "detail",
    "error_code",
    "context_id",
    "dry_run",
)


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
