"""A burst of transactions past the pool waits for a pooled connection: it neither opens more
connections than PG_POOL_SIZE nor replaces them (each new one is a Postgres fork, a SCRAM sign-in
and asyncpg's setup, which a month-end paid 10 times a second with overflow connections)."""

import asyncio

import pytest
from sqlalchemy import text

from shared.db import Database
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_bursts_past_the_pool_share_its_connections_and_keep_them(test_settings: Settings) -> None:
    db = Database(test_settings.database_url("billing"), "billing", pool_size=2)

    async def backend() -> int:
        async with db.transaction() as session:  # held 50 ms on the server, so the four overlap
            return int(await session.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)")))

    try:
        first = await asyncio.gather(*(backend() for _ in range(4)))
        second = await asyncio.gather(*(backend() for _ in range(4)))
    finally:
        await db.dispose()
    assert len(set(first)) == 2
    assert set(second) == set(first)
