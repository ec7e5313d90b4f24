"""Page-render times of the staff console with the demo practice loaded (not a timed test).

Starts the five services and the web service as processes on a database and topics of its own,
runs `scripts.demo` against them (the demo practice: clients, bills, payments, a card, a refund,
a statement, a superbill, a write-off, a split bill, an estimate, a payment plan), then requests
every staff page ROUNDS times as the practice's staff and prints per page: p50 and p95 of the
whole request, next to the p95 of the time the page spent waiting on the services' APIs (its
Server-Timing `api`). Target: p95 < 150 ms per page.

Run: .venv/bin/python -m bench.bench_web [rounds] [--screenshots]   (needs ./dev infra; --screenshots
also writes the README's screenshots, as scripts.screenshots does)
"""

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from bench.common import isolated_settings
from shared.auth import issue_token
from tests.processes import ROOT, Stack, free_port, running_services, smtp_server

TARGET_MS = 150
DEMO_PRACTICE = "practice-rivers-edge"


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def api_ms(response: httpx.Response) -> float:
    for part in response.headers.get("server-timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "api":
            return float(dur)
    return 0.0


async def staff_pages(api: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, str]:
    """Every staff page, with ids of the demo practice's records."""
    billing = urls["billing"]
    bills = (await api.get(f"{billing}/v1/bills", params={"limit": 200})).json()["items"]
    clients = (await api.get(f"{billing}/v1/clients")).json()["items"]
    client = bills[0]["client_id"]
    docs: dict[str, str] = {}
    for c in clients:
        for d in (await api.get(f"{billing}/v1/clients/{c['id']}/documents")).json()["items"]:
            docs.setdefault(d["kind"], d["id"])
    pages = {
        "Client Billing": "/billing",
        "Client Billing, one client": f"/billing?client_id={client}",
        "New Bill": f"/bills/new?client_id={client}",
        "Bill": f"/bills/{bills[0]['id']}",
        "Billing > Documents": f"/clients/{client}/billing",
        "Billing profile": f"/clients/{client}/profile",
        "Cards and autopay": f"/clients/{client}/cards",
        "New Statement": "/statements/new",
        "Billing Settings": "/settings",
        "Payouts": "/payouts",
        "Emails": "/emails",
        "New Good Faith Estimate": f"/estimates/new?client_id={client}",
        "Reports": "/reports",
        "Reports, payments by clinician": "/reports?group_by=clinician",
    }
    for kind, path in (("statement", "statements"), ("superbill", "superbills"), ("good_faith_estimate", "estimates")):
        if kind in docs:
            pages[kind.replace("_", " ").capitalize()] = f"/{path}/{docs[kind]}"
    return pages


class DemoFailed(RuntimeError):
    """scripts.demo did not finish: its output says why."""


@asynccontextmanager
async def demo_stack() -> AsyncIterator[tuple[Stack, str]]:
    """The five services and the web service as processes on a database and topics of their
    own, the demo practice loaded: (the stack, the web's address). Also used by
    scripts.screenshots."""
    async with isolated_settings() as base:
        with smtp_server() as (inbox, smtp_port):
            async with running_services(base, inbox, smtp_port) as stack:
                port = free_port()
                stack.env.update(WEB_PORT=str(port))
                stack.settings = stack.settings.model_copy(update={"web_port": port})
                stack.env.update(DEMO_WAIT_SCALE="10")  # a busy machine renders PDFs slowly; the demo waits
                stack.start("web")
                await stack.ready("web")
                print("loading the demo practice (scripts.demo) ...", flush=True)
                demo = await asyncio.to_thread(
                    subprocess.run, [sys.executable, "-m", "scripts.demo"], cwd=ROOT, env=stack.env,
                    capture_output=True, text=True, timeout=900,
                )  # fmt: skip
                if demo.returncode != 0:
                    raise DemoFailed(demo.stdout[-3000:] + demo.stderr[-3000:])
                yield stack, f"http://127.0.0.1:{port}"


async def main(rounds: int, screenshots: bool) -> int:
    try:
        async with demo_stack() as (stack, web):
            token = issue_token(DEMO_PRACTICE, "staff")
            urls = {s: stack.url(s) for s in ("billing", "payments", "documents", "notifications", "reports")}
            async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
                pages = await staff_pages(api, urls)
            async with httpx.AsyncClient(base_url=web, cookies={"tb_session": token}, timeout=30) as http:
                results = await measure(http, pages, rounds)
            if screenshots:  # the demo is loaded already: the README's screenshots too
                from scripts.screenshots import take

                await take(stack.url("billing"), web)
    except DemoFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    report(results, rounds)
    return 0


async def measure(http: httpx.AsyncClient, pages: dict[str, str], rounds: int) -> dict[str, Any]:
    for path in pages.values():  # warm-up: connections, the practice's settings cache, templates
        (await http.get(path)).raise_for_status()
    results: dict[str, Any] = {name: {"total": [], "api": []} for name in pages}
    for _ in range(rounds):
        for name, path in pages.items():
            start = time.perf_counter()
            response = await http.get(path)
            elapsed = (time.perf_counter() - start) * 1000
            response.raise_for_status()
            results[name]["total"].append(elapsed)
            results[name]["api"].append(api_ms(response))
    return results


def report(results: dict[str, Any], rounds: int) -> None:
    print(f"\nstaff pages, {rounds} requests each, one at a time (ms); target p95 < {TARGET_MS}")
    print(f"{'page':30} {'p50':>7} {'p95':>7} {'API p95':>8}  ")
    met = True
    for name, r in results.items():
        p95 = p(r["total"], 95)
        ok = p95 < TARGET_MS
        met &= ok
        print(f"{name:30} {p(r['total'], 50):7.1f} {p95:7.1f} {p(r['api'], 95):8.1f}  {'ok' if ok else 'OVER'}")
    print("\nall pages met the target" if met else "\nsome pages are over the target")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--screenshots"]
    sys.exit(asyncio.run(main(int(args[0]) if args else 30, "--screenshots" in sys.argv)))
