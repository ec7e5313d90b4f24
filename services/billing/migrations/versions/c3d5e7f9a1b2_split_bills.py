"""split bills: group, percent and party on bills

Revision ID: c3d5e7f9a1b2
Revises: b1a0c7e5d3f2
Create Date: 2026-11-30 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d5e7f9a1b2"
down_revision: str | None = "b1a0c7e5d3f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bills", sa.Column("split_group_id", sa.Uuid(), nullable=True), schema="billing")
    op.add_column("bills", sa.Column("split_percent", sa.Numeric(5, 2), nullable=True), schema="billing")
    op.add_column("bills", sa.Column("party", sa.String(), nullable=True), schema="billing")
    op.create_index(
        "ix_bills_split_group", "bills", ["split_group_id"], schema="billing",
        postgresql_where=sa.text("split_group_id IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_bills_split_group", table_name="bills", schema="billing")
    for column in ("party", "split_percent", "split_group_id"):
        op.drop_column("bills", column, schema="billing")
