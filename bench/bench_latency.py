"""Latency and memory under load, the four services as processes on the real stack.

While sessions arrive at RATE per second, it measures (issue 15's targets):
- publish SessionCompleted → visible in GET /v1/unbilled-sessions   p99 ≤ 150 ms
- POST /v1/payments (cash, full) → GET /v1/bills/{id} says paid      p99 ≤ 250 ms
  of which the POST alone                                            p50 ≤ 40 ms, p99 ≤ 120 ms
- POST /v1/bills/{id}/share → email with the PDF accepted by SMTP     p99 ≤ 1 s
- resident memory of each service process (render processes apart)  ≤ 150 MB
and, in the same run, the ceiling: a bare Kafka publish → consume round trip. A probe watches
billing's tables for the change and then asks the API once (its answer stops the clock), so the
benchmark's own polling does not load billing (`Run`).

Run: .venv/bin/python -m bench.bench_latency [rate] [seconds]   (needs ./dev infra; 100 s for a p99 of
100 payments, one a second)
"""

import asyncio
import datetime as dt
import itertools
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import PRACTICE, admin_pool, isolated_settings, session_event
from bench.cpu import CpuMeter
from bench.cpu import report as cpu_report
from shared import topics
from shared.auth import issue_token
from shared.kafka import client_options
from shared.settings import Settings
from tests.processes import Stack, running_services, smtp_server

TARGETS_MS = {
    "session → unbilled": 150,
    "payment → bill paid": 250,
    "share → email with PDF": 1000,
}
"""p99 targets of the paths."""
PARTS = {"POST /v1/payments answered": (40, 120)}
"""Parts of the paths above: p50 and p99 targets."""
MEMORY_CEILING_MB = 150
PAYMENT_INTERVAL_S = 1.0
"""A payment probe starts every second (each paid bill is a new PDF version to render: the
probes must not become a load of their own). `bench_latency 200 100` makes the 100 of them a p99
needs."""
SHARE_PROBES = 12
POLL_S = 0.01


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def bare_kafka_round_trip(settings: Settings, producer: AIOKafkaProducer, samples: int = 200) -> list[float]:
    """Ceiling: publish → a plain consumer has it, on the same broker, same run (ms)."""
    topic = settings.topic(topics.dlq(topics.PORTAL))
    consumer = AIOKafkaConsumer(topic, **client_options(settings), auto_offset_reset="latest")
    await consumer.start()
    await consumer.seek_to_end()
    latencies = []
    try:
        for _ in range(samples):
            start = time.perf_counter()
            await producer.send_and_wait(topic, b"ping", key=b"k")
            while not (await consumer.getmany(timeout_ms=100)):
                pass
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        await consumer.stop()
    return latencies


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30) -> float:
    """Seconds until `check()` is truthy, polling every POLL_S."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if await check():
            return time.perf_counter() - start
        await asyncio.sleep(POLL_S)
    raise TimeoutError("condition not met")


async def rendered(db: asyncpg.Pool, count: int) -> bool:
    return await db.fetchval("SELECT count(*) FROM documents.documents WHERE status = 'rendered'") >= count


class Message(NamedTuple):
    value: bytes
    key: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Trace:
    """One probe's clock readings (epoch seconds), for where its time went."""

    key: str
    """What the path's `STAGES_SQL` looks its rows up by."""
    started: float
    row_seen: float
    answered: float


STAGES_SQL = {
    "payment → bill paid": (
        ("payments' transaction began", "relay's pass began", "billing's consumer transaction began"),
        """SELECT extract(epoch FROM o.created_at), extract(epoch FROM o.sent_at), extract(epoch FROM i.processed_at)
           FROM payments.outbox o LEFT JOIN billing.inbox i USING (event_id)
           WHERE o.key = $1 AND o.event_type = 'PaymentRecorded'""",  # by client
    ),
    "session → unbilled": (
        ("billing's consumer transaction began",),
        "SELECT extract(epoch FROM created_at) FROM billing.sessions WHERE id = $1",  # by session
    ),
}
"""Per path: the database's clock readings between a probe's start and its row being seen
(transaction start times: `now()` in the outbox, the relay's `sent_at`, the inbox and a new session's
`created_at`)."""


async def where_time_went(db: asyncpg.Pool, path: str, traces: list[Trace]) -> str:
    """p50 of each stage of `path` in ms, from the previous reading: where its latency is spent."""
    names, sql = STAGES_SQL[path]
    stages: dict[str, list[float]] = {}
    for t in traces:
        row = await db.fetchrow(sql, t.key)
        if row is None or any(v is None for v in row):
            continue
        marks = [("sent", t.started), *zip(names, (float(v) for v in row), strict=True),
                 ("its row seen by the probe", t.row_seen), ("the API's answer shows it", t.answered)]  # fmt: skip
        for (_, before), (name, at) in itertools.pairwise(marks):
            stages.setdefault(name, []).append((at - before) * 1000)
    return ", ".join(f"→ {name} +{statistics.median(v):.0f}" for name, v in stages.items())


class Run:
    """The probes. With `db` (a pool on the run's database) a probe waits for the change
    in billing's tables, then asks the API once and stops the clock when that answer shows it:
    polling the API itself every 10 ms put ~200 requests/s of the benchmark's own on billing."""

    def __init__(
        self, stack: Stack, producer: AIOKafkaProducer, http: httpx.AsyncClient, db: asyncpg.Pool | None = None
    ) -> None:
        self.stack = stack
        self.producer = producer
        self.http = http
        self.db = db
        self.latencies: dict[str, list[float]] = {k: [] for k in (*TARGETS_MS, *PARTS)}
        self.traces: dict[str, list[Trace]] = {"session → unbilled": [], "payment → bill paid": []}
        self.rss: dict[str, float] = {}
        self.n = 0

    def message(self, event_type: str, key: str, data: dict[str, Any]) -> Message:
        event = {"event_id": str(uuid.uuid4()), "event_type": event_type, "practice_id": PRACTICE,
                 "occurred_at": dt.datetime.now(dt.UTC).isoformat(), "schema_version": 1, "data": data}  # fmt: skip
        headers = [("event-type", event_type.encode()), ("event-id", event["event_id"].encode())]  # as upstream does
        return Message(json.dumps(event).encode(), key.encode(), headers)

    async def send(self, message: Message) -> None:
        topic = self.stack.settings.topic(topics.SCHEDULING)
        await self.producer.send(topic, message.value, key=message.key, headers=message.headers)

    async def publish(self, event_type: str, key: str, data: dict[str, Any]) -> None:
        await self.send(self.message(event_type, key, data))

    async def client(self, client_id: str) -> None:
        client = {"id": client_id, "first_name": "Bench", "last_name": client_id, "date_of_birth": "1990-01-01",
                  "email": f"{client_id}@example.com", "address": {"line1": "1 Main St", "city": "Portland",
                  "state": "OR", "postal_code": "97209"}, "is_minor": False, "guardians": []}  # fmt: skip
        await self.publish("ClientUpserted", client_id, {"client": client})

    def session_message(self, client_id: str) -> tuple[Message, str]:
        self.n += 1
        event = session_event(self.n, client_id, dt.date(2026, 11, 2))
        session = event["data"]["session"] | {"id": f"sess-{uuid.uuid4().hex[:10]}"}
        return self.message("SessionCompleted", client_id, {"session": session}), session["id"]

    async def session(self, client_id: str) -> str:
        message, session_id = self.session_message(client_id)
        await self.send(message)
        return session_id

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.url(service)}{path}"

    async def unbilled(self, client_id: str) -> list[dict[str, Any]]:
        r = await self.http.get(self.url("billing", "/v1/unbilled-sessions"), params={"client_id": client_id})
        return r.json()["items"]

    async def probe_unbilled(self) -> None:
        client_id = f"probe-{uuid.uuid4().hex[:8]}"
        await self.client(client_id)
        await self.producer.flush()
        start, started = time.perf_counter(), time.time()
        session_id = await self.session(client_id)
        await self.producer.flush()

        async def visible() -> bool:
            return bool(await self.unbilled(client_id))

        projected = "SELECT 1 FROM billing.sessions WHERE practice_id = $1 AND id = $2 AND data IS NOT NULL"
        seen = await self.observe(visible, projected, session_id)
        self.latencies["session → unbilled"].append((time.perf_counter() - start) * 1000)
        self.traces["session → unbilled"].append(Trace(session_id, started, seen, time.time()))

    async def observe(self, api_shows: Callable[[], Awaitable[bool]], sql: str, arg: Any) -> float:
        """Until `api_shows()`; with a database, first until `sql` (PRACTICE, arg) finds a row.
        Returns when the row was seen (epoch seconds)."""
        if self.db is not None:
            db = self.db
            await until(lambda: db.fetchval(sql, PRACTICE, arg))
        seen = time.time()
        await until(api_shows)
        return seen

    async def bill(self) -> dict[str, Any]:
        client_id = f"billed-{uuid.uuid4().hex[:8]}"
        await self.client(client_id)
        session_id = await self.session(client_id)
        await self.producer.flush()
        await until(lambda: self.unbilled(client_id))
        r = await self.http.post(self.url("billing", "/v1/bills"), json={
            "client_id": client_id, "session_ids": [session_id], "responsibility": "client"})  # fmt: skip
        r.raise_for_status()
        return r.json()

    async def probe_payment(self, bill: dict[str, Any]) -> None:
        start, started = time.perf_counter(), time.time()
        r = await self.http.post(self.url("payments", "/v1/payments"), json={
            "client_id": bill["client_id"], "bill_id": bill["id"], "payer": "client", "method": "cash",
            "amount_cents": bill["balance_cents"]})  # fmt: skip
        r.raise_for_status()
        self.latencies["POST /v1/payments answered"].append((time.perf_counter() - start) * 1000)

        async def paid() -> bool:
            return (await self.http.get(self.url("billing", f"/v1/bills/{bill['id']}"))).json()["status"] == "paid"

        paid_row = "SELECT 1 FROM billing.bills WHERE practice_id = $1 AND id = $2 AND status = 'paid'"
        seen = await self.observe(paid, paid_row, uuid.UUID(bill["id"]))
        self.latencies["payment → bill paid"].append((time.perf_counter() - start) * 1000)
        self.traces["payment → bill paid"].append(Trace(bill["client_id"], started, seen, time.time()))

    async def probe_share(self, bill: dict[str, Any]) -> None:
        address = f"{bill['client_id']}@example.com"
        started = time.time()
        (await self.http.post(self.url("billing", f"/v1/bills/{bill['id']}/share"), json={})).raise_for_status()

        async def emailed() -> bool:
            return any(
                part.get_content_type() == "application/pdf" for m in self.stack.inbox.to(address) for part in m.walk()
            )

        await until(emailed)
        [message] = self.stack.inbox.to(address)
        self.latencies["share → email with PDF"].append((float(message["X-Accepted-At"]) - started) * 1000)

    def sample_memory(self) -> None:
        for name, proc in self.stack.processes.items():
            self.rss[name] = max(self.rss.get(name, 0.0), rss_mb(proc.pid))


async def load(run: Run, rate: int, seconds: float, clients: list[str]) -> int:
    """Sessions at `rate`/s for `seconds`, paced, round-robin over `clients`. The events are
    made beforehand: what upstream spends making them is not this machine's to pay."""
    messages = [run.session_message(clients[i % len(clients)])[0] for i in range(int(rate * seconds))]
    start = time.perf_counter()
    sent = sampled = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        due = min(int(elapsed * rate), len(messages))
        while sent < due:
            await run.send(messages[sent])
            sent += 1
        if elapsed * 10 >= sampled:  # memory ten times a second, not at every 5 ms step
            run.sample_memory()
            sampled += 1
        await asyncio.sleep(0.005)
    return sent


async def probes(run: Run, seconds: float, paying: list[dict[str, Any]], sharing: list[dict[str, Any]]) -> None:
    """Three probe loops side by side. Payments start on a fixed clock, one bill each, whether or
    not the one before has finished: a slow answer cannot hold back the next probe (coordinated
    omission). The session and share probes have one request in flight at a time."""
    start = time.perf_counter()
    deadline = start + seconds

    async def every(probe: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < deadline:
            await probe()
            await asyncio.sleep(0.1)

    async def each(probe: Callable[[dict[str, Any]], Awaitable[None]], items: list[dict[str, Any]]) -> None:
        while items and time.perf_counter() < deadline:
            await probe(items.pop())
            await asyncio.sleep(0.1)

    async def paced(probe: Callable[[dict[str, Any]], Awaitable[None]], items: list[dict[str, Any]]) -> None:
        async with asyncio.TaskGroup() as group:
            for n, item in enumerate(items):
                await asyncio.sleep(max(0.0, start + n * PAYMENT_INTERVAL_S - time.perf_counter()))
                group.create_task(probe(item))

    await asyncio.gather(every(run.probe_unbilled), paced(run.probe_payment, paying), each(run.probe_share, sharing))


async def main(rate: int, seconds: float) -> int:
    headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', ttl=dt.timedelta(hours=2))}"}
    async with isolated_settings() as base:
        with smtp_server() as (inbox, port):
            async with running_services(base, inbox, port) as stack:
                producer = AIOKafkaProducer(**client_options(base), linger_ms=1)
                await producer.start()
                try:
                    ceiling = await bare_kafka_round_trip(stack.settings, producer)
                    async with httpx.AsyncClient(timeout=30, headers=headers) as http, admin_pool(base, 1) as db:
                        run = Run(stack, producer, http, db)
                        clients = [f"client-{i}" for i in range(200)]
                        for c in clients:
                            await run.client(c)
                        paying = [await run.bill() for _ in range(int(seconds / PAYMENT_INTERVAL_S))]
                        sharing = [await run.bill() for _ in range(SHARE_PROBES)]
                        await until(  # their PDFs render before the clock starts
                            lambda: rendered(db, len(paying) + len(sharing)), timeout=120
                        )
                        meter = CpuMeter({name: proc.pid for name, proc in stack.processes.items()})
                        meter.start()
                        work = load(run, rate, seconds, clients), probes(run, seconds, paying, sharing)
                        sent, _ = await asyncio.gather(*work)
                        cpu = meter.stop()
                        breakdown = {path: await where_time_went(db, path, t) for path, t in run.traces.items()}
                finally:
                    await producer.stop()
    print(f"latency under load: {sent} sessions in {seconds:.0f} s ({sent / seconds:.0f}/s)")
    ok = True
    for name, (p50_target, p99_target) in PARTS.items():
        values = run.latencies.pop(name)
        met = p(values, 50) <= p50_target and p(values, 99) <= p99_target
        ok &= met
        print(f"  {name:<24} p50 {p(values, 50):7.1f} ms  p99 {p(values, 99):7.1f} ms  (part of the next line; "
              f"target p50 ≤ {p50_target} ms, p99 ≤ {p99_target} ms) {'OK' if met else 'ABOVE TARGET'}")  # fmt: skip
    for name, values in run.latencies.items():
        p99 = p(values, 99)
        ok &= p99 <= TARGETS_MS[name]
        print(f"  {name:<24} p50 {p(values, 50):7.1f} ms  p99 {p99:7.1f} ms  (n={len(values)}, target p99 ≤ "
              f"{TARGETS_MS[name]} ms) {'OK' if p99 <= TARGETS_MS[name] else 'ABOVE TARGET'}")  # fmt: skip
    print(f"  ceiling, bare Kafka publish → consume: p50 {p(ceiling, 50):.1f} ms  p99 {p(ceiling, 99):.1f} ms")
    print(cpu_report(*cpu))
    for path, stages in breakdown.items():
        print(f"  {path}, p50 of each step in ms: {stages}")
    for name, mb in sorted(run.rss.items()):
        ok &= mb <= MEMORY_CEILING_MB
        print(f"  {name:<14} max RSS {mb:6.1f} MB (target ≤ {MEMORY_CEILING_MB} MB) "
              f"{'OK' if mb <= MEMORY_CEILING_MB else 'ABOVE'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(asyncio.run(main(int(args[0]) if args else 200, float(args[1]) if len(args) > 1 else 20)))
