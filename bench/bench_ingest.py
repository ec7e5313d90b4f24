"""Session ingest: billing's consumer (projection and outbox, one transaction per fetched batch;
session events are not claimed in the inbox: README "How money stays right") against a bare
Kafka → COPY pipeline on the same machine and the same events.

Target (ARCHITECTURE.md): billing ingests at ≥ 0.5 × the bare pipeline's rate.
Run: .venv/bin/python -m bench.bench_ingest [events]   (needs ./dev infra)
"""

import asyncio
import datetime as dt
import json
import sys
import time

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.common import consumer_rate, isolated_settings, produce_sessions
from shared import topics
from shared.kafka import client_options
from shared.settings import Settings

TARGET_RATIO = 0.5


async def bare_kafka_to_copy(settings: Settings, count: int) -> float:
    """The ceiling: consume in batches, decode, COPY the rows, commit offsets. Events/s from the
    first fetched batch to the last row (both pipelines are timed the same way)."""
    url = settings.pg_admin_url.rsplit("/", 1)[0] + f"/{settings.pg_database}"
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE public.bare_sessions (event_id text, practice_id text, session_id text, "
        "client_id text, date_of_service date, payload jsonb)"
    )
    consumer = AIOKafkaConsumer(
        settings.topic(topics.SCHEDULING),
        **client_options(settings),
        group_id="bench-bare",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    done = 0
    start = None
    try:
        while done < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            rows = []
            for records in batch.values():
                for r in records:
                    event = json.loads(r.value)
                    s = event["data"]["session"]
                    rows.append(
                        (event["event_id"], event["practice_id"], s["id"], s["client_id"],
                         dt.date.fromisoformat(s["date_of_service"]), json.dumps(s))
                    )  # fmt: skip
            if rows and start is None:
                start = time.perf_counter()
            if rows:
                await conn.copy_records_to_table("bare_sessions", records=rows, schema_name="public")
                await consumer.commit()
                done += len(rows)
        elapsed = time.perf_counter() - start
    finally:
        await consumer.stop()
        await conn.close()
    return count / elapsed


async def billing_ingest(settings: Settings, count: int) -> float:
    """Billing's real consumer from a full topic until every session is in its projection."""
    from services.billing.app import create_service
    from services.billing.db import sessions

    return await consumer_rate(create_service(settings), sessions, count)


async def main(count: int) -> int:
    async with isolated_settings() as settings:
        await produce_sessions(settings, count)
        ceiling = await bare_kafka_to_copy(settings, count)
        ours = await billing_ingest(settings, count)
    ratio = ours / ceiling
    print(f"session ingest, {count} events")
    print(f"  billing's consumer:         {ours:,.0f} events/s")
    print(f"  ceiling, bare Kafka → COPY: {ceiling:,.0f} events/s")
    print(f"  ratio {ratio:.2f} (target ≥ {TARGET_RATIO}) {'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)))
