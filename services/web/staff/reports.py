"""Reports (reports' `/v1/reports/...`): receivables aging by days past due, revenue per month and
payments by method, day or clinician over a date range (From / To), each beside the table screen
readers read (aging and revenue also as Chart.js charts drawn from it), and the reports service's
CSVs passed through with the same range."""

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.web.auth import StaffViewer
from services.web.views import render

router = APIRouter(tags=["staff"])

AGING_BUCKETS = {
    "current": "Current",
    "d1_30": "1–30 days",
    "d31_60": "31–60 days",
    "d61_90": "61–90 days",
    "d90_plus": "Over 90 days",
}
PAYMENT_GROUPS = {"method": "Method", "day": "Day", "clinician": "Clinician"}
PaymentsGroup = Literal["method", "day", "clinician"]
From = Annotated[str, Query(alias="from", max_length=10)]
To = Annotated[str, Query(alias="to", max_length=10)]
CSV_REPORTS = {"aging": "/v1/reports/aging", "revenue": "/v1/reports/revenue", "payments": "/v1/reports/payments"}
METHODS = {"card": "Card", "cash": "Cash", "check": "Check", "credit": "Credit", "other": "Other"}


def ranged(start: str, end: str) -> dict[str, str]:
    """The reports service's `from` / `to` (it checks them and answers a bad range in words)."""
    return {k: v for k, v in (("from", start), ("to", end)) if v}


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request, viewer: StaffViewer, as_of: str = "", start: From = "", end: To = "",
    group_by: PaymentsGroup = "method",
) -> HTMLResponse:  # fmt: skip
    """`as_of` (a date) ages the open balances as on that day; `from` / `to` bound revenue and
    payments."""
    period = ranged(start, end)
    aging, revenue, payments = await asyncio.gather(
        viewer.api.get("reports", "/v1/reports/aging", as_of=as_of),
        viewer.api.get("reports", "/v1/reports/revenue", group_by="month", **period),
        viewer.api.get("reports", "/v1/reports/payments", group_by=group_by, **period),
    )
    for row in revenue["rows"]:
        row["month"] = month_name(row["key"])
    for row in payments["rows"]:
        row["name"] = payment_key(group_by, row)
    return render(
        request, "staff/reports.html", nav="reports", aging=aging, revenue=revenue, payments=payments,
        buckets=AGING_BUCKETS, groups=PAYMENT_GROUPS, group_by=group_by, as_of=as_of, start=start, end=end,
    )  # fmt: skip


def month_name(key: Any) -> str:
    """ "2026-11" → "Nov 2026" (a key that is not a month is shown as it is)."""
    try:
        day = dt.date.fromisoformat(f"{str(key)[:7]}-01")
    except ValueError:
        return str(key or "")
    return f"{day.strftime('%b')} {day.year}"


def payment_key(group_by: str, row: dict[str, Any]) -> str:
    """A payments row's name: the method in words, the day as a date, the clinician's name."""
    key = row.get("key")
    if group_by == "method":
        return METHODS.get(str(key), str(key))
    if group_by == "day":
        try:
            day = dt.date.fromisoformat(str(key)[:10])
        except ValueError:
            return str(key or "")
        return f"{day.strftime('%b')} {day.day}, {day.year}"
    return str(row.get("label") or key or "Client credit (no session)")


@router.get("/reports/{name}.csv")
async def report_csv(
    viewer: StaffViewer, name: str, as_of: str = "", start: From = "", end: To = "", group_by: PaymentsGroup = "method"
) -> Response:
    """The reports service's own CSV (it needs the staff bearer token, which stays server-side)."""
    path = CSV_REPORTS.get(name)
    if path is None:
        raise HTTPException(404)
    params: dict[str, str] = {"format": "csv"}
    if name == "aging":
        params |= {"as_of": as_of} if as_of else {}
    else:
        params |= ranged(start, end) | {"group_by": "month" if name == "revenue" else group_by}
    upstream = await viewer.api.request("GET", "reports", path, params=params)
    disposition = upstream.headers.get("content-disposition", f'attachment; filename="{name}.csv"')
    return Response(
        upstream.content, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )
