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


@pytest.mark.parametrize(("pg_host", "over_socket"), [("/var/run/postgresql", True), ("127.0.0.1", False)])
async def test_a_directory_as_pg_host_reaches_postgres_through_its_unix_socket(
    test_settings: Settings, pg_host: str, over_socket: bool
) -> None:
    """./dev points PG_HOST at the local cluster's socket directory (a third less CPU per round
    trip than TCP loopback); a host name or address still means TCP."""
    settings = test_settings.model_copy(update={"pg_host": pg_host})
    db = Database(settings.database_url("billing"), "billing", pool_size=1)
    try:
        async with db.transaction() as session:
            role, address = (await session.execute(text("SELECT current_user, inet_server_addr()"))).one()
        assert role == "billing"
        assert (address is None) == over_socket
    finally:
        await db.dispose()
