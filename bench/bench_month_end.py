"""Month-end: the 1st of the month for many practices, the services as processes on the real
stack (Kafka, Postgres; an SMTP server and a localstripe of the benchmark's own).

The load (`--scale 1`): 200 practices, 10,000 clients, 40,000 November sessions, a fifth of the
clients on autopay. The 1st of December, as the practices' schedules would run it:
1. bills    billing's monthly run (`POST /v1/automation/run` bill_creation, 00:05 local) per practice
            ceiling: the same rows written by bare asyncpg into copies of the same tables (bench.ceilings)
2. PDFs     documents renders every bill (from BillCreated)
            ceiling: bare WeasyPrint over the same bills' HTML, as many processes as render workers
3. autopay  payments' night (`POST /v1/autopay/run`, 00:45 local) charges every autopay client's bill
            ceiling: bare PaymentIntent create+confirm calls to the same localstripe, same concurrency
4. emails   8 h later the bills are shared (`auto_share` run): every email with its PDF accepted by SMTP
            ceiling: the same messages sent again by bare aiosmtplib, 20 at a time like the sender
The month-end runs work the practices one at a time per replica (`--runs-per-replica`), as each
replica's own automation loop does, spread over the replicas (a load balancer); the setup works
CONCURRENCY at a time. All along,
sessions arrive for another practice at a modest rate and session → unbilled is probed (as in
bench_latency), beside the same probe in a quiet moment before month-end.
Then the counts: one bill per client, every session billed once, one PDF per bill version, one
charge per autopay client (in our tables and in Stripe), one email with the PDF per client.

Run: .venv/bin/python -m bench.bench_month_end [--scale 0.1] [--replicas 1 2]   (needs ./dev infra)
"""

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import stripe
from aiokafka import AIOKafkaProducer

from bench import ceilings
from bench.bench_latency import Run, rss_mb
from bench.bench_pdf import bare_weasyprint
from bench.common import (
    PRACTICE,
    admin_pool,
    client_event,
    isolated_settings,
    private_localstripe,
    send_event,
    session_event,
)
from bench.cpu import CpuMeter
from bench.cpu import report as cpu_report
from bench.month_end_report import Stage, checks, compare, progress, report
from shared.auth import issue_token
from shared.events import BillSnapshot
from shared.kafka import client_options
from tests import processes
from tests.processes import Stack, free_port, running_services, smtp_server

FULL = {"practices": 200, "clients": 10_000, "sessions": 40_000}
FIRST = dt.datetime(2026, 12, 1, 5, 5, tzinfo=dt.UTC)  # 00:05 on the 1st in New York: November's bills
AUTOPAY_AT = FIRST + dt.timedelta(minutes=40)  # 00:45 local, after the practices' 00:30 autopay time
SHARE_AT = FIRST + dt.timedelta(hours=8, minutes=5)  # the bills' auto-share is due 8 h after creation
CONCURRENCY = 4
SERVICES = ("billing", "payments", "documents", "notifications")
SETTINGS = {"name": "Month End Counseling", "tax_id": "93-1234567", "npi": "1234567893",
            "timezone": "America/New_York", "currency": "USD", "default_due_days": 30,
            "address": {"line1": "1 SE Morrison St", "city": "Portland", "state": "OR", "postal_code": "97214"},
            "bill_creation": "monthly", "auto_share_bills": True, "auto_share_delay_hours": 8}  # fmt: skip


@dataclass
class Load:
    run: str
    practices: list[str]
    clients: dict[str, list[str]]  # practice → its clients
    sessions: int
    autopay: list[tuple[str, str]]

    @classmethod
    def of(cls, scale: float, autopay_share: float) -> "Load":
        run = uuid.uuid4().hex[:6]
        n_practices, n_clients = max(1, round(FULL["practices"] * scale)), max(1, round(FULL["clients"] * scale))
        practices = [f"me{run}-p{i:03d}" for i in range(n_practices)]
        clients = {p: [f"{p}-c{j:03d}" for j in range(n_clients // n_practices)] for p in practices}
        every = round(1 / autopay_share) if autopay_share else 0
        autopay = [(p, c) for p in practices for j, c in enumerate(clients[p]) if every and j % every == 0]
        per_client = max(1, FULL["sessions"] // FULL["clients"])
        return cls(run, practices, clients, per_client * sum(map(len, clients.values())), autopay)

    @property
    def like(self) -> str:
        return f"me{self.run}-%"

    @property
    def n_clients(self) -> int:
        return sum(map(len, self.clients.values()))


@dataclass
class Ctx:
    stack: Stack
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    load: Load
    replicas: int
    runs_at_once: int  # month-end runs in flight over all replicas
    stripe: stripe.StripeClient
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def cpu_meter(self) -> CpuMeter:
        """A started meter of where the CPU goes, per service process."""
        meter = CpuMeter({name: proc.pid for name, proc in self.stack.processes.items()})
        meter.start()
        return meter

    def staff(self, practice: str) -> dict[str, str]:
        if practice not in self.tokens:
            token = issue_token(practice, "staff", ttl=dt.timedelta(hours=3))
            self.tokens[practice] = {"Authorization": f"Bearer {token}"}
        return self.tokens[practice]

    async def call(self, method: str, service: str, replica: int, path: str, practice: str, body: Any) -> Any:
        r = await self.http.request(
            method, f"{self.stack.url(service, replica)}{path}", json=body, headers=self.staff(practice)
        )
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None

    async def each(
        self, items: list[Any], job: Callable[[Any, int], Awaitable[Any]], at_once: int = CONCURRENCY
    ) -> list[Any]:
        """`job(item, replica)` for every item, `at_once` at a time, round robin over the replicas."""
        gate = asyncio.Semaphore(at_once)

        async def one(n: int, item: Any) -> Any:
            async with gate:
                return await job(item, n % self.replicas)

        return await asyncio.gather(*(one(n, item) for n, item in enumerate(items)))

    async def count(self, sql: str) -> Any:
        return await self.pool.fetchval(sql, self.load.like)

    async def until(self, what: str, sql: str, expected: int, timeout: float = 3600) -> None:
        deadline = time.monotonic() + timeout
        while (seen := await self.count(sql)) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: {seen} of {expected}")
            await asyncio.sleep(0.5)


async def setup(ctx: Ctx, producer: AIOKafkaProducer) -> None:
    load, settings = ctx.load, ctx.stack.settings
    await ctx.each(load.practices, lambda p, r: ctx.call("PUT", "billing", r, "/v1/settings", p, SETTINGS))
    futures = [
        await send_event(producer, settings, client_event(p, c), c) for p, cs in load.clients.items() for c in cs
    ]
    per_client = load.sessions // load.n_clients
    for practice, cs in load.clients.items():
        for c in cs:
            for k in range(per_client):
                ev = session_event(k, c, dt.date(2026, 11, 2 + 7 * k % 28)) | {"practice_id": practice}
                ev["data"]["session"]["id"] = f"{c}-s{k}"
                futures.append(await send_event(producer, settings, ev, c))
    await asyncio.gather(*futures)
    await ctx.until(
        "sessions in billing",
        "SELECT count(*) FROM billing.sessions s JOIN billing.clients c "
        "ON c.practice_id = s.practice_id AND c.id = s.client_id WHERE s.practice_id LIKE $1",
        load.sessions,
    )
    await ctx.until(
        "clients in payments", "SELECT count(*) FROM payments.clients WHERE practice_id LIKE $1", load.n_clients
    )

    async def card(item: tuple[str, str], replica: int) -> None:
        practice, client = item
        pm = await ctx.stripe.v1.payment_methods.create_async(
            {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
        )
        body = {
            "stripe_payment_method_id": pm.id,
            "make_default": True,
            "authorization": {"signed_by": client, "signed_at": "2026-11-01T12:00:00Z", "method": "portal"},
        }
        stored = await ctx.call("POST", "payments", replica, f"/v1/clients/{client}/cards", practice, body)
        await ctx.call(
            "PUT",
            "payments",
            replica,
            f"/v1/clients/{client}/autopay",
            practice,
            {"enabled": True, "card_id": stored["id"]},
        )

    await ctx.each(load.autopay, card)


@dataclass
class Probe:
    """session → unbilled for PRACTICE while sessions arrive at `rate`/s, and every process's RSS."""

    run: Run
    rate: float
    latencies: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # perf_counter at each latency's end
    rss: dict[str, float] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)

    async def background(self) -> None:
        clients = [f"steady-{n}" for n in range(20)]
        for c in clients:
            await self.run.client(c)
        sent, start = 0, time.perf_counter()
        while not self.stop.is_set():
            while sent < (time.perf_counter() - start) * self.rate:
                await self.run.session(clients[sent % len(clients)])
                sent += 1
            self.sample_memory()
            await asyncio.sleep(0.05)

    async def probes(self) -> None:
        while not self.stop.is_set():
            before = len(self.run.latencies["session → unbilled"])
            try:
                await self.run.probe_unbilled()
            except (TimeoutError, ValueError, httpx.HTTPError) as exc:  # not seen in 30 s, or a 5xx answer
                self.failures.append(type(exc).__name__)
                self.run.latencies["session → unbilled"].append(30_000.0)
            new = self.run.latencies["session → unbilled"][before:]
            self.latencies.extend(new)
            self.finished.extend([time.perf_counter()] * len(new))
            await asyncio.sleep(0.2)

    def sample_memory(self) -> None:
        for name, proc in self.run.stack.processes.items():
            self.rss[name] = max(self.rss.get(name, 0.0), rss_mb(proc.pid))
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            for n, pid in enumerate(children.read_text().split() if children.exists() else []):
                key = f"{name} render process {n}"
                self.rss[key] = max(self.rss.get(key, 0.0), rss_mb(int(pid)))

    async def window(self, seconds: float) -> list[float]:
        """Probe latencies of a window of `seconds` (the quiet baseline)."""
        start = len(self.latencies)
        await asyncio.sleep(seconds)
        return self.latencies[start:]

    def by_stage(self, windows: list[tuple[str, float, float]]) -> dict[str, list[float]]:
        """Probe latencies of each stage's window (perf_counter start, end): which stage stalls ingest."""
        return {
            name: [lat for lat, end in zip(self.latencies, self.finished, strict=True) if start <= end < stop]
            for name, start, stop in windows
        }


def pdf_messages(inbox: list[Message]) -> list[Message]:
    return [m for m in inbox if any(part.get_content_type() == "application/pdf" for part in m.walk())]


async def month_end(ctx: Ctx) -> tuple[list[Stage], dict[str, Any]]:
    load, inbox = ctx.load, ctx.stack.inbox
    stages: list[Stage] = []
    t0, wall0 = time.perf_counter(), time.time()

    async def bill_run(practice: str, replica: int) -> Any:
        body = {"job": "bill_creation", "as_of": FIRST.isoformat()}
        return await ctx.call("POST", "billing", replica, "/v1/automation/run", practice, body)

    meter = ctx.cpu_meter()
    runs = await ctx.each(load.practices, bill_run, ctx.runs_at_once)
    t1 = time.perf_counter()
    print(cpu_report(*meter.stop(), "while bills are made (PDFs start)"))
    bills_s = t1 - t0
    n_bills = sum(len(r["bills"]) for r in runs)
    skipped = sum(len(r["skipped"]) for r in runs)
    stages.append(progress(Stage("bills", n_bills, bills_s, n_bills / bills_s, note=f"{skipped} skipped")))

    rendered = "FROM documents.documents WHERE practice_id LIKE $1 AND status = 'rendered'"
    meter = ctx.cpu_meter()
    await ctx.until("PDFs", f"SELECT count(*) {rendered}", n_bills)
    t2 = time.perf_counter()
    shares, busy, cores = meter.stop()
    print(cpu_report(shares, busy, cores, "while PDFs render after bill creation"))
    render_share = sum(share for group, share in shares.items() if group.endswith("render processes"))
    pdf_ceiling_after_stage = await bare_pdfs(ctx)
    first, last = await ctx.pool.fetchrow(f"SELECT min(finished_at), max(finished_at) {rendered}", load.like)
    bills_done = dt.datetime.fromtimestamp(wall0 + bills_s, dt.UTC)
    tail = await ctx.pool.fetchrow(
        f"SELECT count(*), max(finished_at) {rendered} AND finished_at > $2", load.like, bills_done
    )
    tail_rate = (tail[0] - 1) / (tail[1] - bills_done).total_seconds() if tail[0] > 10 else 0.0
    render_cpu_s = render_share * (t2 - t1)
    per_render_cpu_s = tail[0] / render_cpu_s if render_cpu_s else 0.0
    stages.append(
        progress(
            Stage(
                "PDFs",
                n_bills,
                last.timestamp() - wall0,
                (n_bills - 1) / (last - first).total_seconds(),
                note=f"after bill creation ended, rendering alone: {tail_rate:.1f}/s over {tail[0]}, "
                f"{per_render_cpu_s:.1f} per CPU-second of the render processes "
                f"({render_share / ctx.replicas:.0%} of a core each)",
            )
        )
    )

    await ctx.until("bills in payments", "SELECT count(*) FROM payments.bills WHERE practice_id LIKE $1", n_bills)
    t3 = time.perf_counter()

    async def autopay(practice: str, replica: int) -> Any:
        return await ctx.call(
            "POST", "payments", replica, "/v1/autopay/run", practice, {"as_of": AUTOPAY_AT.isoformat()}
        )

    nights = await ctx.each(load.practices, autopay, ctx.runs_at_once)
    autopay_s = time.perf_counter() - t3
    outcomes = [i["outcome"] for n in nights for i in n["items"]]
    charged = outcomes.count("succeeded")
    await ctx.until(
        "bills paid in billing",
        "SELECT count(*) FROM billing.bills WHERE practice_id LIKE $1 AND status = 'paid'",
        charged,
    )
    paid_s = time.perf_counter() - t3
    stages.append(
        progress(
            Stage(
                "autopay charges",
                charged,
                autopay_s,
                charged / autopay_s,
                note=f"{len(outcomes) - charged} not charged; every bill paid in billing after {paid_s:.1f} s",
            )
        )
    )
    receipts = len(inbox.messages)
    # the paid bills' new versions render before the share, so the emails carry them
    await ctx.until("paid PDFs", f"SELECT count(*) {rendered}", n_bills + charged)

    t4, wall4 = time.perf_counter(), time.time()
    windows = [
        ("bill creation (PDFs start)", t0, t1),
        ("PDFs alone", t1, t2),
        ("autopay", t3, t3 + paid_s),
        ("paid bills' PDFs", t3 + paid_s, t4),
    ]

    async def share(practice: str, replica: int) -> Any:
        body = {"job": "auto_share", "as_of": SHARE_AT.isoformat()}
        return await ctx.call("POST", "billing", replica, "/v1/automation/run", practice, body)

    meter = ctx.cpu_meter()
    shared = sum(r["shared"] for r in await ctx.each(load.practices, share, ctx.runs_at_once))
    for _ in range(7200):  # filled by the SMTP server's thread: polled, parsed once all could be there
        if inbox.accepted >= receipts + shared and len(pdf_messages(inbox.messages)) >= shared:
            break
        await asyncio.sleep(0.5)
    print(cpu_report(*meter.stop(), "while the bills are shared and emailed"))
    emails = pdf_messages(inbox.messages)
    accepted = sorted(float(m["X-Accepted-At"]) for m in emails)
    stages.append(
        progress(
            Stage(
                "emails with PDF",
                len(emails),
                accepted[-1] - wall4,
                (len(accepted) - 1) / (accepted[-1] - accepted[0]),
                note=f"share runs answered in {time.perf_counter() - t4:.1f} s",
            )
        )
    )
    facts = {
        "bills": n_bills,
        "charged": charged,
        "receipts": receipts,
        "shared": shared,
        "total_s": accepted[-1] - wall0,
        "pdf_ceiling_after_stage": pdf_ceiling_after_stage,
        "pdfs_per_render_cpu_s": per_render_cpu_s,
        "windows": [*windows, ("emails", t4, time.perf_counter())],
        "emails": emails,
    }
    return stages, facts


async def one_run(args: argparse.Namespace, replicas: int) -> dict[str, Any]:
    load, probe_rate = Load.of(args.scale, args.autopay), args.probe_rate
    print(
        f"\n== {replicas} replica(s) of each service: {len(load.practices)} practices, {load.n_clients} clients, "
        f"{load.sessions} sessions, {len(load.autopay)} on autopay",
        flush=True,
    )
    async with private_localstripe(free_port()) as stripe_base, isolated_settings() as base, admin_pool(base) as pool:
        env = {
            "STRIPE_API_BASE": stripe_base,
            "BILLING_AUTOMATION_INTERVAL_S": "0",
            "AUTOPAY_INTERVAL_S": "0",
            "DOCUMENTS_RENDER_WORKERS": "1",
            "LOG_LEVEL": "WARNING",
            "PG_POOL_SIZE": str(args.pool),  # the shared Postgres allows 100 connections for everyone
        }
        with smtp_server() as (inbox, port):
            async with running_services(
                base, inbox, port, services=SERVICES, extra_env=env, replicas=replicas
            ) as stack:
                producer = AIOKafkaProducer(**client_options(base), acks="all", linger_ms=5)
                await producer.start()
                direct = stripe.StripeClient(
                    "sk_test_local",
                    base_addresses={"api": stripe_base},
                    http_client=stripe.HTTPXClient(),
                    max_network_retries=0,
                )
                probe_headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', ttl=dt.timedelta(hours=3))}"}
                try:
                    async with (
                        httpx.AsyncClient(timeout=3600) as http,
                        httpx.AsyncClient(timeout=30, headers=probe_headers) as probe_http,
                    ):
                        ctx = Ctx(stack, http, pool, load, replicas, replicas * args.runs_per_replica, direct)
                        t = time.perf_counter()
                        await setup(ctx, producer)
                        print(f"  loaded in {time.perf_counter() - t:.0f} s", flush=True)
                        probe = Probe(Run(stack, producer, probe_http), probe_rate)
                        tasks = [asyncio.create_task(probe.background()), asyncio.create_task(probe.probes())]
                        quiet = await probe.window(15)
                        during_from = len(probe.latencies)
                        stages, facts = await month_end(ctx)
                        during = probe.latencies[during_from:]
                        probe.stop.set()
                        await asyncio.gather(*tasks)
                        stages = await with_ceilings(ctx, stages, facts, stripe_base, replicas)
                        result = await checks(ctx, facts, stripe_base, min(facts["charged"], 200))
                finally:
                    await producer.stop()
    return {
        "replicas": replicas,
        "stages": stages,
        "facts": facts,
        "checks": result,
        "quiet": quiet,
        "during": during,
        "by_stage": probe.by_stage(facts["windows"]),
        "rss": probe.rss,
        "probe_failures": probe.failures,
        "rate": probe_rate,
    }


async def bare_pdfs(ctx: Ctx) -> float:
    """PDFs/s of bare WeasyPrint over some of the month's bills, one process per render process."""
    sources = await ctx.pool.fetch(
        "SELECT source FROM documents.documents WHERE practice_id LIKE $1 AND version = 1 LIMIT $2",
        ctx.load.like,
        30 * ctx.replicas,
    )
    snaps = [BillSnapshot.model_validate_json(r["source"]) for r in sources]
    return await asyncio.to_thread(bare_weasyprint, snaps, ctx.replicas)


async def with_ceilings(
    ctx: Ctx, stages: list[Stage], facts: dict[str, Any], stripe_base: str, replicas: int
) -> list[Stage]:
    bills, pdfs, charges, emails = stages
    bills.ceiling, n = await ceilings.bare_bills(ctx.pool, ctx.load.like, CONCURRENCY)
    bills.ceiling_what = f"bare asyncpg, same {n} bills' rows, same tables and indexes"
    at_end = await bare_pdfs(ctx)
    pdfs.ceiling = (facts["pdf_ceiling_after_stage"] + at_end) / 2
    pdfs.ceiling_what = (
        f"bare WeasyPrint, {replicas} process(es), same bills; mean of {facts['pdf_ceiling_after_stage']:.1f}/s "
        f"right after the stage and {at_end:.1f}/s at the end (the machine's speed drifts)"
    )
    if charges.count:
        charges.ceiling = await ceilings.bare_charges(stripe_base, min(charges.count, 200), CONCURRENCY)
        charges.ceiling_what = f"bare stripe SDK → same localstripe, {CONCURRENCY} at a time"
    emails.ceiling = await ceilings.bare_smtp(facts["emails"][:300])
    emails.ceiling_what = f"bare aiosmtplib, same messages, {ceilings.SMTP_BATCH} at a time"
    return stages


async def main(args: argparse.Namespace) -> int:
    processes.READY_SECONDS = 600  # a loaded shared machine can take minutes to start eight processes
    results = [await one_run(args, n) for n in args.replicas]
    ok = all([report(r) for r in results])
    if len(results) > 1:
        compare(results)
    print(
        f"\n(2 cores shared with other work; CPUs here: {os.cpu_count()}; spread of the probes: "
        f"{statistics.pstdev(results[0]['during'] or [0]):.0f} ms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 200 practices / 10,000 clients / 40,000 sessions"
    )
    parser.add_argument(
        "--replicas", type=int, nargs="+", default=[1], help="runs with this many processes of each service"
    )
    parser.add_argument(
        "--runs-per-replica", type=int, default=1, help="month-end runs (practices) in flight on each replica"
    )
    parser.add_argument("--pool", type=int, default=6, help="PG_POOL_SIZE of every service process")
    parser.add_argument("--autopay", type=float, default=0.2, help="share of clients on autopay")
    parser.add_argument("--probe-rate", type=float, default=10, help="sessions/s of the steady ingest during month-end")
    sys.exit(asyncio.run(main(parser.parse_args())))
