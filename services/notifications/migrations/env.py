"""Alembic environment for the notifications schema (see shared.migrations)."""

from services.notifications.db import metadata
from shared.migrations import run_env

run_env(metadata)
