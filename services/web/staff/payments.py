"""Payments from the bill screen: Add Payment (every type), Refund, and Add Card through a
Stripe SetupIntent with the client's authorization."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.web import format as fmt
from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.bills import bill_page
from services.web.staff.forms import FormError, amount, key_of, text
from services.web.views import render

router = APIRouter(tags=["staff"])

TYPES = {"card", "cash", "credit", "other"}


def payment_body(form: Any, bill: dict[str, Any], timezone: str) -> dict[str, Any]:
    """POST /v1/payments from the Add Payment dialog."""
    kind = text(form, "type")
    if kind not in TYPES:
        raise FormError("Choose a payment type.")
    body: dict[str, Any] = {
        "client_id": bill["client_id"],
        "bill_id": bill["id"],
        "payer": text(form, "payer") or "client",
        "amount_cents": amount(form, "amount", "amount"),
        "notes": text(form, "notes"),
    }
    if body["amount_cents"] == 0:
        raise FormError("The amount must be more than zero.")
    online = kind == "card" and text(form, "online") == "yes"
    if kind == "card":
        body["method"] = "card"
        body["card_id"] = text(form, "card_id")
        body["online"] = online
        if online and not body["card_id"]:
            raise FormError("Choose a card on file (or add one) to charge it online.")
    elif kind == "cash":
        check = text(form, "check_number")
        body["method"] = "check" if check else "cash"
        body["reference"] = check
    elif kind == "credit":
        body["method"] = "credit"
    else:
        body["method"] = "other"
        body["reference"] = text(form, "reference")
    paid_at = text(form, "paid_at")
    if paid_at and not online:
        try:
            body["paid_at"] = fmt.from_local_input(paid_at, timezone).isoformat()
        except ValueError as exc:
            raise FormError("Date and time: give a date and a time.") from exc
    return {k: v for k, v in body.items() if v is not None}


@router.post("/bills/{bill_id}/payments", response_class=HTMLResponse)
async def add_payment(request: Request, viewer: StaffViewer, bill_id: str) -> Response:
    form = await request.form()
    bill = await viewer.api.get("billing", f"/v1/bills/{bill_id}")
    timezone = request.state.practice.get("timezone") or "UTC"
    try:
        await viewer.api.post("payments", "/v1/payments", payment_body(form, bill, timezone), key=key_of(form))
    except FormError as exc:
        return await bill_page(request, viewer, bill_id, status_code=422, error=f"Payment not added: {exc}")
    except ApiProblem as exc:
        return await bill_page(
            request, viewer, bill_id, status_code=exc.status, error=f"Payment not added: {exc.message}"
        )
    return RedirectResponse(f"/bills/{bill_id}?done=payment", status_code=303)


@router.post("/payments/{payment_id}/refund", response_class=HTMLResponse)
async def refund(request: Request, viewer: StaffViewer, payment_id: str) -> Response:
    form = await request.form()
    bill_id = text(form, "bill_id") or ""
    try:
        body = {"amount_cents": amount(form, "amount", "amount"), "reason": text(form, "reason")}
        await viewer.api.post("payments", f"/v1/payments/{payment_id}/refunds", body, key=key_of(form))
    except FormError as exc:
        return await bill_page(request, viewer, bill_id, status_code=422, error=f"Refund not issued: {exc}")
    except ApiProblem as exc:
        return await bill_page(
            request, viewer, bill_id, status_code=exc.status, error=f"Refund not issued: {exc.message}"
        )
    return RedirectResponse(f"/bills/{bill_id}?done=refund", status_code=303)


@router.post("/clients/{client_id}/card-setup")
async def card_setup(viewer: StaffViewer, client_id: str) -> JSONResponse:
    """The SetupIntent's client secret for Stripe.js (called by app.js, CSRF header included)."""
    try:
        return JSONResponse(await viewer.api.post("payments", f"/v1/clients/{client_id}/card-setups"))
    except ApiProblem as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)


@router.post("/clients/{client_id}/cards", response_class=HTMLResponse)
async def add_card(request: Request, viewer: StaffViewer, client_id: str, reply: str = "choice") -> Response:
    """Store the confirmed card with its authorization; answer the fragment the form replaces."""
    form = await request.form()
    if text(form, "authorized") != "yes":
        return HTMLResponse("The cardholder's authorization is required to keep a card on file.", status_code=422)
    body = {
        "stripe_payment_method_id": text(form, "payment_method_id"),
        "authorization": {
            "signed_by": text(form, "signed_by"),
            "signed_at": dt.datetime.now(dt.UTC).isoformat(),
            "method": text(form, "authorization_method") or "paper",
        },
    }
    try:
        card = await viewer.api.post("payments", f"/v1/clients/{client_id}/cards", body)
    except ApiProblem as exc:
        return HTMLResponse(exc.message, status_code=exc.status)
    cards = (await viewer.api.get("payments", f"/v1/clients/{client_id}/cards"))["items"]
    template = "staff/card_choice.html" if reply == "choice" else "staff/card_list.html"
    return render(request, template, cards=cards, selected_card=card["id"], card_saved=True, client_id=client_id)
