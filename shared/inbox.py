"""Idempotent consumers: an event id is claimed in the same transaction as its effect."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, String, Table, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import Envelope


async def claim(session: AsyncSession, inbox: Table, events: Sequence[Envelope[Any]]) -> set[str]:
    """Record these event ids as processed; returns the ids not seen before (the ones to apply).
    One statement with two array parameters, whatever the batch size."""
    return await claim_ids(session, inbox, [(e.event_id, e.event_type) for e in events])


async def claim_ids(session: AsyncSession, inbox: Table, entries: Sequence[tuple[str, str]]) -> set[str]:
    """`claim` for (id, type) pairs that are not events (a dead letter's record coordinates)."""
    if not entries:
        return set()
    stmt = text(
        f"INSERT INTO {inbox.fullname} (event_id, event_type) "
        "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:types AS text[])) "
        "ON CONFLICT DO NOTHING RETURNING event_id"
    ).bindparams(bindparam("ids", type_=ARRAY(String)), bindparam("types", type_=ARRAY(String)))
    result = await session.execute(stmt, {"ids": [i for i, _ in entries], "types": [t for _, t in entries]})
    return set(result.scalars().all())
