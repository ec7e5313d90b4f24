"""autopay nights

Revision ID: c69565e763f2
Revises: a982c6773778
Create Date: 2026-11-28 20:43:54.224799
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c69565e763f2"
down_revision: str | None = "a982c6773778"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "autopay_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("bill_id", sa.String(), nullable=False),
        sa.Column("card_id", sa.String(), nullable=False),
        sa.Column("payment_id", sa.String(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_autopay_attempts")),
        sa.UniqueConstraint(
            "practice_id",
            "night",
            "bill_id",
            "card_id",
            name=op.f("uq_autopay_attempts_practice_id_night_bill_id_card_id"),
        ),
        schema="payments",
    )
    op.create_index(
        "ix_autopay_attempts_client",
        "autopay_attempts",
        ["practice_id", "client_id", "created_at"],
        unique=False,
        schema="payments",
    )
    op.create_table(
        "autopay_runs",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("practice_id", "night", name=op.f("pk_autopay_runs")),
        schema="payments",
    )
    op.create_table(
        "practices",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("currency", sa.String(), server_default="USD", nullable=False),
        sa.Column("autopay_time", sa.Time(), nullable=False),
        sa.Column("autopay_skip_insurance_pending", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_practices")),
        schema="payments",
    )
    op.add_column(
        "clients",
        sa.Column("autopay_failed_nights", sa.Integer(), server_default="0", nullable=False),
        schema="payments",
    )
    op.add_column("clients", sa.Column("autopay_last_night", sa.Date(), nullable=True), schema="payments")
    op.add_column(
        "payments", sa.Column("autopay", sa.Boolean(), server_default="false", nullable=False), schema="payments"
    )


def downgrade() -> None:
    op.drop_column("payments", "autopay", schema="payments")
    op.drop_column("clients", "autopay_last_night", schema="payments")
    op.drop_column("clients", "autopay_failed_nights", schema="payments")
    op.drop_table("practices", schema="payments")
    op.drop_table("autopay_runs", schema="payments")
    op.drop_index("ix_autopay_attempts_client", table_name="autopay_attempts", schema="payments")
    op.drop_table("autopay_attempts", schema="payments")
