"""Cost growth: does a session's ingest, a bill's creation and a report's answer cost the same
with 1,000 and with 1,000,000 sessions in the database?

One database grows step by step (default 1k, 10k, 100k, 1M sessions). The filler is written
with SQL (INSERT ... SELECT generate_series, in the services' own tables): other practices'
billed history in billing (sessions, clients, bills, lines, the inbox rows of every bill's
payment and document and the outbox row of every bill, since neither table is pruned; session
events are not claimed in the inbox) and in reports (bills,
lines, payments, journal: bench_reports' seed), so every table and index grows as with many
tenants. The measured practice (PRACTICE) keeps the same size at every step:
- ingest: billing's real consumer on INGEST fresh SessionCompleted events (events/s);
- a bill's creation: `POST /v1/bills` for one session, in-process HTTP (p50/p95 of BILLS);
- a report's answer: two of bench_reports' reports over the practice's fixed 5,000 bills.
Target (issue 15): each stays within 20 % of its figure at the smallest size.

Run: .venv/bin/python -m bench.bench_cost_growth [sizes...]   (needs ./dev infra)
"""

import asyncio
import json
import re
import statistics
import sys
import time

import httpx
from sqlalchemy import text

from bench.bench_reports import REPORTS, SEED
from bench.common import PRACTICE, admin_pool, client_event, consumer_rate, isolated_settings, produce_sessions
from services.billing.app import build as build_billing
from services.billing.app import create_service as billing_service
from services.billing.db import sessions
from services.reports.app import build as build_reports
from shared.auth import issue_token
from shared.migrations import upgrade
from shared.settings import Settings

SIZES = [1_000, 10_000, 100_000, 1_000_000]
INGEST = 5_000
BILLS = 40
MEASURED_BILLS = 5_000  # the measured practice's own reports data, the same at every size
REPORTS_MEASURED = ("payments by method, a year", "revenue by service code, a year")
FILLER_PRACTICES = 20
TOLERANCE = 0.2

# Other practices' billed history, sessions lo..hi-1 (four to a bill, one client per bill).
BILLING_FILL = [
    """INSERT INTO billing.clients (practice_id, id, first_name, last_name, data, as_of)
       SELECT 'filler-' || (i % $3::int), 'fc-' || i, 'Filler', 'Client ' || i, $4::jsonb, now()
       FROM generate_series($1::int / 4, ($2::int - 1) / 4) i WHERE i * 4 >= $1""",
    """INSERT INTO billing.bills (id, practice_id, number, client_id, status, responsibility, issued_on, due_date,
         access_code, pay_url, bill_to, patient, practice, total_cents, client_share_cents, insurance_share_cents,
         paid_cents, created_at)
       SELECT md5('bill' || i)::uuid, 'filler-' || (i % $3::int), i, 'fc-' || i, 'paid', 'client',
         DATE '2024-01-01' + (i % 700), DATE '2024-01-31' + (i % 700), '123456', 'https://pay.example/p?bill=' || i,
         $4::jsonb, $4::jsonb, '{"name": "Filler Practice"}'::jsonb, 64000, 64000, 0, 64000,
         TIMESTAMPTZ '2024-01-01 12:00Z' + (i % 700) * INTERVAL '1 day'
       FROM generate_series($1::int / 4, ($2::int - 1) / 4) i WHERE i * 4 >= $1""",
    """INSERT INTO billing.sessions (practice_id, id, client_id, clinician_id, date_of_service, attendance, data,
         services_cents, as_of, bill_id)
       SELECT 'filler-' || ((i / 4) % $3::int), 'fs-' || i, 'fc-' || (i / 4), 'clin-morgan',
         DATE '2024-01-01' + ((i / 4) % 700), 'attended', $4::jsonb, 16000, now(), md5('bill' || (i / 4))::uuid
       FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO billing.bill_lines (bill_id, position, session_id, date_of_service, code, description, modifiers,
         units, amount_cents, client_owes_cents, insurance_owes_cents)
       SELECT md5('bill' || (i / 4))::uuid, i % 4, 'fs-' || i, DATE '2024-01-01' + ((i / 4) % 700), '90837',
         'Psychotherapy, 60 minutes', '[]'::jsonb, 1, 16000, 16000, 0
       FROM generate_series($1::int, $2::int - 1) i""",
    """INSERT INTO billing.inbox (event_id, event_type, processed_at)
       SELECT md5(kind || i), kind, now()
       FROM generate_series($1::int / 4, ($2::int - 1) / 4) i, unnest(ARRAY['PaymentRecorded', 'DocumentRendered']) kind
       WHERE i * 4 >= $1""",
    """INSERT INTO billing.outbox (event_id, topic, key, event_type, payload, sent_at)
       SELECT md5('out' || i), 'billing.events', 'fc-' || i, 'BillCreated', convert_to(repeat('x', 1500), 'UTF8'),
         now()
       FROM generate_series($1::int / 4, ($2::int - 1) / 4) i WHERE i * 4 >= $1""",
]


async def fill(settings: Settings, lo: int, hi: int) -> None:
    """Other practices' history: sessions lo..hi-1 in billing, their bills in reports."""
    client = client_event("filler", "x")["data"]["client"]
    session = {"services": [{"code": "90837", "fee_cents": 16000, "billable": True, "units": 1}], "payer": "self_pay"}
    async with admin_pool(settings) as pool, pool.acquire() as con:
        for statement in BILLING_FILL:
            data = json.dumps(session if "billing.sessions" in statement else client)
            args = (lo, hi, FILLER_PRACTICES, data)
            await con.execute(statement, *args[: max(int(n) for n in re.findall(r"\$(\d)", statement))])
    bills = (hi - lo) // 4
    svc, _app = build_reports(settings)
    async with svc.db.transaction() as s:
        for k in range(FILLER_PRACTICES):
            practice = f"filler-{k}-{lo}"  # each step's filler practices are new ones
            for statement in SEED[3:-1]:  # bills, lines, sessions, payments, journal (not names: 5,000 per practice)
                statement = re.sub(r"'(je-[bp]-)' \|\| i", r"'\1' || :p || '-' || i", statement)  # entry ids are global
                await s.execute(text(statement), {"p": practice, "n": max(1, bills // FILLER_PRACTICES)})
    async with admin_pool(settings) as pool, pool.acquire() as con:
        # What a database that grew over months has had done by autovacuum and the checkpointer;
        # right after a bulk load both would still be at work during the measurement.
        await con.execute("VACUUM (ANALYZE)")
        await con.execute("CHECKPOINT")


async def seed_measured(settings: Settings) -> None:
    """PRACTICE: 500 known clients in billing, 5,000 bills of a year in reports (schemas first)."""
    for service in ("billing", "reports"):
        await asyncio.to_thread(upgrade, service, settings.database_url(service))
    async with admin_pool(settings) as pool:
        rows = [(PRACTICE, f"client-{n}", "Bench", f"client-{n}", json.dumps(client_event(PRACTICE, f"client-{n}")
                 ["data"]["client"])) for n in range(500)]  # fmt: skip
        await pool.executemany(
            "INSERT INTO billing.clients (practice_id, id, first_name, last_name, data, as_of) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, now())",
            rows,
        )
    svc, _app = build_reports(settings)
    async with svc.db.transaction() as s:
        for statement in SEED:
            await s.execute(text(statement), {"p": PRACTICE, "n": MEASURED_BILLS})


async def bill_latencies(settings: Settings, first_session: int) -> list[float]:
    """POST /v1/bills for BILLS of the sessions just ingested (one session each, distinct clients)."""
    svc, app = build_billing(settings)
    headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', secret=settings.auth_secret)}"}
    times = []
    async with svc.db.engine.connect():  # the pool warm before timing
        pass
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://billing") as http:
        for n in range(first_session, first_session + BILLS):
            body = {"client_id": f"client-{n % 500}", "session_ids": [f"sess-{n}"], "responsibility": "client"}
            start = time.perf_counter()
            r = await http.post("/v1/bills", json=body, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 201, r.text
    await svc.db.engine.dispose()
    return times


async def report_latencies(settings: Settings, rounds: int = 20) -> dict[str, list[float]]:
    svc, app = build_reports(settings)
    headers = {"Authorization": f"Bearer {issue_token(PRACTICE, 'staff', secret=settings.auth_secret)}"}
    times: dict[str, list[float]] = {name: [] for name in REPORTS_MEASURED}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports") as http:
        for _ in range(rounds):
            for name in REPORTS_MEASURED:
                path, params = REPORTS[name]
                start = time.perf_counter()
                r = await http.get(path, params=params, headers=headers)
                times[name].append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200, r.text
    await svc.db.engine.dispose()
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def main(sizes: list[int]) -> int:
    rows: list[dict[str, float]] = []
    async with isolated_settings(log_level="WARNING") as settings:
        await seed_measured(settings)
        filled, ingested = 0, 0
        for size in sizes:
            t = time.perf_counter()
            filler = size - ingested - INGEST  # this step's INGEST sessions count toward the size
            if filler > filled:
                await fill(settings, filled, filler)
                filled = filler
            fill_s = time.perf_counter() - t
            async with admin_pool(settings) as pool:
                in_db = await pool.fetchval("SELECT count(*) FROM billing.sessions")
            await produce_sessions(settings, INGEST, first=ingested)
            rate = await consumer_rate(billing_service(settings), sessions, INGEST, already=ingested)
            bills = await bill_latencies(settings, ingested)
            ingested += INGEST
            reports = await report_latencies(settings)
            row = {"size": in_db + INGEST, "ingest": rate, "bill p50": statistics.median(bills), "bill p95": p95(bills)}
            for name, values in reports.items():
                row[f"{name} p50"], row[f"{name} p95"] = statistics.median(values), p95(values)
            rows.append(row)
            figures = ", ".join(f"{k} {v:,.1f}" for k, v in row.items() if k != "size")
            print(f"  {row['size']:>9,} sessions (filled in {fill_s:.0f} s): {figures}", flush=True)
    return print_curve(rows)


def print_curve(rows: list[dict[str, float]]) -> int:
    print("\ncost growth (the measured practice the same at every size; the database grows around it)")
    keys = [k for k in rows[0] if k != "size"]
    print(f"  {'sessions in DB':>14} " + " ".join(f"{k[:22]:>22}" for k in keys))
    for row in rows:
        unit = {k: ("/s" if k == "ingest" else " ms") for k in keys}
        print(f"  {row['size']:>14,} " + " ".join(f"{row[k]:>19,.1f}{unit[k]:<3}" for k in keys))
    ok = True
    first, last = rows[0], rows[-1]
    for k in keys:
        # ingest is a rate (lower is worse), the rest are latencies (higher is worse)
        change = (first[k] / last[k] - 1) if k == "ingest" else (last[k] / first[k] - 1)
        flat = change <= TOLERANCE
        if k == "ingest" or k.endswith("p50"):  # p95 of 20-40 requests on a shared machine: printed, not judged
            ok &= flat
        print(f"  {k:<42} {'+' if change >= 0 else ''}{change:.0%} cost from {first['size']:,} to {last['size']:,} "
              f"sessions: {'flat' if flat else 'GROWS'} (target ≤ +{TOLERANCE:.0%})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main([int(a) for a in sys.argv[1:]] or SIZES)))
