"""Tries on the pay page, counted per key in a fixed window, so that a burst of parallel
requests gets no more tries than the same requests one after another.
- Guessing a code (`judged_try`): the keys' counter rows are locked for the moment the guess
  is judged (a quick lookup), and only a wrong guess is counted.
- Payment attempts (`take_try`): every attempt counts, incremented before it is made."""

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.db import pay_page_counters
from shared.db import Database

T = TypeVar("T")
c = pay_page_counters


class Locked(Exception):
    """A key is past its limit for this window."""


def _upsert(limits: Mapping[str, int], window_s: int, step: int):  # type: ignore[no-untyped-def]
    """Create or (window over) reset each counter, add `step`, lock the rows (one order: no deadlocks)."""
    stmt = insert(c).values([{"key": k, "count": step} for k in sorted(limits)])
    expired = c.c.window_started_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, window_s)
    return stmt.on_conflict_do_update(
        index_elements=[c.c.key],
        set_={
            "count": case((expired, step), else_=c.c.count + step),
            "window_started_at": case((expired, func.now()), else_=c.c.window_started_at),
        },
    ).returning(c.c.key, c.c.count)


async def take_try(db: Database, limits: Mapping[str, int], window_s: int) -> bool:
    """Count one try on every key; False when any key is now past its limit."""
    async with db.transaction() as session:
        counts = {key: count for key, count in await session.execute(_upsert(limits, window_s, 1))}
    return all(counts[k] <= limit for k, limit in limits.items())


async def judged_try(
    db: Database, limits: Mapping[str, int], window_s: int, judge: Callable[[AsyncSession], Awaitable[T | None]]
) -> T:
    """`judge`'s answer, or Locked; a None answer (a wrong guess) counts one try on every key."""
    async with db.transaction() as session:
        counts = {key: count for key, count in await session.execute(_upsert(limits, window_s, 0))}
        if any(counts[k] >= limit for k, limit in limits.items()):
            found = None
        elif (found := await judge(session)) is None:
            await session.execute(c.update().where(c.c.key.in_(sorted(limits))).values(count=c.c.count + 1))
    if found is None:  # raised after the commit, which keeps the count
        raise Locked
    return found
