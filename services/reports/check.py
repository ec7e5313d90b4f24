"""`python -m services.reports check [PRACTICE_ID]`: the journal's receivables per client
against the open balances billing shows (through billing's HTTP API, never its database).
Prints each difference and exits 1 when there is any, like the services' drift checks."""

import json
from collections import defaultdict
from typing import Any

import httpx

from services.reports import queries
from shared.auth import issue_token
from shared.db import Database
from shared.settings import Settings


async def billing_balances(http: httpx.AsyncClient, practice_id: str, secret: str) -> dict[str, int]:
    """Per client, the balances of the bills that are not cancelled (every page of GET /v1/bills)."""
    headers = {"Authorization": f"Bearer {issue_token(practice_id, 'staff', secret=secret)}"}
    balances: dict[str, int] = defaultdict(int)
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await http.get("/v1/bills", params=params, headers=headers)
        response.raise_for_status()
        page = response.json()
        for bill in page["items"]:
            if bill["status"] != "cancelled":
                balances[bill["client_id"]] += int(bill["balance_cents"])
        cursor = page.get("next_cursor")
        if not cursor:
            return dict(balances)


def differences(journal: dict[str, int], billing: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"client_id": c, "journal_cents": journal.get(c, 0), "billing_cents": billing.get(c, 0)}
        for c in sorted(journal.keys() | billing.keys())
        if journal.get(c, 0) != billing.get(c, 0)
    ]


async def check(settings: Settings, practice_id: str | None) -> dict[str, Any]:
    db = Database(settings.database_url("reports"), "reports")
    try:
        async with db.transaction() as session:
            practices = [practice_id] if practice_id else await queries.practice_ids(session)
            journal = {p: await queries.receivables(session, p) for p in practices}
    finally:
        await db.dispose()
    report: dict[str, Any] = {"practices": {}}
    async with httpx.AsyncClient(base_url=settings.service_url("billing"), timeout=30) as http:
        for p in practices:
            billing = await billing_balances(http, p, settings.auth_secret)
            report["practices"][p] = {"clients_checked": len(journal[p].keys() | billing.keys()),
                                      "differences": differences(journal[p], billing)}  # fmt: skip
    report["difference_count"] = sum(len(r["differences"]) for r in report["practices"].values())
    return report


async def run_check(settings: Settings, practice_id: str | None) -> int:
    report = await check(settings, practice_id)
    print(json.dumps(report, indent=2))
    return 1 if report["difference_count"] else 0
