"""Billing Settings: practice info, bill settings, automation, autopay time and fees (billing's
`/v1/settings`); what deserves a second look comes back as warnings, shown in words."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.forms import FormError, amount, text
from services.web.views import render

router = APIRouter(tags=["staff"])

CHECKBOXES = ("attach_pdf", "auto_share_bills", "auto_share_statements", "auto_share_superbills",
              "autopay_skip_insurance_pending")  # fmt: skip
TEXTS = ("name", "phone", "tax_id", "npi", "timezone", "currency", "footer_comment", "bill_creation", "autopay_time")


def settings_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {name: text(form, name) for name in TEXTS}
    body.update({name: text(form, name) == "yes" for name in CHECKBOXES})
    for name, label in (("default_due_days", "days until due"), ("superbill_creation_day", "superbill day"),
                        ("auto_share_delay_hours", "share delay")):  # fmt: skip
        value = text(form, name)
        if value is not None:
            if not value.isdigit():
                raise FormError(f"The {label} must be a whole number.")
            body[name] = int(value)
    body["no_show_fee_cents"] = amount(form, "no_show_fee", "no-show fee", required=False) or 0
    body["late_cancel_fee_cents"] = amount(form, "late_cancel_fee", "late-cancel fee", required=False) or 0
    address = {k: text(form, f"address_{k}") for k in ("line1", "line2", "city", "state", "postal_code")}
    if any(address.values()):
        body["address"] = address
    return {k: v for k, v in body.items() if v is not None}


@router.get("/settings", response_class=HTMLResponse)
async def billing_settings(request: Request, viewer: StaffViewer) -> HTMLResponse:
    current = await viewer.api.get("billing", "/v1/settings")
    return render(request, "staff/settings.html", nav="settings", s=current, warnings=current.get("warnings", []))


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(request: Request, viewer: StaffViewer) -> Response:
    form = await request.form()
    try:
        saved = await viewer.api.put("billing", "/v1/settings", settings_body(form))
    except (FormError, ApiProblem) as exc:
        message = str(exc) if isinstance(exc, FormError) else exc.message
        status = 422 if isinstance(exc, FormError) else exc.status
        current = await viewer.api.get("billing", "/v1/settings")
        return render(request, "staff/settings.html", status_code=status, nav="settings", s=current, error=message)
    request.app.state.practices.forget(viewer.principal.practice_id)
    request.state.practice = await request.app.state.practices.get(viewer.principal.practice_id)
    return render(
        request, "staff/settings.html", nav="settings", s=saved, warnings=saved.get("warnings", []), saved=True
    )
