"""`python -m services.reports rebuild`: the read model from nothing. Drops every table of the
reports schema, migrates it again, sets the reports consumer groups back to the start of
their topics, replays them up to where they ended when the rebuild began, and stops. Stop the
reports service first (a running replica would keep its group busy); start it again after.
The topics keep their events for this (`shared.admin setup` sets their retention)."""

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import text

from services.reports.app import create_service
from shared.consumer import consumer_group
from shared.db import Database
from shared.kafka import client_options
from shared.migrations import upgrade
from shared.settings import Settings

log = logging.getLogger(__name__)


async def reset_schema(settings: Settings) -> None:
    db = Database(settings.database_url("reports"), "reports")
    try:
        async with db.transaction() as session:
            tables = (
                await session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'reports'"))
            ).scalars()
            for table in tables:
                await session.execute(text(f'DROP TABLE IF EXISTS reports."{table}" CASCADE'))
    finally:
        await db.dispose()
    await asyncio.to_thread(upgrade, "reports", settings.database_url("reports"))


async def ends(settings: Settings, topic: str, *, rewind: bool = False) -> dict[TopicPartition, int]:
    """Each partition's end offset; with `rewind`, first commit the reports group's offsets
    back to the start of the topic (the group must have no running member)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([settings.topic(topic)])
    finally:
        await admin.close()
    tps = [TopicPartition(settings.topic(topic), p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=consumer_group(settings, "reports", topic),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        if rewind:
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in starts.items()})
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def caught_up(settings: Settings, targets: dict[str, dict[TopicPartition, int]]) -> bool:
    """Whether the reports consumers have committed up to `targets` on every partition."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        for topic, partitions in targets.items():
            committed = await admin.list_consumer_group_offsets(consumer_group(settings, "reports", topic))
            for tp, end in partitions.items():
                meta = committed.get(tp)
                if end > 0 and (meta is None or meta.offset < end):
                    return False
        return True
    finally:
        await admin.close()


async def rebuild(settings: Settings) -> int:
    started = time.monotonic()
    svc = create_service(settings)
    svc.run_migrations = False
    await reset_schema(settings)
    targets = {c.topic: await ends(settings, c.topic, rewind=True) for c in svc.consumers}
    total = sum(sum(p.values()) for p in targets.values())
    print(f"reports rebuild: schema reset; replaying {total} events from {sorted(targets)}", flush=True)
    await svc.start()
    try:
        while True:  # the consumers commit as they go: done once every partition reached its end
            if await caught_up(settings, targets):
                break
            await asyncio.sleep(0.5)
    finally:
        await svc.stop()
    dead = sum(len(c.failures) for c in svc.consumers)
    print(f"reports rebuild: done in {time.monotonic() - started:.1f} s ({dead} events dead-lettered)", flush=True)
    return 0
