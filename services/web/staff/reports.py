"""Reports (reports' `/v1/reports/...`): receivables aging by days past due and revenue per month,
each as a chart (Chart.js, drawn from the page's own table) beside the table screen readers read,
and the CSVs passed through from the reports service."""

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
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
CSV_REPORTS = {"aging": "/v1/reports/aging", "revenue": "/v1/reports/revenue"}


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request, viewer: StaffViewer, as_of: str = "") -> HTMLResponse:
    """`as_of` (a date) ages the open balances as on that day; the reports service checks it."""
    aging, revenue = await asyncio.gather(
        viewer.api.get("reports", "/v1/reports/aging", as_of=as_of),
        viewer.api.get("reports", "/v1/reports/revenue", group_by="month"),
    )
    for row in revenue["rows"]:
        row["month"] = month_name(row["key"])
    return render(
        request, "staff/reports.html", nav="reports", aging=aging, revenue=revenue, buckets=AGING_BUCKETS, as_of=as_of
    )


def month_name(key: Any) -> str:
    """ "2026-11" → "Nov 2026" (a key that is not a month is shown as it is)."""
    try:
        day = dt.date.fromisoformat(f"{str(key)[:7]}-01")
    except ValueError:
        return str(key or "")
    return f"{day.strftime('%b')} {day.year}"


@router.get("/reports/{name}.csv")
async def report_csv(viewer: StaffViewer, name: str, as_of: str = "") -> Response:
    """The reports service's own CSV (it needs the staff bearer token, which stays server-side)."""
    path = CSV_REPORTS.get(name)
    if path is None:
        raise HTTPException(404)
    params = {"format": "csv", **({"group_by": "month"} if name == "revenue" else {"as_of": as_of} if as_of else {})}
    upstream = await viewer.api.request("GET", "reports", path, params=params)
    disposition = upstream.headers.get("content-disposition", f'attachment; filename="{name}.csv"')
    return Response(
        upstream.content, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition}
    )
