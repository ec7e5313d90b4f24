"""a claimed delivery records which replica claimed it: restarted, that replica takes its claims back

Revision ID: c6d2e8f1a9b3
Revises: b4a0c7e5d3f2
Create Date: 2026-11-30 17:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c6d2e8f1a9b3"
down_revision: str | None = "b4a0c7e5d3f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("claimed_by", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("deliveries", "claimed_by")
