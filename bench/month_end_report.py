"""What the month-end benchmark prints and checks: each stage beside its ceiling, session →
unbilled before and during month-end, and the counts that show nothing was lost or doubled."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bench.bench_latency import p

if TYPE_CHECKING:
    from bench.bench_month_end import Ctx

INGEST_TARGET_MS = 150  # issue 15: session → unbilled p99
PDF_TARGET = 0.9  # PDFs/s per render process against bare WeasyPrint per process


@dataclass
class Stage:
    name: str
    count: int
    wall_s: float  # from the stage's start to its last item
    rate: float  # items/s while it ran (first to last item where timestamps allow)
    ceiling: float = 0.0
    ceiling_what: str = ""
    note: str = ""


def progress(stage: Stage) -> Stage:
    print(f"  {stage.name}: {stage.count} in {stage.wall_s:.1f} s, {stage.rate:.1f}/s; {stage.note}", flush=True)
    return stage


async def checks(ctx: "Ctx", facts: dict[str, Any], stripe_base: str, ceiling_charges: int) -> list[tuple[str, bool]]:
    """Nothing doubled, nothing lost."""
    load, q = ctx.load, ctx.pool.fetchrow
    bills = await q(
        "SELECT count(*), count(DISTINCT (practice_id, client_id)) FROM billing.bills WHERE practice_id LIKE $1",
        load.like,
    )
    lines = await q(
        "SELECT count(*), count(DISTINCT l.session_id) FROM billing.bill_lines l JOIN billing.bills b "
        "ON b.id = l.bill_id WHERE b.practice_id LIKE $1",
        load.like,
    )
    unbilled = await ctx.count("SELECT count(*) FROM billing.sessions WHERE practice_id LIKE $1 AND bill_id IS NULL")
    pdfs = await q(
        "SELECT count(*), count(DISTINCT (source_id, version)) FROM documents.documents "
        "WHERE practice_id LIKE $1 AND status = 'rendered'",
        load.like,
    )
    cards = await q(
        "SELECT count(*), count(DISTINCT client_id) FROM payments.payments WHERE practice_id LIKE $1 "
        "AND method = 'card' AND status = 'succeeded'",
        load.like,
    )
    async with httpx.AsyncClient(timeout=30) as http:
        intents = (
            (await http.get(f"{stripe_base}/v1/payment_intents", params={"limit": 1}, auth=("sk_test_local", "")))
            .json()
            .get("total_count")
        )
    per_client: dict[str, int] = {}
    for m in facts["emails"]:
        per_client[m["X-Envelope-To"]] = per_client.get(m["X-Envelope-To"], 0) + 1
    return [
        (
            f"one bill per client: {bills[0]} bills, {bills[1]} clients, {load.n_clients} loaded",
            bills[0] == bills[1] == load.n_clients,
        ),
        (
            f"every session billed once: {lines[0]} lines, {lines[1]} sessions of {load.sessions}, {unbilled} left",
            lines[0] == lines[1] == load.sessions and unbilled == 0,
        ),
        (
            f"one PDF per bill version: {pdfs[0]} rendered, {pdfs[1]} versions (bills + paid bills "
            f"{facts['bills'] + facts['charged']})",
            pdfs[0] == pdfs[1] == facts["bills"] + facts["charged"],
        ),
        (
            f"one charge per autopay client: {cards[0]} card payments, {cards[1]} clients, {len(load.autopay)} on "
            f"autopay",
            cards[0] == cards[1] == len(load.autopay) == facts["charged"],
        ),
        (
            f"Stripe saw each charge once: {intents} PaymentIntents = {facts['charged']} charges + {ceiling_charges} "
            "of the ceiling",
            intents == facts["charged"] + ceiling_charges,
        ),
        (
            f"one email with the PDF per client: {len(facts['emails'])} emails to {len(per_client)} addresses "
            f"(shared {facts['shared']})",
            len(facts["emails"]) == len(per_client) == facts["shared"] == load.n_clients,
        ),
    ]


def report(r: dict[str, Any]) -> bool:
    replicas, ok = r["replicas"], True
    print(
        f"\nmonth-end, {replicas} replica(s) of each service ({replicas} render process(es)); "
        f"wall time {r['facts']['total_s']:.0f} s from the bill run to the last email"
    )
    for s in r["stages"]:
        ratio = s.rate / s.ceiling if s.ceiling else 0
        print(
            f"  {s.name:<16} {s.count:6d} in {s.wall_s:7.1f} s  {s.rate:7.1f}/s   ceiling {s.ceiling:7.1f}/s "
            f"({s.ceiling_what}): ratio {ratio:.2f}"
        )
        if s.note:
            print(f"  {'':<16} {s.note}")
        if s.name == "PDFs":
            ok &= ratio >= PDF_TARGET
            print(
                f"  {'':<16} per render process {s.rate / replicas:.1f}/s vs {s.ceiling / replicas:.1f}/s: "
                f"{'OK' if ratio >= PDF_TARGET else 'BELOW'} target {PDF_TARGET}"
            )
            per_cpu_s = r["facts"]["pdfs_per_render_cpu_s"]
            print(
                f"  {'':<16} per CPU-second the render processes got {per_cpu_s:.1f} vs {s.ceiling / replicas:.1f} "
                f"for a bare process on a core of its own: {per_cpu_s / (s.ceiling / replicas):.2f} "
                "(the code's efficiency, apart from the share of the cores the machine left it)"
            )
    for name, values in (("quiet, before month-end", r["quiet"]), ("during month-end", r["during"])):
        if values:
            p99 = p(values, 99)
            print(
                f"  session → unbilled, {name:<24} p50 {p(values, 50):7.1f} ms  p99 {p99:8.1f} ms  (n={len(values)}, "
                f"{r['rate']:g} sessions/s; target p99 ≤ {INGEST_TARGET_MS} ms) "
                f"{'OK' if p99 <= INGEST_TARGET_MS else 'ABOVE'}"
            )
    for stage, values in r["by_stage"].items():
        if values:
            print(f"    {stage:<28} p50 {p(values, 50):7.1f} ms  p99 {p(values, 99):8.1f} ms  (n={len(values)})")
    if r["probe_failures"]:
        print(f"  probes that failed (counted as 30 s): {', '.join(r['probe_failures'])}")
    rss = r["rss"]
    print("  max RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(rss.items())))
    for what, good in r["checks"]:
        ok &= good
        print(f"  {'OK  ' if good else 'FAIL'} {what}")
    return ok


def compare(results: list[dict[str, Any]]) -> None:
    base = results[0]
    print("\nthroughput by replicas (same load, same machine):")
    for n, stage in enumerate(base["stages"]):
        cells = "  ".join(f"{r['replicas']}: {r['stages'][n].rate:7.1f}/s" for r in results)
        print(f"  {stage.name:<16} {cells}  ({results[-1]['stages'][n].rate / stage.rate:.2f}×)")
    print("  " + "  ".join(f"{r['replicas']} replica(s) total {r['facts']['total_s']:.0f} s" for r in results))
