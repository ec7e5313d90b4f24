"""A client's payment plans on their Cards and autopay tab: start one over open bills (an
authorized card, installments, frequency, first date) and cancel an active one; payments owns
the plan and charges it each night."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.clients import cards_page
from services.web.staff.forms import FormError, key_of, text

router = APIRouter(tags=["staff"])


def plan_body(form: FormData) -> dict[str, Any]:
    """The plan as payments takes it, from the Start Payment Plan form."""
    bill_ids = [str(v) for v in form.getlist("bill_id") if str(v).strip()]
    if not bill_ids:
        raise FormError("Choose at least one open bill.")
    installments = text(form, "installments") or ""
    if not installments.isdigit() or not 1 <= int(installments) <= 120:
        raise FormError("Installments must be a whole number from 1 to 120.")
    start_date, card_id = text(form, "start_date"), text(form, "card_id")
    if not start_date:
        raise FormError("Enter the first payment date.")
    if not card_id:
        raise FormError("Choose an authorized card.")
    return {"bill_ids": bill_ids, "installments": int(installments), "frequency": text(form, "frequency") or "monthly",
            "start_date": start_date, "card_id": card_id}  # fmt: skip


@router.post("/clients/{client_id}/payment-plans", response_class=HTMLResponse)
async def start_plan(request: Request, viewer: StaffViewer, client_id: str) -> Response:
    form = await request.form()
    try:
        body = plan_body(form)
        await viewer.api.post("payments", f"/v1/clients/{client_id}/payment-plans", body, key=key_of(form))
    except (FormError, ApiProblem) as exc:
        status, message = (exc.status, exc.message) if isinstance(exc, ApiProblem) else (422, str(exc))
        return await cards_page(request, viewer, client_id, status_code=status, plan_error=message)
    return RedirectResponse(f"/clients/{client_id}/cards?done=plan", status_code=303)


@router.post("/clients/{client_id}/payment-plans/{plan_id}/cancel", response_class=HTMLResponse)
async def cancel_plan(request: Request, viewer: StaffViewer, client_id: str, plan_id: str) -> Response:
    try:
        await viewer.api.post("payments", f"/v1/payment-plans/{plan_id}/cancel")
    except ApiProblem as exc:
        return await cards_page(request, viewer, client_id, status_code=exc.status, plan_error=exc.message)
    return RedirectResponse(f"/clients/{client_id}/cards?done=plan_cancelled", status_code=303)
