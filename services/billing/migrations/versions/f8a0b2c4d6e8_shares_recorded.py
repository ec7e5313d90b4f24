"""shares made before documents kept its own list of shared sources (documents c6e2d4a8f1b3): one
SharesRecorded event per client through the outbox, so clients see those documents again without a
replay of billing.events (a data migration: no schema change)

Revision ID: f8a0b2c4d6e8
Revises: e7f9a1b3c5d7
Create Date: 2026-11-30 06:20:00
"""

from collections.abc import Sequence
from itertools import groupby

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from shared import topics
from shared.events import SharedSource, SharesRecorded, new_envelope
from shared.migrations import migration_settings

revision: str = "f8a0b2c4d6e8"
down_revision: str | None = "e7f9a1b3c5d7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES_PER_EVENT = 1000  # ~80 bytes each: far below Kafka's message size limit
SHARED = sa.text(
    """
    SELECT practice_id, client_id, kind, id FROM (
        SELECT practice_id, client_id, 'bill' AS kind, id::text AS id, shared_at FROM bills
        UNION ALL SELECT practice_id, client_id, 'statement', id::text, shared_at FROM statements
        UNION ALL SELECT practice_id, client_id, 'superbill', id::text, shared_at FROM superbills
        UNION ALL SELECT practice_id, client_id, 'good_faith_estimate', id::text, shared_at FROM good_faith_estimates
    ) AS issued
    WHERE shared_at IS NOT NULL
    ORDER BY practice_id, client_id, shared_at, kind, id
    """
)
STAGE = sa.text(
    "INSERT INTO outbox (event_id, topic, key, event_type, payload) VALUES (:event_id, :topic, :key, :type, :payload)"
)


def stage_shares_recorded(connection: Connection, topic: str) -> int:
    """Stage one SharesRecorded per client (more for a client with very many) in the outbox the
    relay publishes; documents marks each source shared (idempotent). Returns how many were staged."""
    staged = 0
    rows = connection.execute(SHARED).all()
    for (practice_id, client_id), group in groupby(rows, key=lambda r: (r.practice_id, r.client_id)):
        sources = [SharedSource(kind=r.kind, id=r.id) for r in group]
        for start in range(0, len(sources), SOURCES_PER_EVENT):
            data = SharesRecorded(client_id=client_id, sources=sources[start : start + SOURCES_PER_EVENT])
            env = new_envelope(practice_id, data)
            connection.execute(STAGE, {"event_id": env.event_id, "topic": topic, "key": client_id,
                                       "type": env.event_type, "payload": env.model_dump_json().encode()})  # fmt: skip
            staged += 1
    return staged


def upgrade() -> None:
    stage_shares_recorded(op.get_bind(), migration_settings().topic(topics.BILLING))


def downgrade() -> None:
    """Nothing to undo: the events state facts, and documents' shared list only grows."""
