"""Idempotent consumers: an event id is claimed in the same transaction as its effect."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, String, Table, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Envelope


async def claim(session: AsyncSession, inbox: Table, events: Sequence[Envelope[Any]]) -> set[str]:
    """Record these event ids as processed; returns the ids not seen before (the ones to apply).
    One statement with two array parameters, whatever the batch size."""
    if not events:
        return set()
    stmt = text(
        f"INSERT INTO {inbox.fullname} (event_id, event_type) "
        "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[])) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    ).bindparams(bindparam("ids", type_=ARRAY(String)), bindparam("types", type_=ARRAY(String)))
    result = await session.execute(stmt, {"ids": [e.event_id for e in events], "types": [e.event_type for e in events]})
    return set(result.scalars().all())
