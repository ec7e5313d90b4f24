"""The pool has no pre-ping (three round trips per checkout): a connection the server closed
(a Postgres restart, a killed backend) must still never reach a transaction."""

import asyncpg
import pytest
from sqlalchemy import text

from shared.db import Database
from shared.settings import Settings
from tests.conftest import eventually

pytestmark = pytest.mark.integration


async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(test_settings: Settings) -> None:
    db = Database(test_settings.database_url("billing"), "billing", pool_size=1)
    try:
        async with db.transaction() as session:
            first_pid = await session.scalar(text("SELECT pg_backend_pid()"))
            pooled = (await (await session.connection()).get_raw_connection()).driver_connection
        admin = await asyncpg.connect(test_settings.pg_admin_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await admin.close()
        await eventually(pooled.is_closed)  # the client has seen the server close the socket

        async with db.transaction() as session:  # no error: the dead connection is never used
            second_pid = await session.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
    finally:
        await db.dispose()
