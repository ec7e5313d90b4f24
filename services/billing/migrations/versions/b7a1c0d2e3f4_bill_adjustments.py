"""bill adjustments (write-offs, discounts, bad debt)

Revision ID: b7a1c0d2e3f4
Revises: 67ffc013c945
Create Date: 2026-11-30 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7a1c0d2e3f4"
down_revision: str | None = "67ffc013c945"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "bills", sa.Column("adjusted_cents", sa.BigInteger(), server_default="0", nullable=False), schema="billing"
    )
    op.create_table(
        "bill_adjustments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("payer", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverse_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["bill_id"], ["billing.bills.id"], name=op.f("fk_bill_adjustments_bill_id_bills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_adjustments")),
        schema="billing",
    )
    op.create_index("ix_bill_adjustments_bill", "bill_adjustments", ["bill_id", "created_at"], schema="billing")


def downgrade() -> None:
    op.drop_index("ix_bill_adjustments_bill", table_name="bill_adjustments", schema="billing")
    op.drop_table("bill_adjustments", schema="billing")
    op.drop_column("bills", "adjusted_cents", schema="billing")
