"""The practice is the tenant: an event may only touch records of its own practice. A record id
that already belongs to another practice means a forged or mistaken event; it is refused whole
(dead-lettered with the reason), never applied and never allowed to move the record."""

from collections.abc import Iterable

from sqlalchemy import Column, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import BadEvent


class PracticeMismatch(BadEvent):
    """An event names a record that belongs to another practice."""


async def refuse_foreign(
    session: AsyncSession,
    id_column: Column,
    practice_column: Column,
    practice_id: str,
    ids: Iterable[object],
    what: str,
) -> None:
    """Raise PracticeMismatch if any of `ids` is stored under a practice other than `practice_id`."""
    wanted = sorted(set(ids), key=str)
    if not wanted:
        return
    foreign = await session.scalar(
        select(id_column).where(id_column.in_(wanted), practice_column != practice_id).limit(1)
    )
    if foreign is not None:
        raise PracticeMismatch(f"{what} {foreign} belongs to another practice than the event's {practice_id}")
