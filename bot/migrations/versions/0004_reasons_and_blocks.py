"""The reason for a request, whether its approval also blocks the number, and the blocks the
bot has put in the org's block-list data table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the blocks table."""
    op.add_column("drop_requests", sa.Column("reason", sa.Text))
    op.add_column(
        "drop_requests", sa.Column("block", sa.Boolean, nullable=False, server_default="0")
    )
    op.create_table(
        "drop_blocks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("table_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("row_key", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("requested_by", sa.String(32)),
        sa.Column("approved_by", sa.String(32)),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("ended_by", sa.String(32)),
    )
    op.create_index("ix_drop_blocks_state_expires", "drop_blocks", ["state", "expires_at"])
    op.create_index("ix_drop_blocks_number_state", "drop_blocks", ["number", "state"])


def downgrade() -> None:
    """Remove them again."""
    op.drop_index("ix_drop_blocks_number_state", "drop_blocks")
    op.drop_index("ix_drop_blocks_state_expires", "drop_blocks")
    op.drop_table("drop_blocks")
    op.drop_column("drop_requests", "block")
    op.drop_column("drop_requests", "reason")
