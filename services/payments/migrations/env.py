"""Alembic environment for the payments schema (see shared.migrations)."""

from services.payments.db import metadata
from shared.migrations import run_env

run_env(metadata)
