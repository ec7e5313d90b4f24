"""The portal's payment plans: each plan the practice set up with the client, its schedule, the
next installment to be charged and the plan's status (payments owns the plan and charges it)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.portal.documents import ClientViewer, client_id
from services.web.views import render

router = APIRouter(prefix="/portal", tags=["portal"])


def next_installment(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The first installment still to be charged, while the plan is active."""
    if plan["status"] != "active":
        return None
    return next((i for i in plan["schedule"] if i["status"] == "scheduled"), None)


@router.get("/plans", response_class=HTMLResponse)
async def plans(request: Request, viewer: ClientViewer) -> HTMLResponse:
    items = (await viewer.api.get("payments", f"/v1/clients/{client_id(viewer)}/payment-plans"))["items"]
    for plan in items:
        plan["next"] = next_installment(plan)
        plan["paid_cents"] = sum(i["amount_cents"] for i in plan["schedule"] if i["status"] == "paid")
    return render(request, "portal/plans.html", nav="plans", plans=items)
