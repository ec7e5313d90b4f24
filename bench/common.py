"""What the benchmarks share: an isolated database and topic prefix on the running stack, and
a producer of realistic SessionCompleted events."""

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Table, func, select

from shared import admin, topics
from shared.kafka import client_options
from shared.settings import Settings, get_settings

PRACTICE = "practice-bench"


@asynccontextmanager
async def isolated_settings(**overrides: Any) -> AsyncIterator[Settings]:
    """A database and topic prefix of the benchmark's own, removed afterwards."""
    run = uuid.uuid4().hex[:8]
    settings = get_settings().model_copy(
        update={"pg_database": f"tb_bench_{run}", "topic_prefix": f"b{run}.", **overrides}
    )
    await admin.ensure_database(settings)
    await admin.ensure_topics(settings)
    try:
        yield settings
    finally:
        await admin.drop_database(settings, settings.pg_database)
        client = AIOKafkaAdminClient(**client_options(settings))
        await client.start()
        try:
            await client.delete_topics([t for t in await client.list_topics() if t.startswith(settings.topic_prefix)])
        finally:
            await client.close()


def session_event(n: int, client_id: str, day: dt.date) -> dict[str, Any]:
    session = {
        "id": f"sess-{n}",
        "client_id": client_id,
        "clinician_id": "clin-morgan",
        "supervisor_clinician_id": None,
        "date_of_service": day.isoformat(),
        "starts_at": f"{day.isoformat()}T15:00:00-08:00",
        "duration_minutes": 53,
        "place_of_service": "11",
        "diagnosis_codes": ["F41.1"],
        "payer": "self_pay",
        "attendance": "attended",
        "services": [
            {"code": "90837", "description": "Psychotherapy, 60 minutes", "modifiers": [], "units": 1,
             "fee_cents": 16000, "billable": True},
        ],
    }  # fmt: skip
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "SessionCompleted",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "practice_id": PRACTICE,
        "schema_version": 1,
        "data": {"session": session},
    }


async def produce_sessions(settings: Settings, count: int, clients: int = 500) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    try:
        day = dt.date(2026, 11, 2)
        futures = []
        for n in range(count):
            client_id = f"client-{n % clients}"
            event = session_event(n, client_id, day)
            futures.append(
                await producer.send(
                    settings.topic(topics.SCHEDULING),
                    json.dumps(event).encode(),
                    key=client_id.encode(),
                    headers=[("event-type", b"SessionCompleted"), ("event-id", event["event_id"].encode())],
                )
            )
        for f in futures:
            await f
    finally:
        await producer.stop()


class _Service(Protocol):
    db: Any

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def consumer_rate(svc: _Service, table: Table, count: int) -> float:
    """A service's real consumer from a full topic until `count` of PRACTICE's rows are in
    `table`: rows/s from the first committed batch on (start-up and group join are not ingest)."""
    await svc.start()
    first: tuple[float, int] | None = None
    try:
        while True:
            async with svc.db.transaction() as s:
                seen = await s.scalar(select(func.count()).where(table.c.practice_id == PRACTICE)) or 0
            now = time.perf_counter()
            if seen and first is None:
                first = (now, seen)
            if seen >= count:
                break
            await asyncio.sleep(0.02)
    finally:
        await svc.stop()
    assert first is not None
    return (count - first[1]) / (now - first[0])
