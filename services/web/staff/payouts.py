"""Payouts from Headway, Alma and other platforms: record one, and see per session what was
expected, what was received and the difference (payments' reconciliation)."""

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web import format as fmt
from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.staff.forms import FormError, amount, key_of, new_key, text
from services.web.views import render

router = APIRouter(tags=["staff"])
LINES = 5


def remittance_body(form: Any, timezone: str) -> dict[str, Any]:
    lines = []
    for i in range(LINES):
        session_id = text(form, f"session_{i}")
        if session_id:
            lines.append(
                {"session_id": session_id, "amount_cents": amount(form, f"amount_{i}", f"amount of line {i + 1}")}
            )
    if not lines:
        raise FormError("Give at least one session and its amount.")
    received = text(form, "received_at")
    if not received:
        raise FormError("Give the date and time the payout was received.")
    return {
        "payer": text(form, "payer"),
        "reference": text(form, "reference"),
        "received_at": fmt.from_local_input(received, timezone).isoformat(),
        "lines": lines,
    }


async def payouts_page(request: Request, viewer: StaffViewer, payer: str, **extra: Any) -> HTMLResponse:
    data, names = await asyncio.gather(
        viewer.api.get("payments", "/v1/payer-reconciliation", payer=payer or None), client_names(viewer)
    )
    payers = [p.strip() for p in request.app.state.settings.third_party_payers.split(",") if p.strip()]
    return render(
        request,
        "staff/payouts.html",
        status_code=extra.pop("status_code", 200),
        nav="payouts",
        payer=payer,
        payers=payers,
        data=data,
        names=names,
        lines=range(LINES),
        now=dt.datetime.now(dt.UTC),
        idempotency_key=new_key(),
        **extra,
    )


@router.get("/payouts", response_class=HTMLResponse)
async def payouts(request: Request, viewer: StaffViewer, payer: str = "") -> HTMLResponse:
    return await payouts_page(request, viewer, payer)


@router.post("/payouts", response_class=HTMLResponse)
async def record_payout(request: Request, viewer: StaffViewer) -> Response:
    form = await request.form()
    try:
        body = remittance_body(form, request.state.practice.get("timezone") or "UTC")
        await viewer.api.post("payments", "/v1/payer-remittances", body, key=key_of(form))
    except (FormError, ValueError, ApiProblem) as exc:
        message = exc.message if isinstance(exc, ApiProblem) else str(exc)
        status = exc.status if isinstance(exc, ApiProblem) else 422
        return await payouts_page(request, viewer, text(form, "payer") or "", status_code=status, error=message)
    return RedirectResponse(f"/payouts?payer={body['payer']}&done=1", status_code=303)
