"""initial

Revision ID: 2ffeae602792
Revises:
Create Date: 2026-11-28 20:17:50.346988
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "2ffeae602792"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bills",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("responsibility", sa.String(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("access_code", sa.String(length=6), nullable=False),
        sa.Column("pay_url", sa.String(), nullable=False),
        sa.Column("bill_to", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("patient", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("practice", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("copay_cents", sa.BigInteger(), nullable=True),
        sa.Column("coinsurance_percent", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("client_share_cents", sa.BigInteger(), nullable=False),
        sa.Column("insurance_share_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("share_scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.String(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bills")),
        sa.UniqueConstraint("practice_id", "number", name=op.f("uq_bills_practice_id_number")),
        schema="billing",
    )
    op.create_index(
        "ix_bills_client", "bills", ["practice_id", "client_id", "created_at"], unique=False, schema="billing"
    )
    op.create_index("ix_bills_list", "bills", ["practice_id", "created_at", "id"], unique=False, schema="billing")
    op.create_index(
        "ix_bills_share_due",
        "bills",
        ["share_scheduled_at"],
        unique=False,
        schema="billing",
        postgresql_where=sa.text("share_scheduled_at IS NOT NULL"),
    )
    op.create_table(
        "clients",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("first_name", sa.String(), nullable=False),
        sa.Column("last_name", sa.String(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_clients")),
        schema="billing",
    )
    op.create_table(
        "clinicians",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_clinicians")),
        schema="billing",
    )
    op.create_table(
        "counters",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "kind", name=op.f("pk_counters")),
        schema="billing",
    )
    create_messaging_tables("billing")
    op.create_table(
        "practice_settings",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("no_show_fee_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("late_cancel_fee_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_practice_settings")),
        schema="billing",
    )
    op.create_table(
        "sessions",
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=True),
        sa.Column("clinician_id", sa.String(), nullable=True),
        sa.Column("date_of_service", sa.Date(), nullable=True),
        sa.Column("attendance", sa.String(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("services_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("bill_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_sessions")),
        schema="billing",
    )
    op.create_index("ix_sessions_client", "sessions", ["practice_id", "client_id"], unique=False, schema="billing")
    op.create_index(
        "ix_sessions_unbilled",
        "sessions",
        ["practice_id", "date_of_service"],
        unique=False,
        schema="billing",
        postgresql_where=sa.text("bill_id IS NULL AND NOT voided"),
    )
    op.create_table(
        "statements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("practice_id", sa.String(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("source", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("shared", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("share_scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_id", sa.String(), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statements")),
        sa.UniqueConstraint("practice_id", "number", name=op.f("uq_statements_practice_id_number")),
        schema="billing",
    )
    op.create_index(
        "ix_statements_client", "statements", ["practice_id", "client_id", "created_at"], unique=False, schema="billing"
    )
    op.create_table(
        "bill_lines",
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("date_of_service", sa.Date(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("modifiers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("client_owes_cents", sa.BigInteger(), nullable=False),
        sa.Column("insurance_owes_cents", sa.BigInteger(), nullable=False),
        sa.Column("voided", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["billing.bills.id"], name=op.f("fk_bill_lines_bill_id_bills")),
        sa.PrimaryKeyConstraint("bill_id", "position", name=op.f("pk_bill_lines")),
        schema="billing",
    )
    op.create_index("ix_bill_lines_session", "bill_lines", ["session_id"], unique=False, schema="billing")
    op.create_table(
        "bill_payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("bill_id", sa.Uuid(), nullable=False),
        sa.Column("fact_id", sa.String(), nullable=False),
        sa.Column("payment_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("payer", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bill_id"], ["billing.bills.id"], name=op.f("fk_bill_payments_bill_id_bills")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_payments")),
        sa.UniqueConstraint("bill_id", "kind", "fact_id", name=op.f("uq_bill_payments_bill_id_kind_fact_id")),
        schema="billing",
    )


def downgrade() -> None:
    op.drop_table("bill_payments", schema="billing")
    op.drop_index("ix_bill_lines_session", table_name="bill_lines", schema="billing")
    op.drop_table("bill_lines", schema="billing")
    op.drop_index("ix_statements_client", table_name="statements", schema="billing")
    op.drop_table("statements", schema="billing")
    op.drop_index(
        "ix_sessions_unbilled",
        table_name="sessions",
        schema="billing",
        postgresql_where=sa.text("bill_id IS NULL AND NOT voided"),
    )
    op.drop_index("ix_sessions_client", table_name="sessions", schema="billing")
    op.drop_table("sessions", schema="billing")
    op.drop_table("practice_settings", schema="billing")
    drop_messaging_tables("billing")
    op.drop_table("counters", schema="billing")
    op.drop_table("clinicians", schema="billing")
    op.drop_table("clients", schema="billing")
    op.drop_index(
        "ix_bills_share_due",
        table_name="bills",
        schema="billing",
        postgresql_where=sa.text("share_scheduled_at IS NOT NULL"),
    )
    op.drop_index("ix_bills_list", table_name="bills", schema="billing")
    op.drop_index("ix_bills_client", table_name="bills", schema="billing")
    op.drop_table("bills", schema="billing")
