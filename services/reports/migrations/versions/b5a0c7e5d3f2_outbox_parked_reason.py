"""outbox rows too large for Kafka are parked with the reason instead of blocking the relay

Revision ID: b5a0c7e5d3f2
Revises: ffb87e0c6226
Create Date: 2026-11-30 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5a0c7e5d3f2"
down_revision: str | None = "ffb87e0c6226"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("parked_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "parked_reason")
