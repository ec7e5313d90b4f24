"""A client's billing profile (defaults of new bills, superbills, delivery) and their cards on
file with the signed authorization, Add Card, autopay and payment plans (staff/plans.py)."""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.staff.forms import FormError, amount, new_key, percent, text
from services.web.views import render
from shared.stripe_js import stripe_js_src

router = APIRouter(tags=["staff"])


async def profile_page(request: Request, viewer: StaffViewer, client_id: str, **extra: Any) -> HTMLResponse:
    profile, names = await asyncio.gather(
        viewer.api.get("billing", f"/v1/clients/{client_id}/billing-profile"), client_names(viewer)
    )
    return render(
        request,
        "staff/profile.html",
        status_code=extra.pop("status_code", 200),
        nav="billing",
        tab="profile",
        client_id=client_id,
        client_name=names.get(client_id, client_id),
        profile=extra.pop("profile", profile),
        **extra,
    )


@router.get("/clients/{client_id}/profile", response_class=HTMLResponse)
async def billing_profile(request: Request, viewer: StaffViewer, client_id: str) -> HTMLResponse:
    return await profile_page(request, viewer, client_id)


@router.post("/clients/{client_id}/profile", response_class=HTMLResponse)
async def save_profile(request: Request, viewer: StaffViewer, client_id: str) -> Response:
    form = await request.form()
    try:
        body = {
            "default_responsibility": text(form, "default_responsibility") or "client",
            "copay_cents": amount(form, "copay", "co-pay", required=False),
            "coinsurance_percent": percent(form, "coinsurance", "co-insurance"),
            "automatic_superbills": text(form, "automatic_superbills") == "yes",
            "delivery": text(form, "delivery") or "email",
        }
        if body["copay_cents"] is not None and body["coinsurance_percent"] is not None:
            raise FormError("Give a co-pay or a co-insurance, not both.")
        await viewer.api.put("billing", f"/v1/clients/{client_id}/billing-profile", body)
    except (FormError, ApiProblem) as exc:
        message = exc.message if isinstance(exc, ApiProblem) else str(exc)
        return await profile_page(request, viewer, client_id, status_code=422, error=message)
    return await profile_page(request, viewer, client_id, saved=True)


async def cards_page(request: Request, viewer: StaffViewer, client_id: str, **extra: Any) -> HTMLResponse:
    cards, autopay, names, plans, open_bills = await asyncio.gather(
        viewer.api.get("payments", f"/v1/clients/{client_id}/cards"),
        viewer.api.get("payments", f"/v1/clients/{client_id}/autopay"),
        client_names(viewer),
        viewer.api.get("payments", f"/v1/clients/{client_id}/payment-plans"),
        viewer.api.get("billing", "/v1/bills", status="open", client_id=client_id, limit=200),
    )
    settings = request.app.state.settings
    return render(
        request,
        "staff/cards.html",
        status_code=extra.pop("status_code", 200),
        nav="billing",
        tab="cards",
        client_id=client_id,
        client_name=names.get(client_id, client_id),
        cards=cards["items"],
        autopay=autopay,
        plans=plans["items"],
        open_bills=open_bills["items"],
        plan_key=new_key(),
        stripe_js_url=stripe_js_src(settings),
        publishable_key=settings.stripe_publishable_key,
        **extra,
    )


@router.get("/clients/{client_id}/cards", response_class=HTMLResponse)
async def cards(request: Request, viewer: StaffViewer, client_id: str) -> HTMLResponse:
    return await cards_page(request, viewer, client_id)


@router.post("/clients/{client_id}/autopay", response_class=HTMLResponse)
async def set_autopay(request: Request, viewer: StaffViewer, client_id: str) -> Response:
    form = await request.form()
    enabled = text(form, "enabled") == "yes"
    body = {"enabled": enabled, "card_id": text(form, "card_id") if enabled else None}
    try:
        await viewer.api.put("payments", f"/v1/clients/{client_id}/autopay", body)
    except ApiProblem as exc:
        return await cards_page(request, viewer, client_id, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/clients/{client_id}/cards?done=autopay", status_code=303)


@router.post("/clients/{client_id}/cards/{card_id}/remove", response_class=HTMLResponse)
async def remove_card(request: Request, viewer: StaffViewer, client_id: str, card_id: str) -> Response:
    try:
        await viewer.api.send("DELETE", "payments", f"/v1/clients/{client_id}/cards/{card_id}")
    except ApiProblem as exc:
        return await cards_page(request, viewer, client_id, status_code=exc.status, error=exc.message)
    return RedirectResponse(f"/clients/{client_id}/cards?done=removed", status_code=303)
