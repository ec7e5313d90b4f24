"""The portal's cards on file: add a card through Stripe Elements with the authorization the
client reads and signs (a SetupIntent confirmed in the browser with Stripe.js `confirmCardSetup`,
as in the staff console, so 3-D Secure works), remove one, and turn autopay on or off."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.web.client import ApiProblem
from services.web.portal.consent import authorization_text, signed
from services.web.portal.documents import ClientViewer, client_id
from services.web.views import render
from shared.stripe_js import stripe_js_src, uses_localstripe

router = APIRouter(prefix="/portal", tags=["portal"])


async def _page(request: Request, viewer: Any, status_code: int = 200, **extra: Any) -> HTMLResponse:
    me = client_id(viewer)
    listed, autopay = await asyncio.gather(
        viewer.api.get("payments", f"/v1/clients/{me}/cards"), viewer.api.get("payments", f"/v1/clients/{me}/autopay")
    )
    cards = listed["items"]
    settings = request.app.state.settings
    return render(
        request, "portal/cards.html", status_code=status_code, nav="cards", cards=cards, autopay=autopay,
        authorization=authorization_text(request), publishable_key=settings.stripe_publishable_key,
        stripe_js_url=stripe_js_src(settings), localstripe=uses_localstripe(settings), **extra,
    )  # fmt: skip


@router.get("/cards", response_class=HTMLResponse)
async def cards_page(request: Request, viewer: ClientViewer) -> HTMLResponse:
    return await _page(request, viewer)


@router.post("/cards", response_class=HTMLResponse)
async def add_card(
    request: Request,
    viewer: ClientViewer,
    payment_method_id: Annotated[str, Form(max_length=200)] = "",
    signed_by: Annotated[str, Form(max_length=200)] = "",
    agree: Annotated[str, Form(max_length=10)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Store the card with the signed authorization: the client's typed name, the moment and
    the wording's version (payments keeps them with the card)."""
    if not signed_by.strip() or agree != "yes":
        return await _page(request, viewer, 422, error="Read the authorization, type your full name and tick the box.")
    if not payment_method_id:
        return await _page(request, viewer, 422, error="Enter the card's details.")
    body = {
        "stripe_payment_method_id": payment_method_id,
        "authorization": signed(signed_by),
        "make_default": True,
    }
    try:
        await viewer.api.post("payments", f"/v1/clients/{client_id(viewer)}/cards", body, key=key or None)
    except ApiProblem as exc:
        return await _page(request, viewer, exc.status, error=exc.message)
    return RedirectResponse("/portal/cards?added=1", status_code=303)


@router.post("/card-setup")
async def card_setup(viewer: ClientViewer) -> JSONResponse:
    """A SetupIntent's client secret for Stripe.js (app.js asks, with the CSRF header)."""
    try:
        return JSONResponse(await viewer.api.post("payments", f"/v1/clients/{client_id(viewer)}/card-setups"))
    except ApiProblem as exc:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)


@router.post("/cards/{card_id}/remove")
async def remove_card(card_id: str, viewer: ClientViewer) -> Response:
    await viewer.api.request("DELETE", "payments", f"/v1/clients/{client_id(viewer)}/cards/{card_id}")
    return RedirectResponse("/portal/cards", status_code=303)


@router.post("/autopay", response_class=HTMLResponse)
async def set_autopay(
    request: Request,
    viewer: ClientViewer,
    enabled: Annotated[str, Form(max_length=10)] = "",
    card_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    body = {"enabled": enabled == "yes", "card_id": card_id or None}
    try:
        await viewer.api.put("payments", f"/v1/clients/{client_id(viewer)}/autopay", body)
    except ApiProblem as exc:
        return await _page(request, viewer, exc.status, error=exc.message)
    return RedirectResponse("/portal/cards", status_code=303)
