"""The new-bill screen and the bill screen: create, share, download, cancel, adjustments (write-off,
discount, bad debt, and Reverse); the payments on a bill (Add Payment, Refund, View in Stripe) are
in payments.py."""

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.auth import StaffViewer, Viewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.staff.forms import FormError, amount, key_of, new_key, percent, text
from services.web.views import render
from shared.stripe_js import stripe_js_src

router = APIRouter(tags=["staff"])


async def unbilled_of(viewer: Viewer, client_id: str) -> list[dict[str, Any]]:
    items = (await viewer.api.get("billing", "/v1/unbilled-sessions", client_id=client_id, limit=200))["items"]
    return sorted(items, key=lambda s: (s["date_of_service"], s["session_id"]))


@router.get("/bills/new", response_class=HTMLResponse)
async def new_bill(
    request: Request, viewer: StaffViewer, client_id: str | None = None, session_id: str | None = None
) -> HTMLResponse:
    sessions: list[dict[str, Any]] = []
    profile: dict[str, Any] = {}
    if client_id:
        names, sessions, profile = await asyncio.gather(
            client_names(viewer),
            unbilled_of(viewer, client_id),
            viewer.api.get("billing", f"/v1/clients/{client_id}/billing-profile"),
        )
    else:
        names = await client_names(viewer)
    chosen = {session_id} if session_id else {s["session_id"] for s in sessions}
    return render(
        request,
        "staff/new_bill.html",
        nav="billing",
        names=names,
        client_id=client_id or "",
        sessions=sessions,
        chosen=chosen,
        values={"responsibility": profile.get("default_responsibility", "client")},
        profile=profile,
        idempotency_key=new_key(),
    )


def bill_body(form: Any, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /v1/bills from the form: the checked sessions, each line's service and price."""
    chosen = [str(s) for s in form.getlist("session")]
    if not chosen:
        raise FormError("Choose at least one session to bill.")
    known = {s["session_id"]: s for s in sessions}
    lines = []
    for session_id in chosen:
        if session_id not in known:
            raise FormError("A chosen session is no longer unbilled; reload the page.")
        for i, service in enumerate(known[session_id]["services"]):
            prefix = f"line-{session_id}-{i}"
            code = text(form, f"{prefix}-code") or service["code"]
            price = amount(form, f"{prefix}-price", f"price of {service['code']}")
            lines.append(
                {
                    "session_id": session_id,
                    "code": code,
                    "description": service.get("description"),
                    "amount_cents": price,
                }
            )
    responsibility = text(form, "responsibility") or "client"
    body: dict[str, Any] = {
        "client_id": text(form, "client_id"),
        "session_ids": chosen,
        "responsibility": responsibility,
        "lines": lines,
        "comments": text(form, "comments"),
        "due_date": text(form, "due_date"),
    }
    if responsibility == "insurance":
        copay = amount(form, "copay", "co-pay", required=False)
        coinsurance = percent(form, "coinsurance", "co-insurance")
        if copay is not None and coinsurance is not None:
            raise FormError("Give a co-pay or a co-insurance, not both.")
        body["copay_cents"] = copay
        body["coinsurance_percent"] = coinsurance
    return {k: v for k, v in body.items() if v is not None}


@router.post("/bills/new", response_class=HTMLResponse)
async def create_bill(request: Request, viewer: StaffViewer) -> Response:
    form = await request.form()
    client_id = text(form, "client_id") or ""
    sessions = await unbilled_of(viewer, client_id) if client_id else []
    try:
        body = bill_body(form, sessions)
        bill = await viewer.api.post("billing", "/v1/bills", body, key=key_of(form))
    except (FormError, ApiProblem) as exc:
        return render(
            request,
            "staff/new_bill.html",
            status_code=422 if isinstance(exc, FormError) else exc.status,
            nav="billing",
            names=await client_names(viewer),
            client_id=client_id,
            sessions=sessions,
            chosen=set(form.getlist("session")),
            values=form,
            profile={},
            idempotency_key=new_key(),
            error=str(exc) if isinstance(exc, FormError) else exc.message,
        )
    return RedirectResponse(f"/bills/{bill['id']}", status_code=303)


MAX_POLLS = 240


def settling(bill: dict[str, Any], payments: list[dict[str, Any]]) -> bool:
    """Payments answered but billing has not applied them yet (they travel as events): the
    page refreshes itself for a while until both agree, so a stale status is not left as final."""
    on_bill = [p for p in payments if any(a["bill_id"] == bill["id"] for a in p["allocations"])]
    applied = {p["payment_id"] for p in bill.get("payments", []) if p["kind"] == "payment"}
    if any(p["status"] == "succeeded" and p["id"] not in applied for p in on_bill):
        return True
    refunds_on_bill = sum(1 for p in bill.get("payments", []) if p["kind"] == "refund")
    refunds = sum(1 for p in on_bill for r in p["refunds"] if r["status"] == "succeeded")
    return refunds_on_bill < refunds


async def rendered_pdf(viewer: Viewer, source_id: str) -> tuple[str | None, str | None]:
    """The newest PDF of a bill straight from documents (billing learns its id by event, later):
    (its id once rendered, or the reason it failed, in words)."""
    docs = (await viewer.api.get("documents", "/v1/documents", source_id=source_id))["items"]
    for doc in docs:
        if doc["status"] == "rendered":
            return doc["id"], None
        if doc["status"] == "failed":
            return None, doc.get("failure_reason") or "the PDF could not be made"
    return None, None


async def bill_page(request: Request, viewer: Viewer, bill_id: str, poll: int = 0, **extra: Any) -> HTMLResponse:
    api = viewer.api
    bill = await api.get("billing", f"/v1/bills/{bill_id}")
    client_id = bill["client_id"]
    payments, cards, credit, names = await asyncio.gather(
        api.get("payments", "/v1/payments", bill_id=bill_id, limit=200),
        api.get("payments", f"/v1/clients/{client_id}/cards"),
        api.get("payments", f"/v1/clients/{client_id}/credit"),
        client_names(viewer),
    )
    items = payments["items"]
    pdf_error = None
    if not bill.get("document_id"):
        bill["document_id"], pdf_error = await rendered_pdf(viewer, bill_id)
    pending = settling(bill, items) or (bill["status"] != "cancelled" and not bill["document_id"] and not pdf_error)
    settings = request.app.state.settings
    return render(
        request,
        "staff/bill.html",
        status_code=extra.pop("status_code", 200),
        nav="billing",
        bill=bill,
        client_name=names.get(client_id, client_id),
        payments=items,
        cards=cards["items"],
        credit_cents=credit["balance_cents"],
        pdf_error=pdf_error,
        poll_next=poll + 1 if pending and poll < MAX_POLLS else None,
        idempotency_key=new_key(),
        now=dt.datetime.now(dt.UTC),
        stripe_js_url=stripe_js_src(settings),
        publishable_key=settings.stripe_publishable_key,
        **extra,
    )


@router.get("/bills/{bill_id}", response_class=HTMLResponse)
async def bill_screen(request: Request, viewer: StaffViewer, bill_id: str, poll: int = 0) -> HTMLResponse:
    return await bill_page(request, viewer, bill_id, poll=min(poll, MAX_POLLS))


@router.post("/bills/{bill_id}/share", response_class=HTMLResponse)
async def share_bill(request: Request, viewer: StaffViewer, bill_id: str) -> Response:
    form = await request.form()
    try:
        await viewer.api.post("billing", f"/v1/bills/{bill_id}/share", {}, key=key_of(form))
    except ApiProblem as exc:
        return await bill_page(request, viewer, bill_id, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/bills/{bill_id}?done=shared", status_code=303)


@router.post("/bills/{bill_id}/cancel", response_class=HTMLResponse)
async def cancel_bill(request: Request, viewer: StaffViewer, bill_id: str) -> Response:
    form = await request.form()
    try:
        await viewer.api.post("billing", f"/v1/bills/{bill_id}/cancel", {"reason": text(form, "reason")})
    except ApiProblem as exc:
        message = f"This bill can't be cancelled: {exc.message}." if exc.code == "bill_has_payments" else exc.message
        return await bill_page(request, viewer, bill_id, status_code=exc.status, error=message)
    return RedirectResponse(f"/bills/{bill_id}?done=cancelled", status_code=303)


ADJUSTMENT_KINDS = {"write_off", "discount", "bad_debt"}


def adjustment_body(form: Any) -> dict[str, Any]:
    """POST /v1/bills/{id}/adjustments from the Add Adjustment dialog."""
    kind = text(form, "kind")
    if kind not in ADJUSTMENT_KINDS:
        raise FormError("Choose the kind: write-off, discount or bad debt.")
    cents = amount(form, "amount", "amount")
    if not cents:
        raise FormError("The amount must be more than zero.")
    reason = text(form, "reason")
    if not reason:
        raise FormError("Give the reason (it is kept with the bill's history).")
    return {"kind": kind, "amount_cents": cents, "reason": reason, "payer": text(form, "payer") or "client"}


@router.post("/bills/{bill_id}/adjustments", response_class=HTMLResponse)
async def add_adjustment(request: Request, viewer: StaffViewer, bill_id: str) -> Response:
    form = await request.form()
    try:
        await viewer.api.post("billing", f"/v1/bills/{bill_id}/adjustments", adjustment_body(form), key=key_of(form))
    except (FormError, ApiProblem) as exc:
        status, message = (exc.status, exc.message) if isinstance(exc, ApiProblem) else (422, str(exc))
        if isinstance(exc, ApiProblem) and exc.code == "adjustment_exceeds_balance":
            message = "the amount is more than is still owed on this bill"  # billing says it in cents
        return await bill_page(request, viewer, bill_id, status_code=status, error=f"Adjustment not added: {message}")
    return RedirectResponse(f"/bills/{bill_id}?done=adjusted", status_code=303)


@router.post("/bills/{bill_id}/adjustments/{adjustment_id}/reverse", response_class=HTMLResponse)
async def reverse_adjustment(request: Request, viewer: StaffViewer, bill_id: str, adjustment_id: str) -> Response:
    form = await request.form()
    path = f"/v1/bills/{bill_id}/adjustments/{adjustment_id}/reverse"
    try:
        await viewer.api.post("billing", path, {"reason": text(form, "reason")}, key=key_of(form))
    except ApiProblem as exc:
        return await bill_page(request, viewer, bill_id, status_code=exc.status, error=f"Not reversed: {exc.message}")
    return RedirectResponse(f"/bills/{bill_id}?done=reversed", status_code=303)
