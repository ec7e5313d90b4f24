"""client profiles, credit entries, automation runs

Revision ID: 4ed28e43b19d
Revises: 2ffeae602792
Create Date: 2026-11-28 20:23:29.810802
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4ed28e43b19d"
down_revision: str | None = "2ffeae602792"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "automation_runs",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("job", sa.String(), nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "job", "period", name=op.f("pk_automation_runs")),
        schema="billing",
    )
    op.create_table(
        "client_profiles",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "client_id", name=op.f("pk_client_profiles")),
        schema="billing",
    )
    op.create_table(
        "credit_entries",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("entry_id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "entry_id", name=op.f("pk_credit_entries")),
        schema="billing",
    )
    op.create_index(
        "ix_credit_entries_client",
        "credit_entries",
        ["practice_id", "client_id", "occurred_at"],
        unique=False,
        schema="billing",
    )


def downgrade() -> None:
    op.drop_index("ix_credit_entries_client", table_name="credit_entries", schema="billing")
    op.drop_table("credit_entries", schema="billing")
    op.drop_table("client_profiles", schema="billing")
    op.drop_table("automation_runs", schema="billing")
