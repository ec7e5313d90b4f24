"""shared sources: a client sees only the documents of bills, statements and superbills shared with them
(filled from the *Shared events from now on; replay billing.events to fill it for earlier shares)

Revision ID: c6e2d4a8f1b3
Revises: b3a0c7e5d3f2
Create Date: 2026-11-30 03:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c6e2d4a8f1b3"
down_revision: str | None = "b3a0c7e5d3f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_sources",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "kind", "source_id", name=op.f("pk_shared_sources")),
    )


def downgrade() -> None:
    op.drop_table("shared_sources")
