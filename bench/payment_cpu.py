"""CPU time per cash `POST /v1/payments`, the payments service in process (as the integration
tests run it: HTTP through httpx's ASGI transport, the real Postgres and Kafka), next to a
ceiling measured in the same run: a bare FastAPI endpoint doing one asyncpg round trip, called
the same way. CPU time (`time.process_time`, the whole process: client, app, outbox relay,
consumers) is robust to a busy machine where wall-clock milliseconds are not.

Run: .venv/bin/python -m bench.payment_cpu [payments] [--key] [--spy out.txt]   (needs ./dev infra)
`--key` sends an Idempotency-Key with each payment; `--spy` records py-spy's collapsed stacks of
this process during the measured payments (read the shares).
"""

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import func, select

from bench.common import PRACTICE, client_event, isolated_settings
from services.payments.app import build
from services.payments.db import bills
from shared import topics
from shared.auth import issue_token
from shared.kafka import client_options
from shared.settings import Settings
from tests.integration.payments.conftest import bill_event, snapshot

PY_SPY = str(Path(sys.executable).parent / "py-spy")
WARMUP = 30


async def cpu_per_call(count: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, float, float]:
    """`count` calls one after another: (CPU ms per call, wall p50 ms, wall p99 ms)."""
    times = []
    cpu = time.process_time()
    for n in range(count):
        start = time.perf_counter()
        await call(n)
        times.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / count
    times.sort()
    return cpu_ms, statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)]


async def prepared_bills(settings: Settings, svc: Any, count: int) -> list[tuple[str, str]]:
    """`count` open bills of PRACTICE, each of its own known client, in payments' projection."""
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=5)
    await producer.start()
    made = []
    try:
        for _ in range(count):
            client_id, bill_id = f"c-{uuid.uuid4().hex[:10]}", str(uuid.uuid4())
            for topic, event in (
                (topics.SCHEDULING, client_event(PRACTICE, client_id)),
                (topics.BILLING, bill_event("BillCreated", PRACTICE, snapshot(bill_id, client_id, client_owes=16000))),
            ):
                await producer.send(settings.topic(topic), json.dumps(event).encode(), key=client_id.encode(),
                                    headers=[("event-type", event["event_type"].encode()),
                                             ("event-id", event["event_id"].encode())])  # fmt: skip
            made.append((client_id, bill_id))
        await producer.flush()
    finally:
        await producer.stop()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with svc.db.transaction() as session:
            if await session.scalar(select(func.count()).select_from(bills)) >= count:
                return made
        await asyncio.sleep(0.2)
    raise SystemExit("the bills did not reach payments' projection within 120 s (is Kafka up?)")


async def ceiling(settings: Settings, count: int) -> tuple[float, float, float]:
    """A bare FastAPI POST endpoint with one asyncpg round trip, through the same transport."""
    url = settings.database_url("payments").replace("+asyncpg", "")
    pool = await asyncpg.create_pool(url.split("?")[0], ssl="ssl=disable" not in url, min_size=1, max_size=2)
    app = FastAPI()

    @app.post("/pay")
    async def pay(body: dict[str, Any]) -> dict[str, Any]:
        return {"id": await pool.fetchval("SELECT 1"), **body}

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bare") as http:
            body = {"client_id": "c", "bill_id": "b", "payer": "client", "method": "cash", "amount_cents": 16000}

            async def call(_: int) -> None:
                (await http.post("/pay", json=body)).raise_for_status()

            await cpu_per_call(WARMUP, call)
            return await cpu_per_call(count, call)
    finally:
        await pool.close()


async def main(count: int, key: bool, spy_out: Path | None) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's line per request is not the service's cost
    async with isolated_settings(payments_bill_wait_ms=1500, autopay_interval_s=0) as settings:
        svc, app = build(settings)
        await svc.start()
        try:
            paid = await prepared_bills(settings, svc, WARMUP + 2 * count)
            token = issue_token(PRACTICE, "staff", ttl=dt.timedelta(hours=2), settings=settings)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payments") as http:

                async def call(n: int) -> None:
                    client_id, bill_id = paid[n]
                    extra = {"Idempotency-Key": uuid.uuid4().hex} if key else {}
                    r = await http.post("/v1/payments", headers=headers | extra, json={
                        "client_id": client_id, "bill_id": bill_id, "payer": "client", "method": "cash",
                        "amount_cents": 16000})  # fmt: skip
                    assert r.status_code == 201, r.text

                await cpu_per_call(WARMUP, call)
                spy = None
                if spy_out:
                    spy = await asyncio.create_subprocess_exec(
                        PY_SPY, "record", "--pid", str(os.getpid()), "--format", "raw", "--rate", "200",
                        "--nonblocking", "-o", str(spy_out), stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
                    await asyncio.sleep(1)
                whole = await cpu_per_call(count, lambda n: call(WARMUP + n))
                if spy:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
                await svc.relay.stop()  # the events stay in the outbox: what is left is the request's own work
                alone = await cpu_per_call(count, lambda n: call(WARMUP + count + n))
        finally:
            await svc.stop()
        bare = await ceiling(settings, count)
    what = f"cash POST /v1/payments x{count}{' with Idempotency-Key' if key else ''}"
    for label, (cpu, p50, p99) in (
        ("the process, outbox relay publishing", whole),
        ("the request alone, relay paused", alone),
    ):
        print(f"{what}, {label}: CPU {cpu:.2f} ms/request (wall p50 {p50:.1f}, p99 {p99:.1f} ms)")
    print(f"ceiling, bare FastAPI POST + one asyncpg round trip: CPU {bare[0]:.2f} ms/request "
          f"(wall p50 {bare[1]:.1f}, p99 {bare[2]:.1f} ms); "
          f"the request alone is {alone[0] / bare[0]:.1f}x that")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("payments", type=int, nargs="?", default=300)
    parser.add_argument("--key", action="store_true", help="send an Idempotency-Key with each payment")
    parser.add_argument("--spy", type=Path, help="py-spy collapsed stacks of the measured payments to this file")
    args = parser.parse_args()
    asyncio.run(main(args.payments, args.key, args.spy))
