"""Tables of the reports schema: projections of the facts other services publish (bills, their
lines and payments, payment facts, names), the journal and the audit log. All of it can be
dropped and rebuilt from the topics (`python -m services.reports rebuild`)."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("reports")

practices = Table(
    "practices",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("timezone", String, nullable=False),
    Column("currency", String, nullable=False),
)

names = Table(
    "names",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("kind", String, primary_key=True),  # client | clinician
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("session_id", String, primary_key=True),
    Column("clinician_id", String, nullable=False),
)

# The latest version of each bill, and what the journal has booked for it. `moved_*` is what
# payments, refunds and adjustments took off each payer's share (net), `open_cents` what is
# left (total − both) and `open_insurance_cents` the insurer's part of it: kept by the consumer
# with each version, so aging reads only the open bills (a partial index) and replays only the
# moves after its cutoff.
bills = Table(
    "bills",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("bill_id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("number", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("responsibility", String, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("total_cents", BigInteger, nullable=False),
    Column("insurance_share_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("booked", JSONB, nullable=False),  # per account, what the journal holds for the bill
    Column("moved_client_cents", BigInteger, nullable=False, server_default="0"),
    Column("moved_insurance_cents", BigInteger, nullable=False, server_default="0"),
    Column("open_cents", BigInteger, nullable=False, server_default="0"),
    Column("open_insurance_cents", BigInteger, nullable=False, server_default="0"),
    Index("ix_bills_practice_issued", "practice_id", "issued_on"),
    Index(
        "ix_bills_open",
        "practice_id",
        "client_id",
        postgresql_include=["issued_on", "due_date", "cancelled_at", "open_cents", "open_insurance_cents"],
        postgresql_where=text("open_cents > 0"),
    ),
)

# One row per bill line with the bill's figures spread over it (revenue report), and the
# clinician of its session ('' until the session is known: topics arrive independently).
bill_lines = Table(
    "bill_lines",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("bill_id", String, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("code", String, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("billed_cents", BigInteger, nullable=False),
    Column("collected_cents", BigInteger, nullable=False),
    Column("adjusted_cents", BigInteger, nullable=False),
    Column("outstanding_cents", BigInteger, nullable=False),
    Column("clinician_id", String, nullable=False, server_default=""),
    Index("ix_bill_lines_issued", "practice_id", "issued_on"),
    Index("ix_bill_lines_session", "practice_id", "session_id"),
)

# bill_lines summed per month of issue, clinician and code, kept by the consumer in the same
# transaction as the lines (revenue over whole months reads these, not every line).
revenue_months = Table(
    "revenue_months",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("month", Date, primary_key=True),  # the first day of the month
    Column("clinician_id", String, primary_key=True),
    Column("code", String, primary_key=True),
    Column("billed_cents", BigInteger, nullable=False),
    Column("collected_cents", BigInteger, nullable=False),
    Column("adjusted_cents", BigInteger, nullable=False),
    Column("outstanding_cents", BigInteger, nullable=False),
    Column("line_count", Integer, nullable=False),  # 0: every line left (rows are never deleted)
)

# Payments, refunds, adjustments and their reversals as the bill shows them (aging as of a past date).
bill_payments = Table(
    "bill_payments",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("bill_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String, nullable=False),  # payment | refund | adjustment | adjustment_reversed
    Column("payer", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("ix_bill_payments_at", "practice_id", "occurred_at"),
)

# Money in and out (payments report): one row per part of a payment or refund (per bill it
# reached; bill_id null for the part that went to credit).
money_facts = Table(
    "money_facts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("fact_id", String, nullable=False),  # payment or refund id
    Column("kind", String, nullable=False),  # payment | refund
    Column("payment_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("method", String, nullable=False),
    Column("bill_id", String),
    Column("amount_cents", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_money_facts_practice_at", "practice_id", "at"),
    Index("ix_money_facts_payment", "practice_id", "payment_id"),
)

# money_facts summed per quarter hour (every timezone's midnight falls on one) and method, kept
# by the consumer in the same transaction as the facts: payments by method or day read these.
payment_slots = Table(
    "payment_slots",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("slot", DateTime(timezone=True), primary_key=True),
    Column("method", String, primary_key=True),
    Column("payments_cents", BigInteger, nullable=False),
    Column("refunds_cents", BigInteger, nullable=False),
    Column("payment_count", Integer, nullable=False),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("entry_id", String, primary_key=True),  # uuid5 of the event: the same after a rebuild
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("on_date", Date),  # the accounting date when the fact names one (a bill's issue date)
    Column("source_kind", String, nullable=False),
    Column("source_id", String, nullable=False),
    Column("memo", Text, nullable=False),
    Index("ix_journal_entries_practice_at", "practice_id", "at"),
    Index("ix_journal_entries_practice_on", "practice_id", "on_date"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("entry_id", String, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("account", String, nullable=False),
    Column("debit_cents", BigInteger, nullable=False),
    Column("credit_cents", BigInteger, nullable=False),
    Index("ix_journal_lines_client", "practice_id", "account", "client_id"),
)

# Who did what, append-only: rows are only ever inserted (a trigger refuses UPDATE and DELETE).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String, primary_key=True),  # the AuditRecorded event id
    Column("practice_id", String, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String, nullable=False),
    Column("role", String, nullable=False),
    Column("service", String, nullable=False),
    Column("action", String, nullable=False),
    Column("resource_kind", String, nullable=False),
    Column("resource_id", String),
    Column("client_id", String),
    Column("ip", String),
    Index("ix_audit_log_practice_at", "practice_id", "at", "id"),
    Index("ix_audit_log_client", "practice_id", "client_id", "at"),
)
