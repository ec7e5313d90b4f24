"""good faith estimates

Revision ID: d4e6f8a0b2c4
Revises: c3d5e7f9a1b2
Create Date: 2026-11-30 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d4e6f8a0b2c4"
down_revision: str | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "good_faith_estimates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("clinician_id", sa.String(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("renew_yearly", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("renewed_by", sa.Uuid(), nullable=True),
        sa.Column("exceeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("share_scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.String(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_good_faith_estimates")),
        sa.UniqueConstraint("practice_id", "number", name=op.f("uq_good_faith_estimates_practice_id_number")),
        schema="billing",
    )
    op.create_index(
        "ix_good_faith_estimates_client", "good_faith_estimates", ["practice_id", "client_id", "period_start"],
        schema="billing",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_good_faith_estimates_client", table_name="good_faith_estimates", schema="billing")
    op.drop_table("good_faith_estimates", schema="billing")
