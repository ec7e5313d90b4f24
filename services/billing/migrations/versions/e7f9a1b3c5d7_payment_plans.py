"""payment plans as payments reports them, for statements

Revision ID: e7f9a1b3c5d7
Revises: d4e6f8a0b2c4
Create Date: 2026-11-30 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e7f9a1b3c5d7"
down_revision: str | None = "d4e6f8a0b2c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_plans",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("frequency", sa.String(), nullable=False),
        sa.Column("schedule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_payment_plans")),
        schema="billing",
    )
    op.create_index("ix_payment_plans_client", "payment_plans", ["practice_id", "client_id"], schema="billing")


def downgrade() -> None:
    op.drop_table("payment_plans", schema="billing")
