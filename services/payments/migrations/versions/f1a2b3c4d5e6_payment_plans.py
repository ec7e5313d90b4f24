"""payment plans: plans, their bills (oldest first) and installments

Revision ID: f1a2b3c4d5e6
Revises: 5d1e2c7a9b40
Create Date: 2026-11-30 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1a2b3c4d5e6"
down_revision: str | None = "5d1e2c7a9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_plans",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("card_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("frequency", sa.String(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("failed_in_row", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_plans")),
        schema="payments",
    )
    op.create_index(
        "ix_payment_plans_client", "payment_plans", ["practice_id", "client_id", "created_at"], schema="payments"
    )
    op.create_index(
        "ix_payment_plans_active",
        "payment_plans",
        ["practice_id"],
        postgresql_where=sa.text("status = 'active'"),
        schema="payments",
    )
    op.create_table(
        "payment_plan_bills",
        sa.Column("plan_id", sa.String(), nullable=False),
        sa.Column("bill_id", sa.String(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "bill_id", name=op.f("pk_payment_plan_bills")),
        schema="payments",
    )
    op.create_index("ix_payment_plan_bills_bill", "payment_plan_bills", ["practice_id", "bill_id"], schema="payments")
    op.create_table(
        "payment_plan_installments",
        sa.Column("plan_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("charge", sa.JSON(), nullable=True),
        sa.Column("payment_id", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("plan_id", "seq", name=op.f("pk_payment_plan_installments")),
        schema="payments",
    )
    op.create_index(
        "ix_payment_plan_installments_due",
        "payment_plan_installments",
        ["practice_id", "due_date"],
        postgresql_where=sa.text("status = 'scheduled'"),
        schema="payments",
    )


def downgrade() -> None:
    op.drop_table("payment_plan_installments", schema="payments")
    op.drop_table("payment_plan_bills", schema="payments")
    op.drop_table("payment_plans", schema="payments")
