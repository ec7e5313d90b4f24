"""charge parameters kept on the payment

Revision ID: d4e1f0a7b2c3
Revises: 5e1b7a0c2d91
Create Date: 2026-11-30 03:10:00

A retried Stripe call (the reconciler after a timeout) must send exactly the parameters of
the first call under the same idempotency key: the currency and whether the customer was
present are decided once and stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e1f0a7b2c3"
down_revision: str | None = "5e1b7a0c2d91"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("currency", sa.String(), nullable=True))
    op.add_column("payments", sa.Column("off_session", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("payments", "off_session")
    op.drop_column("payments", "currency")
