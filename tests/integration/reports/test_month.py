"""A scripted month (month.py) through the real reports service: aging, payments, revenue and
journal answers against figures worked out by hand, the CSVs, who may read them, and a rebuild
from the topics that gives the same answers."""

import asyncio
import csv
import io
import json
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request

from services.reports.check import run_check
from services.reports.rebuild import caught_up, ends, rebuild
from shared.auth import decode_token, issue_token
from tests.conftest import eventually
from tests.integration.reports.conftest import Reports, start_reports
from tests.integration.reports.month import PRACTICE, script
from tests.processes import free_port

OCT = {"from": "2026-10-01", "to": "2026-10-31"}


async def settle(reports: Reports) -> None:
    """Wait until the reports consumers committed past everything published."""
    targets = {c.topic: await ends(reports.settings, c.topic) for c in reports.svc.consumers}
    await eventually(lambda: caught_up(reports.settings, targets), timeout=30, interval=0.2)


@pytest.fixture(scope="module")
async def month(reports: Reports, kafka_producer: Any) -> Reports:
    for topic, key, event in script():
        value = json.dumps(event).encode()
        headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        await kafka_producer.send_and_wait(reports.settings.topic(topic), value, key=key.encode(), headers=headers)
    await settle(reports)
    return reports


def buckets(current: int = 0, d1_30: int = 0, d31_60: int = 0, d61_90: int = 0, d90_plus: int = 0) -> dict[str, int]:
    return {"current": current, "d1_30": d1_30, "d31_60": d31_60, "d61_90": d61_90, "d90_plus": d90_plus}


async def check_aging(r: Reports) -> None:
    # Oct 31: B1 40.00 (due Oct 15, 16 days late), B3 70.00 (due Oct 19, 12), B4 30.00 (due Oct 24,
    # 7; the insurer paid its 170.00), B7 90.00 (due Jun 15, 138 days); B2 paid, B5 cancelled.
    aging = await r.get("/v1/reports/aging", PRACTICE, as_of="2026-10-31")
    assert aging["as_of"] == "2026-10-31" and aging["currency"] == "USD"
    assert aging["buckets"] == buckets(d1_30=14000, d90_plus=9000)
    assert aging["by_payer"] == {"client": buckets(d1_30=14000, d90_plus=9000), "insurance": buckets()}
    assert aging["clients"] == [
        {
            "client_id": "c2",
            "client_name": "Ben Okri",
            "buckets": buckets(d1_30=7000, d90_plus=9000),
            "total_cents": 16000,
        },
        {"client_id": "c1", "client_name": "Ada Lovelace", "buckets": buckets(d1_30=4000), "total_cents": 4000},
        {"client_id": "c3", "client_name": "Cy Young", "buckets": buckets(d1_30=3000), "total_cents": 3000},
    ]
    # Oct 26: B1 and B2 paid, B3 70.00 (7 days late), B4 200.00 unpaid (2 days late: insurer 170.00,
    # client copay 30.00), B5 cancelled the day before, B7 90.00.
    aging = await r.get("/v1/reports/aging", PRACTICE, as_of="2026-10-26")
    assert aging["buckets"] == buckets(d1_30=27000, d90_plus=9000)
    assert aging["by_payer"] == {"client": buckets(d1_30=10000, d90_plus=9000), "insurance": buckets(d1_30=17000)}
    # Oct 10: B2 150.00, B3 120.00 and B4 200.00 not yet due; B1 paid on Oct 2; B7 90.00 (117 days).
    aging = await r.get("/v1/reports/aging", PRACTICE, as_of="2026-10-10")
    assert aging["buckets"] == buckets(current=47000, d90_plus=9000)
    # Dec 15: B1 40.00 61 days late, B3 70.00 57, B4 30.00 52, B7 90.00.
    aging = await r.get("/v1/reports/aging", PRACTICE, as_of="2026-12-15")
    assert aging["buckets"] == buckets(d31_60=10000, d61_90=4000, d90_plus=9000)


def prow(key: Any, payments: int, refunds: int, count: int) -> dict[str, Any]:
    return {
        "key": key,
        "payments_cents": payments,
        "refunds_cents": refunds,
        "net_cents": payments - refunds,
        "count": count,
    }


async def check_payments(r: Reports) -> None:
    # P1 card 150.00, refunded 40.00; P2 cash 50.00; P4 check 200.00; P3 insurer check 170.00.
    by_method = await r.get("/v1/reports/payments", PRACTICE, group_by="method", **OCT)
    assert by_method["rows"] == [prow("card", 15000, 4000, 1), prow("cash", 5000, 0, 1), prow("check", 37000, 0, 2)]
    totals = {"payments_cents": 57000, "refunds_cents": 4000, "net_cents": 53000, "count": 4}
    assert by_method["totals"] == totals
    # P2 was paid at 22:30 on Oct 12 in New York (Oct 13 in UTC).
    by_day = await r.get("/v1/reports/payments", PRACTICE, group_by="day", **OCT)
    assert by_day["rows"] == [
        prow("2026-10-02", 15000, 0, 1),
        prow("2026-10-12", 5000, 0, 1),
        prow("2026-10-23", 20000, 0, 1),
        prow("2026-10-28", 0, 4000, 0),
        prow("2026-10-30", 17000, 0, 1),
    ]
    assert by_day["totals"] == totals
    # k1 saw s1 (B1) and s2 (B2), k2 saw s3 (B3) and s4 (B4); P4's 50.00 of credit has no clinician.
    by_clinician = await r.get("/v1/reports/payments", PRACTICE, group_by="clinician", **OCT)
    assert by_clinician["rows"] == [
        prow("k1", 30000, 4000, 2) | {"label": "Dana Reyes, LCSW"},
        prow("k2", 22000, 0, 2) | {"label": "Eli Park, PhD"},
        prow(None, 5000, 0, 1) | {"label": None},
    ]
    assert by_clinician["totals"] == totals
    only_the_12th = await r.get(
        "/v1/reports/payments", PRACTICE, group_by="method", **{"from": "2026-10-12", "to": "2026-10-12"}
    )
    assert only_the_12th["rows"] == [prow("cash", 5000, 0, 1)]


def rev(key: Any, billed: int, collected: int, outstanding: int, adjusted: int = 0) -> dict[str, Any]:
    return {"key": key, "billed_cents": billed, "collected_cents": collected, "adjusted_cents": adjusted,
            "outstanding_cents": outstanding}  # fmt: skip


async def check_revenue(r: Reports) -> None:
    # October bills: B1 150.00 (110.00 in), B2 150.00 (paid), B3 120.00 (50.00 in), B4 200.00
    # (170.00 in); B5 cancelled counts for nothing.
    by_month = await r.get("/v1/reports/revenue", PRACTICE, group_by="month")
    assert by_month["rows"] == [rev("2026-06", 9000, 0, 9000), rev("2026-10", 62000, 48000, 14000)]
    assert by_month["totals"] == {
        "billed_cents": 71000,
        "collected_cents": 48000,
        "adjusted_cents": 0,
        "outstanding_cents": 23000,
    }
    by_clinician = await r.get("/v1/reports/revenue", PRACTICE, group_by="clinician", **OCT)
    assert by_clinician["rows"] == [
        rev("k1", 30000, 26000, 4000) | {"label": "Dana Reyes, LCSW"},
        rev("k2", 32000, 22000, 10000) | {"label": "Eli Park, PhD"},
    ]
    by_code = await r.get("/v1/reports/revenue", PRACTICE, group_by="service_code", **OCT)
    assert by_code["rows"] == [rev("90834", 12000, 5000, 7000), rev("90837", 50000, 43000, 7000)]


def lines(*pairs: tuple[str, int, int]) -> list[dict[str, Any]]:
    return [{"account": a, "debit_cents": d, "credit_cents": c} for a, d, c in pairs]


EXPECTED_OCTOBER = [
    ("2026-10-01", "bill", "b1", lines(("accounts_receivable", 15000, 0), ("service_revenue", 0, 15000))),
    ("2026-10-02", "payment", "p1", lines(("stripe_clearing", 15000, 0), ("accounts_receivable", 0, 15000))),
    ("2026-10-05", "bill", "b3", lines(("accounts_receivable", 12000, 0), ("service_revenue", 0, 12000))),
    ("2026-10-08", "bill", "b2", lines(("accounts_receivable", 15000, 0), ("service_revenue", 0, 15000))),
    ("2026-10-10", "bill", "b4", lines(("accounts_receivable", 3000, 0), ("insurance_receivable", 17000, 0),
                                       ("service_revenue", 0, 20000))),
    ("2026-10-12", "payment", "p2", lines(("undeposited_funds", 5000, 0), ("accounts_receivable", 0, 5000))),
    ("2026-10-15", "credit_adjustment", "ce1", lines(("discounts", 1000, 0), ("client_credit", 0, 1000))),
    ("2026-10-20", "bill", "b5", lines(("accounts_receivable", 18000, 0), ("service_revenue", 0, 18000))),
    ("2026-10-23", "payment", "p4", lines(("undeposited_funds", 20000, 0), ("accounts_receivable", 0, 15000),
                                          ("client_credit", 0, 5000))),
    ("2026-10-25", "bill", "b5", lines(("service_revenue", 18000, 0), ("accounts_receivable", 0, 18000))),
    ("2026-10-28", "refund", "r1", lines(("accounts_receivable", 4000, 0), ("stripe_clearing", 0, 4000))),
    ("2026-10-30", "payment", "p3", lines(("undeposited_funds", 17000, 0), ("insurance_receivable", 0, 17000))),
]  # fmt: skip


async def check_journal(r: Reports) -> list[dict[str, Any]]:
    journal = await r.get("/v1/journal", PRACTICE, **OCT)
    got = [(e["date"], e["source"]["kind"], e["source"]["id"], e["lines"]) for e in journal["items"]]
    assert got == EXPECTED_OCTOBER
    assert journal["next_cursor"] is None
    # Paging walks the same entries.
    first = await r.get("/v1/journal", PRACTICE, limit=5, **OCT)
    rest = await r.get("/v1/journal", PRACTICE, limit=50, cursor=first["next_cursor"], **OCT)
    assert [e["entry_id"] for e in first["items"] + rest["items"]] == [e["entry_id"] for e in journal["items"]]
    return journal["items"]


async def test_a_month_gives_the_figures_worked_out_by_hand(month: Reports) -> None:
    await check_aging(month)
    await check_payments(month)
    await check_revenue(month)
    await check_journal(month)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csvs_have_the_columns_asked_for(month: Reports) -> None:
    staff = month.staff(PRACTICE)
    response = await month.http.get("/v1/journal", params=OCT, headers=staff | {"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = parse_csv(response.text)
    assert list(rows[0]) == ["JournalNo", "JournalDate", "AccountName", "Debits", "Credits", "Description"]
    p4 = [r for r in rows if r["JournalDate"] == "2026-10-23"]
    assert [(r["JournalNo"], r["AccountName"], r["Debits"], r["Credits"]) for r in p4] == [
        ("9", "Undeposited Funds", "200.00", ""),
        ("9", "Accounts Receivable", "", "150.00"),
        ("9", "Client Credit", "", "50.00"),
    ]
    assert len({r["JournalNo"] for r in rows}) == 12
    aging = parse_csv(
        (await month.http.get("/v1/reports/aging", params={"as_of": "2026-10-31", "format": "csv"}, headers=staff)).text
    )
    assert aging[0] == {"client_id": "c2", "client_name": "Ben Okri", "current": "0", "d1_30": "7000", "d31_60": "0",
                        "d61_90": "0", "d90_plus": "9000", "total_cents": "16000"}  # fmt: skip
    payments = parse_csv(
        (await month.http.get("/v1/reports/payments", params=OCT | {"format": "csv"}, headers=staff)).text
    )
    assert payments[0] == {
        "key": "card",
        "payments_cents": "15000",
        "refunds_cents": "4000",
        "net_cents": "11000",
        "count": "1",
    }
    revenue = parse_csv((await month.http.get("/v1/reports/revenue", params={"format": "csv"}, headers=staff)).text)
    assert list(revenue[1].values()) == ["2026-10", "62000", "48000", "0", "14000"]
    assert list(revenue[1]) == ["key", "billed_cents", "collected_cents", "adjusted_cents", "outstanding_cents"]


async def test_staff_of_the_practice_only(month: Reports) -> None:
    client = issue_token(PRACTICE, "client", "c1", secret=month.settings.auth_secret)
    for path in ("/v1/reports/aging", "/v1/reports/payments", "/v1/reports/revenue", "/v1/journal"):
        assert (await month.http.get(path, headers={"Authorization": f"Bearer {client}"})).status_code == 403
        assert (await month.http.get(path)).status_code == 401
    other = await month.get("/v1/journal", "another-practice")
    assert other["items"] == []
    assert (await month.get("/v1/reports/aging", "another-practice", as_of="2026-10-31"))["clients"] == []
    bad = await month.http.get(
        "/v1/reports/payments", params={"from": "2026-11-01", "to": "2026-10-01"}, headers=month.staff(PRACTICE)
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_range"


async def test_rebuild_from_the_topics_gives_the_same_answers(month: Reports) -> None:
    paths = [
        ("/v1/reports/aging", {"as_of": "2026-10-31"}),
        ("/v1/reports/payments", OCT | {"group_by": "clinician"}),
        ("/v1/reports/revenue", {"group_by": "service_code"}),
        ("/v1/journal", {}),
    ]
    before = [await month.get(p, PRACTICE, **q) for p, q in paths]
    await month.svc.stop()
    await rebuild(month.settings)
    svc, again, http = await start_reports(month.settings)
    try:
        await settle(again)
        assert [await again.get(p, PRACTICE, **q) for p, q in paths] == before
        await check_aging(again)
        await check_payments(again)
        await check_revenue(again)
        await check_journal(again)
    finally:
        await http.aclose()
        await svc.stop()
        await month.svc.start()  # the module fixture stops it again


class BillingStandIn:
    """GET /v1/bills over real HTTP as billing answers it (pages of 2), staff of the practice only."""

    def __init__(self, secret: str, bills: list[dict[str, Any]]) -> None:
        self.bills = bills
        self.port = free_port()
        app = FastAPI()

        @app.get("/v1/bills")
        async def list_bills(request: Request, cursor: str | None = None) -> Any:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if decode_token(token, secret).practice_id != PRACTICE:
                return {"items": [], "next_cursor": None}
            start = int(cursor or 0)
            more = start + 2 < len(self.bills)
            return {"items": self.bills[start : start + 2], "next_cursor": str(start + 2) if more else None}

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    async def __aenter__(self) -> "BillingStandIn":
        self.task = asyncio.create_task(self.server.serve())
        await eventually(lambda: self.server.started, timeout=10, interval=0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self.task


def bill(client_id: str, status: str, balance: int) -> dict[str, Any]:
    return {"id": f"{client_id}-{status}-{balance}", "client_id": client_id, "status": status, "balance_cents": balance}


async def test_check_compares_the_journal_with_billing_balances(month: Reports, capsys: Any) -> None:
    # What billing shows after the month: B1 40.00, B2 0 (c1); B3 70.00, B7 90.00, B5 cancelled (c2); B4 30.00 (c3).
    bills = [bill("c1", "open", 4000), bill("c1", "paid", 0), bill("c2", "open", 7000), bill("c2", "open", 9000),
             bill("c2", "cancelled", 18000), bill("c3", "open", 3000)]  # fmt: skip
    async with BillingStandIn(month.settings.auth_secret, bills) as billing:
        settings = month.settings.model_copy(update={"billing_url": f"http://127.0.0.1:{billing.port}"})
        assert await run_check(settings, PRACTICE) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["practices"][PRACTICE] == {"clients_checked": 3, "differences": []}
        billing.bills[3] = bill("c2", "open", 8000)  # billing says 10.00 less than the journal
        assert await run_check(settings, PRACTICE) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["practices"][PRACTICE]["differences"] == [
            {"client_id": "c2", "journal_cents": 16000, "billing_cents": 15000}
        ]
