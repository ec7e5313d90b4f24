"""Idempotent consumers: an event id is claimed in the same transaction as its effect."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Envelope


async def claim(session: AsyncSession, inbox: Table, events: Sequence[Envelope[Any]]) -> set[str]:
    """Record these event ids as processed; returns the ids not seen before (the ones to apply)."""
    if not events:
        return set()
    rows = [{"event_id": e.event_id, "event_type": e.event_type} for e in events]
    stmt = insert(inbox).values(rows).on_conflict_do_nothing().returning(inbox.c.event_id)
    return set((await session.scalars(stmt)).all())
