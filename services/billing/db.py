"""Billing's tables (schema `billing`): its projection of scheduling (clients, clinicians,
sessions), practice settings, bills with their lines and the payment facts applied to them,
and statements. A bill's paid figure is cached on the row for listing, but the facts in
`bill_payments` are the truth; `python -m services.billing.check` compares the two."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("billing")


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


def _issued() -> list[Column]:
    """The columns every issued document (statement, superbill, estimate) has: the source documents
    renders, its version, share state and the newest rendered document."""
    return [
        Column("source", JSONB, nullable=False),
        Column("version", Integer, nullable=False, server_default="1"),
        Column("shared", Boolean, nullable=False, server_default="false"),
        Column("shared_at", DateTime(timezone=True)),
        Column("share_scheduled_at", DateTime(timezone=True)),
        Column("document_id", String),
        Column("document_version", Integer),
        _created(),
    ]


practice_settings = Table(
    "practice_settings",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("data", JSONB, nullable=False),
    # Duplicated out of `data` so the Unbilled query can filter missed sessions in SQL.
    Column("no_show_fee_cents", BigInteger, nullable=False, server_default="0"),
    Column("late_cancel_fee_cents", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

counters = Table(
    "counters",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("last_value", BigInteger, nullable=False),
)

clients = Table(
    "clients",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    Column("first_name", String, nullable=False),
    Column("last_name", String, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
)

clinicians = Table(
    "clinicians",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    Column("data", JSONB, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    # Null while only a SessionVoided has arrived (reordered delivery): a tombstone.
    Column("client_id", String),
    Column("clinician_id", String),
    Column("date_of_service", Date),
    Column("attendance", String),
    Column("data", JSONB),
    Column("services_cents", BigInteger, nullable=False, server_default="0"),
    Column("as_of", DateTime(timezone=True)),
    Column("voided", Boolean, nullable=False, server_default="false"),
    Column("void_reason", Text),
    Column("bill_id", Uuid),
    _created(),
    Index("ix_sessions_client", "practice_id", "client_id"),
    Index(
        "ix_sessions_unbilled",
        "practice_id",
        "date_of_service",
        postgresql_where=text("bill_id IS NULL AND NOT voided"),
    ),
)

bills = Table(
    "bills",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("client_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("responsibility", String, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("comments", Text),
    Column("access_code", String(6), nullable=False),
    Column("pay_url", String, nullable=False),
    Column("bill_to", JSONB, nullable=False),
    Column("patient", JSONB, nullable=False),
    Column("practice", JSONB, nullable=False),
    Column("copay_cents", BigInteger),
    Column("coinsurance_percent", Numeric(5, 2)),
    Column("total_cents", BigInteger, nullable=False),
    Column("client_share_cents", BigInteger, nullable=False),
    Column("insurance_share_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False, server_default="0"),
    # Cached like paid_cents; the truth is the standing rows of bill_adjustments.
    Column("adjusted_cents", BigInteger, nullable=False, server_default="0"),
    # A split bill: the group's bills share split_group_id; party is "client" or "guardian:<id>".
    Column("split_group_id", Uuid),
    Column("split_percent", Numeric(5, 2)),
    Column("party", String),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("shared", Boolean, nullable=False, server_default="false"),
    Column("shared_at", DateTime(timezone=True)),
    Column("share_scheduled_at", DateTime(timezone=True)),
    Column("document_id", String),
    Column("document_version", Integer),
    Column("cancel_reason", Text),
    Column("cancelled_at", DateTime(timezone=True)),
    _created(),
    UniqueConstraint("practice_id", "number"),
    Index("ix_bills_list", "practice_id", "created_at", "id"),
    Index("ix_bills_client", "practice_id", "client_id", "created_at"),
    Index("ix_bills_split_group", "split_group_id", postgresql_where=text("split_group_id IS NOT NULL")),
    Index("ix_bills_share_due", "share_scheduled_at", postgresql_where=text("share_scheduled_at IS NOT NULL")),
)

bill_lines = Table(
    "bill_lines",
    metadata,
    Column("bill_id", Uuid, ForeignKey(bills.c.id), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("date_of_service", Date, nullable=False),
    Column("code", String, nullable=False),
    Column("description", Text),
    Column("modifiers", JSONB, nullable=False),
    Column("units", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("client_owes_cents", BigInteger, nullable=False),
    Column("insurance_owes_cents", BigInteger, nullable=False),
    Column("voided", Boolean, nullable=False, server_default="false"),
    Index("ix_bill_lines_session", "session_id"),
)

bill_payments = Table(
    "bill_payments",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("bill_id", Uuid, ForeignKey(bills.c.id), nullable=False),
    # payment id for kind "payment", refund id for kind "refund": one fact per bill each.
    Column("fact_id", String, nullable=False),
    Column("payment_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("method", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("bill_id", "kind", "fact_id"),
)

# Write-offs, discounts, bad debt: what a payer owes lowered without money moving. Never
# deleted: a reversal stamps reversed_at.
bill_adjustments = Table(
    "bill_adjustments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("bill_id", Uuid, ForeignKey(bills.c.id), nullable=False),
    Column("payer", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    _created(),
    Column("reversed_at", DateTime(timezone=True)),
    Column("reverse_reason", Text),
    Index("ix_bill_adjustments_bill", "bill_id", "created_at"),
)

statements = Table(
    "statements",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("client_id", String, nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("comments", Text),
    *_issued(),
    UniqueConstraint("practice_id", "number"),
    Index("ix_statements_client", "practice_id", "client_id", "created_at"),
)

client_profiles = Table(
    "client_profiles",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("client_id", String, primary_key=True),
    Column("data", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The client credit ledger as payments reports it (CreditChanged), for statements.
credit_entries = Table(
    "credit_entries",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("entry_id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("reason", Text),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Index("ix_credit_entries_client", "practice_id", "client_id", "occurred_at"),
)

# The client's payment plans as payments reports them (PaymentPlan* events), for statements.
payment_plans = Table(
    "payment_plans",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("frequency", String, nullable=False),
    Column("schedule", JSONB, nullable=False),
    Index("ix_payment_plans_client", "practice_id", "client_id"),
)

# One row per scheduled job run per practice and period: a second run of the same period
# (another replica, a retry, a manual run) does nothing.
automation_runs = Table(
    "automation_runs",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("job", String, primary_key=True),
    Column("period", String, primary_key=True),
    Column("result", JSONB, nullable=False),
    _created(),
)

superbills = Table(
    "superbills",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("client_id", String, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("session_ids", JSONB, nullable=False),
    *_issued(),
    UniqueConstraint("practice_id", "number"),
    Index("ix_superbills_client", "practice_id", "client_id", "created_at"),
)

# Good Faith Estimates: numbered per practice like statements; `source` is the DocumentSource
# documents renders. exceeded_at: when the client's bills first reached the estimate plus $400.
good_faith_estimates = Table(
    "good_faith_estimates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("client_id", String, nullable=False),
    Column("clinician_id", String, nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("renew_yearly", Boolean, nullable=False, server_default="false"),
    Column("renewed_by", Uuid),
    Column("exceeded_at", DateTime(timezone=True)),
    *_issued(),
    UniqueConstraint("practice_id", "number"),
    Index("ix_good_faith_estimates_client", "practice_id", "client_id", "period_start"),
)
