"""Alembic environment for the documents schema (see shared.migrations)."""

from services.documents.db import metadata
from shared.migrations import run_env

run_env(metadata)
