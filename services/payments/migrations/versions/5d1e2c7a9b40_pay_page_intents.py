"""pay page: PaymentIntent attempts, atomic try counters, practice name on bills

Revision ID: 5d1e2c7a9b40
Revises: e5f7a9b1c3d5
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1e2c7a9b40"
down_revision: str | None = "e5f7a9b1c3d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pay_page_counters",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pay_page_counters")),
        schema="payments",
    )
    op.create_table(
        "pay_attempts",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("bill_id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(), nullable=True),
        sa.Column("stripe_payment_method_id", sa.String(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("ip", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_attempts")),
        sa.UniqueConstraint("stripe_payment_intent_id", name=op.f("uq_pay_attempts_stripe_payment_intent_id")),
        schema="payments",
    )
    op.create_index("ix_pay_attempts_open", "pay_attempts", ["status", "created_at"], unique=False, schema="payments")
    op.add_column("bills", sa.Column("practice_name", sa.String(), nullable=True), schema="payments")
    op.drop_index("ix_pay_page_failures_key", table_name="pay_page_failures", schema="payments")
    op.drop_table("pay_page_failures", schema="payments")


def downgrade() -> None:
    op.create_table(
        "pay_page_failures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pay_page_failures")),
        schema="payments",
    )
    op.create_index("ix_pay_page_failures_key", "pay_page_failures", ["key", "at"], unique=False, schema="payments")
    op.drop_column("bills", "practice_name", schema="payments")
    op.drop_index("ix_pay_attempts_open", table_name="pay_attempts", schema="payments")
    op.drop_table("pay_attempts", schema="payments")
    op.drop_table("pay_page_counters", schema="payments")
