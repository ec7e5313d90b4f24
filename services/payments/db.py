"""Tables of the payments schema. Balances are never stored: what is open on a bill comes
from `bill_applications`, a client's credit from `credit_entries` (both append-only)."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)

from shared.db import service_metadata

metadata = service_metadata("payments")

bills = Table(
    "bills",
    metadata,
    Column("id", String, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("client_owes_cents", BigInteger, nullable=False),
    Column("insurance_owes_cents", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("access_code", String, nullable=False),
    Column("currency", String, nullable=False, server_default="USD"),
    Column("practice_name", String),
    Column("session_ids", JSON, nullable=False, server_default="[]"),
    Column("party", String),  # a split bill's payer ("client" or "guardian:<id>"): autopay uses that party's card
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("practice_id", "id"),
    Index("ix_bills_id", "id"),
    Index("ix_bills_practice_number", "practice_id", "number"),
    Index("ix_bills_practice_client", "practice_id", "client_id"),
)
"""Projection of billing's BillSnapshot (latest version only)."""

clients = Table(
    "clients",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    Column("household_id", String),
    Column("is_minor", Boolean, nullable=False, server_default="false"),
    Column("billing_contact_name", String),
    Column("stripe_customer_id", String),
    Column("autopay_card_id", String),
    Column("autopay_failed_nights", Integer, nullable=False, server_default="0"),
    Column("autopay_last_night", Date),
)
"""Per client: household (from ClientUpserted), Stripe customer, autopay card and its run of
consecutive failed nights; the row locked for credit."""

payments = Table(
    "payments",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("payer_name", String),
    Column("method", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("online", Boolean, nullable=False, server_default="false"),
    Column("card_id", String),
    Column("stripe_payment_method_id", String),
    Column("stripe_customer_id", String),
    Column("card_brand", String),
    Column("card_last4", String),
    Column("reference", String),
    Column("notes", Text),
    Column("appointment_id", String),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("stripe_payment_intent_id", String, unique=True),
    Column("stripe_charge_id", String),
    Column("failure_reason", Text),
    Column("credit_cents", BigInteger, nullable=False, server_default="0"),
    Column("autopay", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("currency", String),
    Column("off_session", Boolean),
    Index("ix_payments_practice_client", "practice_id", "client_id", "created_at"),
    Index("ix_payments_pending", "status", postgresql_where=text("status = 'pending'")),
)
"""`status`: pending (a Stripe charge in flight, holding its amount on the bills), succeeded,
failed, or review (Stripe reported an amount or currency other than ours: held, not applied,
for an operator). `currency` and `off_session` are the Stripe charge's parameters, fixed when
the payment is recorded so a retry sends the same ones under the same idempotency key."""

bill_applications = Table(
    "bill_applications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("bill_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("payment_id", String, nullable=False),
    Column("refund_id", String),
    Column("kind", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_bill_applications_bill", "bill_id"),
    Index("ix_bill_applications_payment", "payment_id"),
)
"""Signed ledger per bill: payment (+), refund / rejected / voided (−). Pending payments
count, so a card charge in flight holds its amount against the bill."""

credit_entries = Table(
    "credit_entries",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("payment_id", String),
    Column("refund_id", String),
    Column("bill_id", String),
    Column("appointment_id", String),
    Column("reason", Text),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_credit_entries_client", "practice_id", "client_id", "seq"),
)
"""Append-only client credit ledger; the balance is the sum."""

refunds = Table(
    "refunds",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("payment_id", String, nullable=False, index=True),
    Column("client_id", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("credit_cents", BigInteger, nullable=False, server_default="0"),
    Column("reason", Text),
    Column("source", String, nullable=False, server_default="api"),
    Column("status", String, nullable=False),
    Column("plan", JSON, nullable=False, server_default="{}"),
    Column("stripe_refund_id", String, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

cards = Table(
    "cards",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("stripe_payment_method_id", String, nullable=False),
    Column("stripe_customer_id", String, nullable=False),
    Column("brand", String),
    Column("last4", String),
    Column("exp_month", Integer),
    Column("exp_year", Integer),
    Column("holder", String, nullable=False, server_default="client"),
    Column("is_default", Boolean, nullable=False, server_default="false"),
    Column("authorized", Boolean, nullable=False, server_default="false"),
    Column("authorization", JSON),
    Column("deleted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_cards_client", "practice_id", "client_id"),
)

stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Webhook events already processed (each once)."""

pay_page_counters = Table(
    "pay_page_counters",
    metadata,
    Column("key", String, primary_key=True),
    Column("window_started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("count", Integer, nullable=False),
)
"""Pay page tries per key (practice + bill number, client IP, bill, ...) in the current window,
incremented atomically before the try is judged."""

pay_attempts = Table(
    "pay_attempts",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("bill_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String, nullable=False),
    Column("status", String, nullable=False),
    Column("stripe_payment_intent_id", String, unique=True),
    Column("stripe_payment_method_id", String),
    Column("failure_reason", Text),
    Column("ip", String, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("settled_at", DateTime(timezone=True)),
    Index("ix_pay_attempts_open", "status", "created_at"),
)
"""Card payments started on the public pay page: one Stripe PaymentIntent each (our id is its
idempotency key and becomes the payment's id). A payment is recorded only once Stripe says the
intent succeeded; a decline records nothing, so nothing is held and no one is emailed."""

expected_receivables = Table(
    "expected_receivables",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("session_id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("date_of_service", Date, nullable=False),
    Column("expected_cents", BigInteger, nullable=False),
    Column("voided", Boolean, nullable=False, server_default="false"),
)
"""Sessions paid by a third-party platform (Headway, Alma): what we expect from it."""

remittances = Table(
    "remittances",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("payer", String, nullable=False),
    Column("reference", String, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("practice_id", "payer", "reference"),
)

remittance_lines = Table(
    "remittance_lines",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("remittance_id", String, nullable=False, index=True),
    Column("practice_id", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Index("ix_remittance_lines_session", "practice_id", "session_id"),
)

practices = Table(
    "practices",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("timezone", String, nullable=False),
    Column("currency", String, nullable=False, server_default="USD"),
    Column("autopay_time", Time, nullable=False),
    Column("autopay_skip_insurance_pending", Boolean, nullable=False, server_default="false"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""What autopay needs of a practice's billing settings (PracticeAutomationChanged)."""

autopay_runs = Table(
    "autopay_runs",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("night", Date, primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSON),
)
"""One row per practice and night; `finished_at` set once the night's run went through."""

autopay_attempts = Table(
    "autopay_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("night", Date, nullable=False),
    Column("client_id", String, nullable=False),
    Column("bill_id", String, nullable=False),
    Column("card_id", String, nullable=False),
    Column("payment_id", String),
    Column("amount_cents", BigInteger, nullable=False),
    Column("outcome", String, nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("practice_id", "night", "bill_id", "card_id"),
    Index("ix_autopay_attempts_client", "practice_id", "client_id", "created_at"),
)
"""Each autopay charge tried: a card is tried at most once per bill and night."""

payment_plans = Table(
    "payment_plans",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("card_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("frequency", String, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("failed_in_row", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_payment_plans_client", "practice_id", "client_id", "created_at"),
    Index("ix_payment_plans_active", "practice_id", postgresql_where=text("status = 'active'")),
)
"""A client's installment plan over some open bills: `status` active, completed, defaulted or
cancelled; `failed_in_row` the run of consecutive failed installments."""

payment_plan_bills = Table(
    "payment_plan_bills",
    metadata,
    Column("plan_id", String, primary_key=True),
    Column("bill_id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("position", Integer, nullable=False),
    Index("ix_payment_plan_bills_bill", "practice_id", "bill_id"),
)
"""The plan's bills, oldest first (`position`): installments pay them in that order."""

payment_plan_installments = Table(
    "payment_plan_installments",
    metadata,
    Column("plan_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("charge", JSON),
    Column("payment_id", String),
    Column("reason", Text),
    Index("ix_payment_plan_installments_due", "practice_id", "due_date", postgresql_where=text("status = 'scheduled'")),
)
"""`status` scheduled, charging (a charge claimed: `charge` holds its exact allocations, so a
rerun repeats the same request under the same idempotency key), paid, failed or skipped."""
