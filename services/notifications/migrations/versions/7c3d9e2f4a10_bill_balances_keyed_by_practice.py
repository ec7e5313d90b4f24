"""bill balances keyed by (practice_id, bill_id): an event of one practice cannot overwrite another's;
rendered documents lose the url taken from events (PDF URLs are built from the document id)

Revision ID: 7c3d9e2f4a10
Revises: 2b06e471212c
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3d9e2f4a10"
down_revision: str | None = "2b06e471212c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("pk_bill_balances", "bill_balances", type_="primary")
    op.create_primary_key("pk_bill_balances", "bill_balances", ["practice_id", "bill_id"])
    op.create_index("ix_bill_balances_bill_id", "bill_balances", ["bill_id"])
    op.drop_column("rendered_documents", "url")


def downgrade() -> None:
    op.add_column("rendered_documents", sa.Column("url", sa.Text(), nullable=False, server_default=""))
    op.drop_index("ix_bill_balances_bill_id", "bill_balances")
    op.drop_constraint("pk_bill_balances", "bill_balances", type_="primary")
    op.create_primary_key("pk_bill_balances", "bill_balances", ["bill_id"])
