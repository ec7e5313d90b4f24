"""Alembic environment for the reports schema (see shared.migrations)."""

from services.reports.db import metadata
from shared.migrations import run_env

run_env(metadata)
