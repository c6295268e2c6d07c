"""The first schema: requests, their candidate calls, and the audit events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables as the first release had them."""
    op.create_table(
        "drop_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("requester_id", sa.String(32), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("response_url", sa.Text),
        sa.Column("decided_by", sa.String(32)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("chosen_position", sa.Integer),
        sa.Column("outcome", sa.String(32)),
        sa.Column("outcome_detail", sa.Text),
        sa.Column("error_code", sa.String(128)),
        sa.Column("context_id", sa.String(64)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "drop_candidates",
        sa.Column("request_id", sa.String(32), sa.ForeignKey("drop_requests.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("participant_name", sa.Text),
        sa.Column("agent_names", sa.Text, nullable=False),
        sa.Column("queue_names", sa.Text, nullable=False),
        sa.Column("direction", sa.String(16)),
        sa.Column("connected_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "drop_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(32)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_drop_events_request_id", "drop_events", ["request_id"])


def downgrade() -> None:
    """Not supported: the audit trail is never dropped."""
    raise NotImplementedError("drop-caller never migrates down")
