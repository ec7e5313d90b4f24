"""bill projection keyed by (practice_id, id): an event of one practice cannot overwrite another's bill

Revision ID: 5e1b7a0c2d91
Revises: c69565e763f2
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e1b7a0c2d91"
down_revision: str | None = "c69565e763f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_bills", "bills", type_="primary")
    op.create_primary_key("pk_bills", "bills", ["practice_id", "id"])
    op.create_index("ix_bills_id", "bills", ["id"])


def downgrade() -> None:
    op.drop_index("ix_bills_id", "bills")
    op.drop_constraint("pk_bills", "bills", type_="primary")
    op.create_primary_key("pk_bills", "bills", ["id"])
