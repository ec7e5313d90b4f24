"""What the benchmarks share: an isolated database and topic prefix on the running stack, a
superuser connection to it, a private localstripe, and producers of realistic events."""

import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Table, func, select

from shared import admin, topics
from shared.kafka import client_options
from shared.settings import Settings, get_settings

PRACTICE = "practice-bench"
ROOT = Path(__file__).resolve().parents[1]


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


@asynccontextmanager
async def admin_pool(settings: Settings, size: int = 4) -> AsyncIterator[asyncpg.Pool]:
    """The benchmark database as the admin role (a superuser here): every service's schema, for
    counting and filling."""
    pool = await asyncpg.create_pool(settings.pg_admin_url.rsplit("/", 1)[0] + f"/{settings.pg_database}",
                                     min_size=1, max_size=size)  # fmt: skip
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def private_localstripe(port: int) -> AsyncIterator[str]:
    """A localstripe of the benchmark's own (state in a temporary file), so thousands of charges
    neither slow down nor fill the shared one; its base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "bench.faults.localstripe_server", "--port", str(port),
                "--state", f"{tmp}/state.pickle", "--from-scratch"]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                for _ in range(150):
                    try:
                        await http.get(f"{base}/v1/customers", auth=("sk_test_local", ""))
                        break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            await proc.wait()


def envelope(practice_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "event_type": event_type, "practice_id": practice_id,
            "occurred_at": dt.datetime.now(dt.UTC).isoformat(), "schema_version": 1, "data": data}  # fmt: skip


def client_event(practice_id: str, client_id: str) -> dict[str, Any]:
    client = {"id": client_id, "first_name": "Bench", "last_name": client_id, "date_of_birth": "1990-01-01",
              "email": f"{client_id}@example.com", "address": {"line1": "1 Main St", "city": "Portland",
              "state": "OR", "postal_code": "97209"}, "is_minor": False, "guardians": []}  # fmt: skip
    return envelope(practice_id, "ClientUpserted", {"client": client})


async def send_event(producer: AIOKafkaProducer, settings: Settings, event: dict[str, Any], key: str) -> Any:
    """Publish on scheduling.events (the upstream's topic); the delivery future."""
    return await producer.send(
        settings.topic(topics.SCHEDULING),
        json.dumps(event).encode(),
        key=key.encode(),
        headers=[("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())],
    )


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


async def produce_sessions(settings: Settings, count: int, clients: int = 500, first: int = 0) -> None:
    """`count` sessions of PRACTICE (ids sess-`first`... on), round robin over `clients`."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    try:
        day = dt.date(2026, 11, 2)
        futures = []
        for n in range(first, first + count):
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


async def consumer_rate(svc: _Service, table: Table, count: int, already: int = 0) -> float:
    """A service's real consumer from a full topic until `count` more of PRACTICE's rows than
    `already` are in `table`: rows/s from the first committed batch on (start-up and group join
    are not ingest). A table with `created_at` (its transaction's start) is timed by the rows' own
    stamps: the batches before the last one over the time from the first batch's start to the
    last's, so neither the poll's period nor its cost is in the figure."""
    count += already
    async with svc.db.transaction() as s:
        started = await s.scalar(select(func.now()))
    await svc.start()
    first: tuple[float, int] | None = None
    try:
        while True:
            async with svc.db.transaction() as s:
                seen = await s.scalar(select(func.count()).where(table.c.practice_id == PRACTICE)) or 0
            now = time.perf_counter()
            if seen > already and first is None:
                first = (now, seen)
            if seen >= count:
                break
            await asyncio.sleep(0.02 if "created_at" not in table.c else 0.2)
        if "created_at" in table.c:
            mine = (table.c.practice_id == PRACTICE) & (table.c.created_at >= started)
            async with svc.db.transaction() as s:
                earliest, latest = (await s.execute(select(func.min(table.c.created_at), func.max(table.c.created_at))
                                                    .where(mine))).one()  # fmt: skip
                before_last = await s.scalar(select(func.count()).where(mine, table.c.created_at < latest))
            if latest > earliest:
                return before_last / (latest - earliest).total_seconds()
    finally:
        await svc.stop()
    assert first is not None
    return (count - first[1]) / (now - first[0])
