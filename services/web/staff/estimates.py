"""Good Faith Estimates (billing's `/v1/good-faith-estimates`): New... > Good Faith Estimate, the
estimate's details with what the client's bills in its period came to (and by how much they
exceed it), Share and Download PDF. Listed on the client's Billing > Documents tab."""

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from services.web.auth import StaffViewer, Viewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.staff.forms import FormError, amount, key_of, new_key, text
from services.web.views import render

router = APIRouter(tags=["staff"])
ITEM_ROWS = 4
TITLE = "Good Faith Estimate"


async def clinician_names(viewer: Viewer) -> dict[str, str]:
    items = (await viewer.api.get("billing", "/v1/clinicians"))["items"]
    return {c["id"]: " ".join(p for p in (c["first_name"], c["last_name"], c.get("credentials")) if p) for c in items}


def estimate_body(form: FormData) -> dict[str, Any]:
    """POST /v1/good-faith-estimates from the form: the filled item rows, the period, the rest."""
    client_id, clinician_id = text(form, "client_id"), text(form, "clinician_id")
    if not client_id:
        raise FormError("Choose a client.")
    if not clinician_id:
        raise FormError("Choose the clinician.")
    items = []
    for i in range(ITEM_ROWS):
        code = text(form, f"item-{i}-code")
        if not code:
            continue
        quantity = text(form, f"item-{i}-quantity") or "1"
        if not quantity.isdigit() or not 1 <= int(quantity) <= 1000:
            raise FormError(f"Quantity of {code} must be a whole number from 1 to 1000.")
        fee = amount(form, f"item-{i}-fee", f"fee of {code}")
        description = text(form, f"item-{i}-description")
        items.append({"code": code, "description": description, "fee_cents": fee, "quantity": int(quantity)})
    if not items:
        raise FormError("Add at least one expected service (its code, fee and quantity).")
    diagnoses = [c.strip() for c in (text(form, "diagnosis_codes") or "").split(",") if c.strip()]
    body: dict[str, Any] = {
        "client_id": client_id,
        "clinician_id": clinician_id,
        "period_start": text(form, "period_start"),
        "period_end": text(form, "period_end"),
        "items": items,
        "diagnosis_codes": diagnoses or None,
        "comments": text(form, "comments"),
        "renew_yearly": text(form, "renew_yearly") == "yes",
    }
    return {k: v for k, v in body.items() if v is not None}


async def form_page(request: Request, viewer: Viewer, values: Any, status_code: int = 200, **extra: Any) -> Response:
    names, clinicians = await asyncio.gather(client_names(viewer), clinician_names(viewer))
    return render(
        request, "staff/new_estimate.html", status_code=status_code, nav="billing", names=names,
        clinicians=clinicians, values=values, rows=range(ITEM_ROWS), idempotency_key=new_key(), **extra,
    )  # fmt: skip


@router.get("/estimates/new", response_class=HTMLResponse)
async def new_estimate(request: Request, viewer: StaffViewer, client_id: str = "") -> HTMLResponse:
    start = dt.date.today()
    end = start + dt.timedelta(days=364)  # within the 12 months an estimate may cover
    values = {"client_id": client_id, "period_start": start.isoformat(), "period_end": end.isoformat(),
              "item-0-quantity": "1"}  # fmt: skip
    return await form_page(request, viewer, values)


@router.post("/estimates/new", response_class=HTMLResponse)
async def create_estimate(request: Request, viewer: StaffViewer) -> Response:
    form = await request.form()
    try:
        created = await viewer.api.post("billing", "/v1/good-faith-estimates", estimate_body(form), key=key_of(form))
    except (FormError, ApiProblem) as exc:
        status, message = (exc.status, exc.message) if isinstance(exc, ApiProblem) else (422, str(exc))
        return await form_page(request, viewer, form, status_code=status, error=message)
    return RedirectResponse(f"/estimates/{created['id']}", status_code=303)


@router.get("/estimates/{estimate_id}", response_class=HTMLResponse)
async def estimate_details(
    request: Request, viewer: StaffViewer, estimate_id: str, poll: int = 0, error: str | None = None
) -> HTMLResponse:
    doc, names, clinicians = await asyncio.gather(
        viewer.api.get("billing", f"/v1/good-faith-estimates/{estimate_id}"), client_names(viewer),
        clinician_names(viewer),
    )  # fmt: skip
    return render(
        request, "staff/estimate.html", status_code=422 if error else 200, nav="billing", kind="estimates",
        title=TITLE, doc=doc, client_name=names.get(doc["client_id"], doc["client_id"]),
        clinician_name=clinicians.get(doc.get("clinician_id"), (doc.get("clinician") or {}).get("name", "")),
        poll_next=poll + 1 if not doc.get("document_id") and poll < 240 else None, idempotency_key=new_key(),
        error=error,
    )  # fmt: skip


@router.post("/estimates/{estimate_id}/share", response_class=HTMLResponse)
async def share_estimate(request: Request, viewer: StaffViewer, estimate_id: str) -> Response:
    form = await request.form()
    try:
        await viewer.api.post("billing", f"/v1/good-faith-estimates/{estimate_id}/share", {}, key=key_of(form))
    except ApiProblem as exc:
        return await estimate_details(request, viewer, estimate_id, error=exc.message)
    return RedirectResponse(f"/estimates/{estimate_id}?done=shared", status_code=303)
