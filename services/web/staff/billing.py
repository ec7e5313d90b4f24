"""The Client Billing page: Unbilled sessions, Open and Paid bills, with totals and a client filter."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.auth import StaffViewer
from services.web.views import render

router = APIRouter(tags=["staff"])


async def client_names(viewer: StaffViewer) -> dict[str, str]:
    clients = (await viewer.api.get("billing", "/v1/clients"))["items"]
    return {c["id"]: f"{c['first_name']} {c['last_name']}" for c in clients}


@router.get("/billing", response_class=HTMLResponse)
async def client_billing(request: Request, viewer: StaffViewer, client_id: str | None = None) -> HTMLResponse:
    api = viewer.api
    unbilled, open_bills, paid_bills, names = await asyncio.gather(
        api.get("billing", "/v1/unbilled-sessions", client_id=client_id, limit=200),
        api.get("billing", "/v1/bills", status="open", client_id=client_id, limit=200),
        api.get("billing", "/v1/bills", status="paid", client_id=client_id, limit=50),
        client_names(viewer),
    )
    sections: dict[str, Any] = {
        "unbilled": unbilled["items"],
        "open": open_bills["items"],
        "paid": paid_bills["items"],
    }
    return render(
        request,
        "staff/client_billing.html",
        nav="billing",
        client_id=client_id or "",
        names=names,
        more={"unbilled": bool(unbilled["next_cursor"]), "paid": bool(paid_bills["next_cursor"])},
        totals={
            "unbilled": sum(s["amount_cents"] for s in sections["unbilled"]),
            "open": sum(b["balance_cents"] for b in sections["open"]),
            "paid": sum(b["paid_cents"] for b in sections["paid"]),
        },
        **sections,
    )
