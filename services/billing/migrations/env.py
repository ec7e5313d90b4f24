"""Alembic environment for the billing schema (see shared.migrations)."""

from services.billing.db import metadata
from shared.migrations import run_env

run_env(metadata)
