"""The README's screenshots, taken in Chromium (Debian's, as the browser tests use it) from the
demo practice: `.venv/bin/python -m scripts.screenshots` (needs ./dev infra; starts its own
services and web on a database of its own and loads scripts.demo, as bench.bench_web does), or
from a web that runs: `... -m scripts.screenshots --web URL --billing URL --practice ID`.

Writes docs/client-billing.png, docs/bill.png (a bill with its payments and adjustments) and
docs/portal-375.png (the client portal at 375 px wide)."""

import asyncio
import os
import sys
from typing import Any

import httpx
from playwright.async_api import Browser, async_playwright

from bench.bench_web import DEMO_PRACTICE, DemoFailed, demo_stack
from shared.auth import issue_token
from tests.processes import ROOT

DOCS = ROOT / "docs"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


async def shoot(browser: Browser, web: str, token: str, path: str, name: str, width: int) -> None:
    """One page as the token's person sees it (session cookie set directly; GETs need no CSRF)."""
    context = await browser.new_context(viewport={"width": width, "height": 900}, base_url=web)
    await context.add_cookies([{"name": "tb_session", "value": token, "url": web}])
    page = await context.new_page()
    await page.goto(path)
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(DOCS / name), full_page=True)
    await context.close()
    print(f"wrote docs/{name}")


def pick_bill(bills: list[dict[str, Any]]) -> dict[str, Any]:
    """The bill that shows most: adjusted and paid in part, else adjusted, else the first open."""
    for wanted in (lambda b: b["adjusted_cents"] and b["paid_cents"], lambda b: b["adjusted_cents"],
                   lambda b: b["status"] == "open"):  # fmt: skip
        found = [b for b in bills if wanted(b)]
        if found:
            return found[0]
    return bills[0]


async def take(billing: str, web: str, practice: str = DEMO_PRACTICE) -> None:
    """The screenshots of a running web and billing (bench.bench_web --screenshots passes its own)."""
    DOCS.mkdir(exist_ok=True)
    staff = issue_token(practice, "staff")
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {staff}"}) as api:
        bills = (await api.get(f"{billing}/v1/bills", params={"limit": 200})).json()["items"]
    bill = pick_bill(bills)
    shared = sorted(bills, key=lambda b: (not b["shared"], b["status"] != "open"))[0]  # shared and open first
    client = issue_token(practice, "client", shared["client_id"])
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        await shoot(browser, web, staff, "/billing", "client-billing.png", 1280)
        await shoot(browser, web, staff, f"/bills/{bill['id']}", "bill.png", 1280)
        await shoot(browser, web, client, "/portal", "portal-375.png", 375)
        await browser.close()


async def main(argv: list[str]) -> int:
    """No arguments: a demo stack of its own. `--web URL --billing URL [--practice ID]`: one that runs."""
    given = dict(zip(argv[::2], argv[1::2], strict=False))
    if "--web" in given and "--billing" in given:
        await take(given["--billing"], given["--web"], given.get("--practice", DEMO_PRACTICE))
        return 0
    try:
        async with demo_stack() as (stack, web):
            await take(stack.url("billing"), web)
    except DemoFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
