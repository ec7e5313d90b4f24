"""Operator commands: create the database, one role and schema per service, the topics;
wait for a service to be ready (any of SERVICES, or `web`, which has no database of its own);
print the Kafka users and ACLs.
`python -m shared.admin setup|wait-ready NAME SECONDS|kafka-acls [USER...]`
(kafka-acls: each USER's password from the environment, `KAFKA_PASSWORD_<USER>`)."""

import asyncio
import os
import sys
import time

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from shared import kafka_acls, topics
from shared.kafka import client_options
from shared.settings import Settings, get_settings

SERVICES = ("billing", "payments", "documents", "notifications", "reports")


async def ensure_database(settings: Settings, database: str | None = None) -> None:
    """Database, then per service: a login role that owns its schema and nothing else."""
    database = database or settings.pg_database
    admin = await asyncpg.connect(settings.pg_admin_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await admin.execute(f'CREATE DATABASE "{database}"')
        for service in SERVICES:
            if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
                await admin.execute(f"CREATE ROLE {service} LOGIN PASSWORD '{service}'")
    finally:
        await admin.close()
    db_url = settings.pg_admin_url.rsplit("/", 1)[0] + f"/{database}"
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in SERVICES:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {service} AUTHORIZATION {service}")
            await conn.execute(f"REVOKE ALL ON SCHEMA {service} FROM PUBLIC")
            await conn.execute(f'ALTER ROLE {service} IN DATABASE "{database}" SET search_path = {service}')
    finally:
        await conn.close()


async def drop_database(settings: Settings, database: str) -> None:
    admin = await asyncpg.connect(settings.pg_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def ensure_topics(settings: Settings) -> None:
    """Every contract topic and its DLQ, with enough partitions to scale consumers out."""
    client = AIOKafkaAdminClient(**client_options(settings))
    await client.start()
    try:
        existing = set(await client.list_topics())
        wanted = [settings.topic(t) for t in topics.ALL] + [settings.topic(topics.dlq(t)) for t in topics.ALL]
        new = [
            NewTopic(name=t, num_partitions=settings.topic_partitions, replication_factor=1)
            for t in wanted
            if t not in existing
        ]
        if new:
            try:
                await client.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        # The topics that feed the reports read model keep their events, so it can be rebuilt.
        retention = {"retention.ms": str(settings.topic_retention_ms), "retention.bytes": "-1"}
        kept = [ConfigResource(ConfigResourceType.TOPIC, settings.topic(t), retention) for t in topics.RETAINED]
        await client.alter_configs(kept)
    finally:
        await client.close()


async def wait_ready(service: str, seconds: float, settings: Settings) -> bool:
    url = f"http://127.0.0.1:{settings.http_port(service)}/readyz"
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return False


async def _main(argv: list[str]) -> int:
    settings = get_settings()
    if argv[:1] == ["setup"]:
        await ensure_database(settings)
        await ensure_topics(settings)
        return 0
    if argv[:1] == ["wait-ready"] and len(argv) == 3:
        ok = await wait_ready(argv[1], float(argv[2]), settings)
        if not ok:
            print(f"{argv[1]} not ready after {argv[2]} s", file=sys.stderr)
        return 0 if ok else 1
    if argv[:1] == ["kafka-acls"]:
        passwords = {user: os.environ[f"KAFKA_PASSWORD_{user.upper()}"] for user in argv[1:]}
        sys.stdout.write(kafka_acls.spec(settings, passwords))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
