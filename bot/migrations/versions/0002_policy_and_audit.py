"""Dry-run flag, card and audit-line bookkeeping, in-flight participant claims, indexes for
the sweeper and the audit export, and an append-only audit table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_SQLITE_GUARDS = [
    """
    CREATE TRIGGER drop_events_no_update BEFORE UPDATE ON drop_events
    BEGIN SELECT RAISE(ABORT, 'drop_events is append-only'); END
    """,
    """
    CREATE TRIGGER drop_events_no_delete BEFORE DELETE ON drop_events
    BEGIN SELECT RAISE(ABORT, 'drop_events is append-only'); END
    """,
]
_POSTGRES_GUARDS = [
    """
    CREATE OR REPLACE FUNCTION drop_events_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'drop_events is append-only'; END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER drop_events_no_change BEFORE UPDATE OR DELETE ON drop_events
    FOR EACH ROW EXECUTE FUNCTION drop_events_append_only()
    """,
    """
    CREATE TRIGGER drop_events_no_truncate BEFORE TRUNCATE ON drop_events
    FOR EACH STATEMENT EXECUTE FUNCTION drop_events_append_only()
    """,
]


def upgrade() -> None:
    """Add the columns and indexes; forbid changing or deleting audit events."""
    # Plain ADD COLUMNs (a literal default, not an expression) so that SQLite alters the
    # table in place instead of copying it, which its foreign keys would refuse.
    op.add_column(
        "drop_requests", sa.Column("dry_run", sa.Boolean, nullable=False, server_default="0")
    )
    # What the card last showed, and the audit-channel line's progress: after a crash the
    # sweeper finishes what the outcome's writer could not.
    op.add_column("drop_requests", sa.Column("card_shown_state", sa.String(16)))
    op.add_column("drop_requests", sa.Column("audit_claimed_at", sa.DateTime(timezone=True)))
    op.add_column("drop_requests", sa.Column("audit_posted_at", sa.DateTime(timezone=True)))
    # One in-flight drop per participant, whichever card it was started from.
    op.create_table(
        "drop_participant_claims",
        sa.Column("conversation_id", sa.String(64), primary_key=True),
        sa.Column("participant_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_drop_requests_state_expires", "drop_requests", ["state", "expires_at"])
    op.create_index("ix_drop_events_at", "drop_events", ["at"])
    guards = _POSTGRES_GUARDS if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    """Not supported: the audit trail is never dropped."""
    raise NotImplementedError("drop-caller never migrates down")
