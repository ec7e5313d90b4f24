"""Tables of the notifications schema: the delivery log (one row per email cause), the
portal feed, and the projections it needs (rendered documents, client contacts, bills)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("notifications")

# Raised by a transaction after which the sender may have an email to send (see Database.signal).
EMAIL_SIGNAL = "email"

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String, primary_key=True),  # uuid5 of the cause: also the Message-ID
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("cause_event_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("channel", String, nullable=False),  # email | portal (no address or opted out)
    Column("recipient_name", String, nullable=False),
    Column("to_address", String),
    Column("subject", Text, nullable=False),
    Column("summary", Text, nullable=False),  # the one-line text of the portal notification
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("action_url", Text),
    Column("document_kind", String),
    Column("document_source_id", String),
    Column("document_min_version", Integer),
    Column("attachment_name", String),
    Column("attach_pdf", Boolean, nullable=False, server_default=text("false")),
    Column("document_id", String),
    Column("status", String, nullable=False, server_default="queued"),  # queued|sending|sent|failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("document_deadline", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True)),
    Column("claimed_by", String),  # the claiming replica's KAFKA_GROUP_INSTANCE_ID, if it has one
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("cause_event_id", "kind"),
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status IN ('queued', 'sending')")),
    Index("ix_deliveries_client", "practice_id", "client_id", "created_at"),
    Index("ix_deliveries_practice", "practice_id", "created_at"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("delivery_id", String, nullable=False, unique=True),
    Column("kind", String, nullable=False),
    Column("recipient_name", String, nullable=False),
    Column("recipient_email", String),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("action_url", Text),
    Column("document_id", String),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_notifications_client", "practice_id", "client_id", "created_at"),
)

rendered_documents = Table(
    "rendered_documents",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("source_id", String, primary_key=True),
    Column("document_id", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

client_contacts = Table(
    "client_contacts",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("client_id", String, primary_key=True),
    Column("recipient_name", String, nullable=False),
    Column("email", String),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

bill_balances = Table(
    "bill_balances",
    metadata,
    Column("bill_id", String, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("number", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("currency", String, nullable=False),
    Column("payment_ids", JSONB, nullable=False),
    PrimaryKeyConstraint("practice_id", "bill_id"),
    Index("ix_bill_balances_bill_id", "bill_id"),
)

practices = Table(
    "practices",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("currency", String, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

cards = Table(
    "cards",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("card_id", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("brand", String),
    Column("last4", String),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_cards_expiry", "exp_year", "exp_month"),
)

email_preferences = Table(
    "email_preferences",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("client_id", String, primary_key=True),
    Column("email_wanted", Boolean, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
)
