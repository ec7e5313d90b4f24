"""The documents schema: one row per rendered version of a bill, statement or superbill.

A row is also its own render job: it is inserted `pending` by the event handler (with the
source snapshot to render), claimed by a worker for a lease, and finished `rendered` (PDF
stored) or `failed` (reason stored). Older versions are never overwritten.
"""

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
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

metadata = service_metadata("documents")

# Raised by a transaction after which the render worker has a job to claim (see Database.signal).
RENDER_SIGNAL = "render"

documents = Table(
    "documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("source_id", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String, nullable=False, server_default="pending"),
    Column("source", JSONB, nullable=False),
    Column("pages", Integer),
    Column("sha256", String),
    Column("pdf", LargeBinary),
    Column("failure_reason", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_until", DateTime(timezone=True)),
    # clock_timestamp, not now(): versions recorded in one consumer transaction still sort in order
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("practice_id", "kind", "source_id", "version"),
    Index("ix_documents_pending", "created_at", postgresql_where=text("status = 'pending'")),
    Index("ix_documents_practice_created", "practice_id", "created_at", "id"),
    Index("ix_documents_source", "practice_id", "source_id", "version"),
)

shared_sources = Table(
    "shared_sources",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("source_id", String, primary_key=True),
    Column("shared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
"""Bills, statements and superbills staff have shared: only their documents are a client's to see."""
