"""Reports: does the read model keep up, and do its reports answer fast on a big practice?

1. Session ingest: the reports consumer (inbox + batch upsert of the session → clinician map)
   against billing's consumer on the same SessionCompleted events (the ingest benchmark's
   figure, measured again in this run). Target: reports ≥ billing.
2. Money events: BillCreated, PaymentRecorded and BillPaid for a sample of bills, through the
   real consumer (batch handlers: bulk SQL per fetched batch; each books journal entries):
   events/s, printed beside billing's ingest rate of the same run.
3. Reports over a practice with 50,000 bills (a year of a large group: bills, lines, payments,
   journal rows seeded in the reports schema with SQL): p95 of each report over repeated
   requests through the HTTP app in-process. Ceiling 300 ms.

Run: .venv/bin/python -m bench.bench_reports [sessions] [money_bills]   (needs ./dev infra)
"""

import asyncio
import datetime as dt
import statistics
import sys
import time

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text

from bench.bench_ingest import billing_ingest
from bench.common import PRACTICE, consumer_rate, isolated_settings, produce_sessions
from services.reports.app import build, create_service
from services.reports.db import journal_entries, sessions
from shared import topics
from shared.auth import issue_token
from shared.events import (
    Allocation,
    BillCreated,
    BillLine,
    BillPaid,
    BillPaymentLine,
    BillSnapshot,
    Party,
    PaymentInfo,
    PaymentRecorded,
    PracticeInfo,
    new_envelope,
)
from shared.kafka import client_options
from shared.settings import Settings

P95_CEILING_MS = 300
BILLS = 50_000


async def reports_sessions(settings: Settings, count: int) -> float:
    """The reports consumer from a full scheduling topic until every session is in its map."""
    return await consumer_rate(create_service(settings), sessions, count)


def bill_snapshot(n: int, paid: bool) -> BillSnapshot:
    party = Party(name="Client Name", email="client@example.org")
    line = BillLine(session_id=f"sess-{n}", date_of_service=dt.date(2026, 11, 2), code="90837",
                    description="Psychotherapy, 60 minutes", amount_cents=16000, client_owes_cents=16000,
                    insurance_owes_cents=0)  # fmt: skip
    payments = (
        [BillPaymentLine(payment_id=f"pay-{n}", kind="payment", payer="client", method="card", amount_cents=16000,
                         occurred_at=dt.datetime(2026, 11, 3, 15, tzinfo=dt.UTC))]
        if paid else []
    )  # fmt: skip
    return BillSnapshot(
        id=f"bill-{n}", number=n, client_id=f"client-{n % 500}", status="paid" if paid else "open",
        responsibility="client", lines=[line], total_cents=16000, client_owes_cents=0 if paid else 16000,
        insurance_owes_cents=0, paid_cents=16000 if paid else 0, balance_cents=0 if paid else 16000,
        issued_on=dt.date(2026, 11, 2), due_date=dt.date(2026, 12, 2), access_code="123456",
        pay_url="https://pay.example/pay?bill=1", bill_to=party, patient=party,
        practice=PracticeInfo(name="Bench Practice", timezone="America/New_York"), payments=payments,
        version=2 if paid else 1,
    )  # fmt: skip


async def produce_money(settings: Settings, bills: int) -> int:
    """Per bill: BillCreated; for two in three a PaymentRecorded and the BillPaid it causes."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        futures = []
        for n in range(bills):
            key = f"client-{n % 500}".encode()
            out = [(topics.BILLING, new_envelope(PRACTICE, BillCreated(bill=bill_snapshot(n, False))))]
            if n % 3:
                payment = PaymentInfo(id=f"pay-{n}", client_id=f"client-{n % 500}", payer="client", method="card",
                                      amount_cents=16000, status="succeeded",
                                      paid_at=dt.datetime(2026, 11, 3, 15, tzinfo=dt.UTC))  # fmt: skip
                out.append((topics.PAYMENTS, new_envelope(PRACTICE, PaymentRecorded(
                    payment=payment, allocations=[Allocation(bill_id=f"bill-{n}", amount_cents=16000)]))))  # fmt: skip
                out.append((topics.BILLING, new_envelope(PRACTICE, BillPaid(bill=bill_snapshot(n, True)))))
            for topic, env in out:
                headers = [("event-type", env.event_type.encode()), ("event-id", env.event_id.encode())]
                value = env.model_dump_json().encode()
                futures.append(await producer.send(settings.topic(topic), value, key=key, headers=headers))
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


async def reports_money(settings: Settings, events: int, entries: int) -> float:
    """The reports consumer until every money event has its journal entry; events/s from the
    first entry on (start-up and the group joins are not throughput)."""
    svc = create_service(settings)
    await svc.start()
    first: tuple[float, int] | None = None
    try:
        while True:
            async with svc.db.transaction() as s:
                booked = await s.scalar(
                    select(func.count()).where(journal_entries.c.practice_id == PRACTICE)
                ) or 0  # fmt: skip
            now = time.perf_counter()
            if booked and first is None:
                first = (now, booked)
            if booked >= entries:
                break
            await asyncio.sleep(0.05)
    finally:
        await svc.stop()
    assert first is not None
    return events * (entries - first[1]) / entries / (now - first[0])


SEED = [
    "INSERT INTO practices VALUES (:p, 'America/New_York', 'USD') ON CONFLICT DO NOTHING",
    "INSERT INTO names SELECT :p, 'clinician', 'clin-' || i, 'Clinician ' || i FROM generate_series(0, 39) i",
    "INSERT INTO names SELECT :p, 'client', 'client-' || i, 'Client ' || i FROM generate_series(0, 4999) i",
    # a year of bills, one in three paid, due 30 days after issue
    """INSERT INTO bills SELECT :p, 'b-' || i, 'client-' || (i % 5000), i, 1,
         CASE WHEN i % 3 = 0 THEN 'paid' ELSE 'open' END, 'client', DATE '2025-12-01' + (i % 365),
         DATE '2025-12-31' + (i % 365), NULL, 16000, 0, CASE WHEN i % 3 = 0 THEN 16000 ELSE 0 END,
         CASE WHEN i % 3 = 0 THEN 0 ELSE 16000 END,
         '{"accounts_receivable": 16000, "service_revenue": -16000}'::jsonb,
         CASE WHEN i % 3 = 0 THEN 16000 ELSE 0 END, 0, CASE WHEN i % 3 = 0 THEN 0 ELSE 16000 END, 0
       FROM generate_series(1, :n) i""",
    """INSERT INTO bill_lines SELECT :p, 'b-' || i, 0, 's-' || i, (ARRAY['90837', '90834', '90791'])[1 + i % 3],
         DATE '2025-12-01' + (i % 365), 16000, CASE WHEN i % 3 = 0 THEN 16000 ELSE 0 END, 0,
         CASE WHEN i % 3 = 0 THEN 0 ELSE 16000 END, 'clin-' || (i % 40)
       FROM generate_series(1, :n) i""",
    # the sums the consumer keeps beside the lines and the payments
    """INSERT INTO revenue_months SELECT practice_id, date_trunc('month', issued_on)::date, clinician_id, code,
         sum(billed_cents), sum(collected_cents), sum(adjusted_cents), sum(outstanding_cents), count(*)
       FROM bill_lines WHERE practice_id = :p GROUP BY 1, 2, 3, 4""",
    "INSERT INTO sessions SELECT :p, 's-' || i, 'clin-' || (i % 40) FROM generate_series(1, :n) i",
    """INSERT INTO bill_payments SELECT :p, 'b-' || i, 0, 'payment', 'client', 16000,
         TIMESTAMPTZ '2025-12-05 15:00Z' + (i % 365) * INTERVAL '1 day'
       FROM generate_series(3, :n, 3) i""",
    """INSERT INTO money_facts (practice_id, fact_id, kind, payment_id, client_id, payer, method, bill_id,
         amount_cents, at)
       SELECT :p, 'pay-' || i, 'payment', 'pay-' || i, 'client-' || (i % 5000), 'client',
         (ARRAY['card', 'cash', 'check'])[1 + i % 3], 'b-' || i, 16000,
         TIMESTAMPTZ '2025-12-05 15:00Z' + (i % 365) * INTERVAL '1 day'
       FROM generate_series(3, :n, 3) i""",
    """INSERT INTO payment_slots SELECT practice_id, date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00Z'),
         method, sum(amount_cents) FILTER (WHERE kind = 'payment'), 0, count(*)
       FROM money_facts WHERE practice_id = :p GROUP BY 1, 2, 3""",
    """INSERT INTO journal_entries SELECT 'je-b-' || i, :p, 'client-' || (i % 5000),
         TIMESTAMPTZ '2025-12-01 16:00Z' + (i % 365) * INTERVAL '1 day', DATE '2025-12-01' + (i % 365),
         'bill', 'b-' || i, 'Bill #' || i FROM generate_series(1, :n) i""",
    """INSERT INTO journal_lines SELECT 'je-b-' || i, l, :p, 'client-' || (i % 5000),
         (ARRAY['accounts_receivable', 'service_revenue'])[l + 1], CASE WHEN l = 0 THEN 16000 ELSE 0 END,
         CASE WHEN l = 1 THEN 16000 ELSE 0 END FROM generate_series(1, :n) i, generate_series(0, 1) l""",
    """INSERT INTO journal_entries SELECT 'je-p-' || i, :p, 'client-' || (i % 5000),
         TIMESTAMPTZ '2025-12-05 15:00Z' + (i % 365) * INTERVAL '1 day', NULL, 'payment', 'pay-' || i,
         'Client payment' FROM generate_series(3, :n, 3) i""",
    """INSERT INTO journal_lines SELECT 'je-p-' || i, l, :p, 'client-' || (i % 5000),
         (ARRAY['undeposited_funds', 'accounts_receivable'])[l + 1], CASE WHEN l = 0 THEN 16000 ELSE 0 END,
         CASE WHEN l = 1 THEN 16000 ELSE 0 END FROM generate_series(3, :n, 3) i, generate_series(0, 1) l""",
    "ANALYZE",
]

A_YEAR = {"from": "2025-12-01", "to": "2026-11-30"}
OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
REPORTS = {
    "aging (all open bills)": ("/v1/reports/aging", {"as_of": "2026-11-30"}),
    "payments by method, a year": ("/v1/reports/payments", A_YEAR | {"group_by": "method"}),
    "payments by day, a year": ("/v1/reports/payments", A_YEAR | {"group_by": "day"}),
    "payments by clinician, a month": ("/v1/reports/payments", OCTOBER | {"group_by": "clinician"}),
    "revenue by month, a year": ("/v1/reports/revenue", {"group_by": "month"}),
    "revenue by clinician, a year": ("/v1/reports/revenue", {"group_by": "clinician"}),
    "revenue by service code, a year": ("/v1/reports/revenue", {"group_by": "service_code"}),
    "journal, first page": ("/v1/journal", OCTOBER),
    "journal CSV, a month": ("/v1/journal", OCTOBER | {"format": "csv"}),
}  # fmt: skip


BASELINE = "GET /readyz (a DB and broker ping)"


async def report_latencies(settings: Settings, rounds: int) -> dict[str, list[float]]:
    svc, app = build(settings)
    await svc.start()
    try:
        async with svc.db.transaction() as s:
            for statement in SEED:
                await s.execute(text(statement), {"p": PRACTICE, "n": BILLS})
        headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', secret=settings.auth_secret)}"}
        times: dict[str, list[float]] = {name: [] for name in (*REPORTS, BASELINE)}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports") as http:
            for _ in range(rounds):
                for name, (path, params) in (*REPORTS.items(), (BASELINE, ("/readyz", {}))):
                    start = time.perf_counter()
                    response = await http.get(path, params=params, headers=headers)
                    times[name].append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.text
        return times
    finally:
        await svc.stop()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def main(count: int, money_bills: int) -> int:
    ok = True
    async with isolated_settings() as settings:
        await produce_sessions(settings, count)
        billing_rate = await billing_ingest(settings, count)
        reports_rate = await reports_sessions(settings, count)
    print(f"session ingest, {count} events")
    print(f"  reports consumer:             {reports_rate:,.0f} events/s")
    print(f"  billing consumer (the ingest benchmark), same events: {billing_rate:,.0f} events/s")
    keeps_up = reports_rate >= billing_rate
    ok &= keeps_up
    print(f"  keeps up: {'yes' if keeps_up else 'NO'} (ratio {reports_rate / billing_rate:.2f}, target ≥ 1)")

    async with isolated_settings() as settings:
        events = await produce_money(settings, money_bills)
        entries = money_bills + sum(1 for n in range(money_bills) if n % 3)  # a bill entry each, one per payment
        money_rate = await reports_money(settings, events, entries)
    print(f"money events (BillCreated, PaymentRecorded, BillPaid), {events} events: {money_rate:,.0f} events/s")
    print(f"  billing's ingest in this run: {billing_rate:,.0f} events/s (ratio {money_rate / billing_rate:.2f}); "
          f"{money_rate / 3:,.0f} sessions/s billed and paid (3 events each)")  # fmt: skip

    async with isolated_settings() as settings:
        times = await report_latencies(settings, rounds=20)
    print(f"reports over a practice with {BILLS:,} bills (20 requests each, in-process HTTP)")
    baseline = times.pop(BASELINE)
    print(f"  {BASELINE:34s} p50 {statistics.median(baseline):6.1f} ms  p95 {p95(baseline):6.1f} ms  "
          "(how loaded the machine is: the same app, no report)")  # fmt: skip
    for name, values in times.items():
        fast = p95(values) < P95_CEILING_MS
        ok &= fast
        print(f"  {name:34s} p50 {statistics.median(values):6.1f} ms  p95 {p95(values):6.1f} ms  "
              f"(ceiling {P95_CEILING_MS} ms) {'OK' if fast else 'OVER'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    sys.exit(asyncio.run(main(args[0] if args else 20000, args[1] if len(args) > 1 else 3000)))
