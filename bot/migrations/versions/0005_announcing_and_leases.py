"""How a card was posted, the bookkeeping that bounds catching up on lost card updates and
audit lines, and the lease an instance holds on a drop while it carries it out.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns."""
    op.add_column("drop_requests", sa.Column("card_via", sa.String(16)))
    op.add_column(
        "drop_requests",
        sa.Column("announce_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("drop_requests", sa.Column("announce_after", sa.DateTime(timezone=True)))
    op.add_column("drop_requests", sa.Column("announce_abandoned_at", sa.DateTime(timezone=True)))
    op.add_column("drop_requests", sa.Column("lease_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Remove them again."""
    for column in (
        "lease_until",
        "announce_abandoned_at",
        "announce_after",
        "announce_attempts",
        "card_via",
    ):
        op.drop_column("drop_requests", column)
