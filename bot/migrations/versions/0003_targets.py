"""Targets other than a number: what was typed, each candidate's own number, and stuck
conversations offered whole.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns; rows made before keep reading as number targets."""
    # Plain ADD COLUMNs with literal defaults, so SQLite alters the tables in place.
    op.add_column(
        "drop_requests",
        sa.Column("target_kind", sa.String(16), nullable=False, server_default="number"),
    )
    op.add_column("drop_requests", sa.Column("target", sa.Text))
    op.add_column("drop_candidates", sa.Column("number", sa.String(20)))
    op.add_column("drop_candidates", sa.Column("stuck", sa.Text))


def downgrade() -> None:
    """Remove them again."""
    op.drop_column("drop_candidates", "stuck")
    op.drop_column("drop_candidates", "number")
    op.drop_column("drop_requests", "target")
    op.drop_column("drop_requests", "target_kind")
