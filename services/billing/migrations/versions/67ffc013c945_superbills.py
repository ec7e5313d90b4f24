"""superbills

Revision ID: 67ffc013c945
Revises: 4ed28e43b19d
Create Date: 2026-11-28 20:27:41.209656
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "67ffc013c945"
down_revision: str | None = "4ed28e43b19d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "superbills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("session_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("share_scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.String(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_superbills")),
        sa.UniqueConstraint("practice_id", "number", name=op.f("uq_superbills_practice_id_number")),
        schema="billing",
    )
    op.create_index(
        "ix_superbills_client", "superbills", ["practice_id", "client_id", "created_at"], unique=False, schema="billing"
    )


def downgrade() -> None:
    op.drop_index("ix_superbills_client", table_name="superbills", schema="billing")
    op.drop_table("superbills", schema="billing")
