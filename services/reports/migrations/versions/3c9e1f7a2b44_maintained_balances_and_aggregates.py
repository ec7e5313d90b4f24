"""maintained open balances and report aggregates

Revision ID: 3c9e1f7a2b44
Revises: 206bf29a06c0
Create Date: 2026-11-30 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c9e1f7a2b44"
down_revision: str | None = "206bf29a06c0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the consumer now keeps as it goes, computed once from the rows already there.
BACKFILL = (
    """UPDATE reports.bills b SET moved_client_cents = m.mc, moved_insurance_cents = m.mi
    FROM (SELECT practice_id, bill_id,
            sum(CASE WHEN payer = 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
                ELSE -amount_cents END) AS mc,
            sum(CASE WHEN payer <> 'insurance' THEN 0 WHEN kind IN ('payment', 'adjustment') THEN amount_cents
                ELSE -amount_cents END) AS mi
          FROM reports.bill_payments GROUP BY 1, 2) m
    WHERE m.practice_id = b.practice_id AND m.bill_id = b.bill_id""",
    """UPDATE reports.bills SET open_cents = total_cents - moved_client_cents - moved_insurance_cents,
      open_insurance_cents = CASE WHEN total_cents - moved_client_cents - moved_insurance_cents > 0
        THEN greatest(0, least(total_cents - moved_client_cents - moved_insurance_cents,
                               insurance_share_cents - moved_insurance_cents)) ELSE 0 END""",
    """UPDATE reports.bill_lines l SET clinician_id = s.clinician_id FROM reports.sessions s
    WHERE s.practice_id = l.practice_id AND s.session_id = l.session_id""",
    """INSERT INTO reports.revenue_months
    SELECT practice_id, date_trunc('month', issued_on)::date, clinician_id, code, sum(billed_cents),
      sum(collected_cents), sum(adjusted_cents), sum(outstanding_cents), count(*)
    FROM reports.bill_lines GROUP BY 1, 2, 3, 4""",
    """INSERT INTO reports.payment_slots
    SELECT practice_id, date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00Z'), method,
      coalesce(sum(amount_cents) FILTER (WHERE kind = 'payment'), 0),
      coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund'), 0),
      count(DISTINCT payment_id) FILTER (WHERE kind = 'payment')
    FROM reports.money_facts GROUP BY 1, 2, 3""",
)


def upgrade() -> None:
    for column in ("moved_client_cents", "moved_insurance_cents", "open_cents", "open_insurance_cents"):
        op.add_column("bills", sa.Column(column, sa.BigInteger(), server_default="0", nullable=False), schema="reports")
    op.add_column(
        "bill_lines", sa.Column("clinician_id", sa.String(), server_default="", nullable=False), schema="reports"
    )
    op.create_table(
        "revenue_months",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("clinician_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("billed_cents", sa.BigInteger(), nullable=False),
        sa.Column("collected_cents", sa.BigInteger(), nullable=False),
        sa.Column("adjusted_cents", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_cents", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "month", "clinician_id", "code", name=op.f("pk_revenue_months")),
        schema="reports",
    )
    op.create_table(
        "payment_slots",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("slot", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("payments_cents", sa.BigInteger(), nullable=False),
        sa.Column("refunds_cents", sa.BigInteger(), nullable=False),
        sa.Column("payment_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "slot", "method", name=op.f("pk_payment_slots")),
        schema="reports",
    )
    for statement in BACKFILL:
        op.execute(statement)
    op.create_index(
        "ix_bills_open",
        "bills",
        ["practice_id", "client_id"],
        unique=False,
        schema="reports",
        postgresql_include=["issued_on", "due_date", "cancelled_at", "open_cents", "open_insurance_cents"],
        postgresql_where=sa.text("open_cents > 0"),
    )
    op.create_index("ix_bill_lines_session", "bill_lines", ["practice_id", "session_id"], schema="reports")
    op.create_index("ix_bill_payments_at", "bill_payments", ["practice_id", "occurred_at"], schema="reports")
    op.create_index("ix_journal_entries_practice_on", "journal_entries", ["practice_id", "on_date"], schema="reports")


def downgrade() -> None:
    op.drop_index("ix_journal_entries_practice_on", table_name="journal_entries", schema="reports")
    op.drop_index("ix_bill_payments_at", table_name="bill_payments", schema="reports")
    op.drop_index("ix_bill_lines_session", table_name="bill_lines", schema="reports")
    op.drop_index("ix_bills_open", table_name="bills", schema="reports")
    op.drop_table("payment_slots", schema="reports")
    op.drop_table("revenue_months", schema="reports")
    op.drop_column("bill_lines", "clinician_id", schema="reports")
    for column in ("open_insurance_cents", "open_cents", "moved_insurance_cents", "moved_client_cents"):
        op.drop_column("bills", column, schema="reports")
