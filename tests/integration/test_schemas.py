"""One Postgres role per service, with rights on its own schema only."""

import asyncpg
import pytest

from shared.admin import SERVICES
from shared.settings import Settings

pytestmark = pytest.mark.integration


def dsn(settings: Settings, service: str) -> str:
    """The service's own role, as a plain asyncpg DSN (SQLAlchemy's query options dropped)."""
    return settings.database_url(service).replace("postgresql+asyncpg://", "postgresql://").split("?")[0]


async def test_a_service_role_cannot_touch_another_services_schema(test_settings: Settings) -> None:
    payments = await asyncpg.connect(dsn(test_settings, "payments"))
    billing = await asyncpg.connect(dsn(test_settings, "billing"))
    try:
        await payments.execute("CREATE TABLE IF NOT EXISTS payments.role_probe (secret text)")
        await payments.execute("INSERT INTO payments.role_probe VALUES ('card data')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.fetch("SELECT * FROM payments.role_probe")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.execute("CREATE TABLE payments.intruder (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.execute("CREATE TABLE public.intruder (x int)")
        await billing.execute("CREATE TABLE IF NOT EXISTS billing.own_probe (x int)")
    finally:
        await payments.execute("DROP TABLE IF EXISTS payments.role_probe")
        await billing.execute("DROP TABLE IF EXISTS billing.own_probe")
        await payments.close()
        await billing.close()


async def test_each_role_lands_in_its_own_schema(test_settings: Settings) -> None:
    for service in SERVICES:
        conn = await asyncpg.connect(dsn(test_settings, service))
        try:
            assert await conn.fetchval("SHOW search_path") == service
        finally:
            await conn.close()
