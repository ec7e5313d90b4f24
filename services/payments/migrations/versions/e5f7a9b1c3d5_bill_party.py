"""bills: the party a split bill is for (its own card pays it)

Revision ID: e5f7a9b1c3d5
Revises: b2a0c7e5d3f2
Create Date: 2026-11-30 03:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f7a9b1c3d5"
down_revision: str | None = "b2a0c7e5d3f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bills", sa.Column("party", sa.String(), nullable=True), schema="payments")


def downgrade() -> None:
    op.drop_column("bills", "party", schema="payments")
