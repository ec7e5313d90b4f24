"""The portal's documents: shared bills, statements, superbills and estimates with Download PDF,
paying a bill with a card on file or a new card, and the notifications feed."""

import asyncio
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from services.web.auth import CurrentViewer, Viewer
from services.web.client import ApiProblem
from services.web.portal.consent import authorization_text, signed
from services.web.views import render
from shared.stripe_js import stripe_js_src, uses_localstripe

router = APIRouter(prefix="/portal", tags=["portal"])
KINDS = {"bill": "Bills", "statement": "Statements", "superbill": "Superbills", "good_faith_estimate": "Estimates"}


async def client_viewer(viewer: CurrentViewer) -> Viewer:
    """The portal is the client's own; staff have the console."""
    if viewer.is_staff or not viewer.principal.client_id:
        raise ApiProblem(403, "forbidden", "The portal is for clients. Practice staff use Client Billing.")
    return viewer


ClientViewer = Annotated[Viewer, Depends(client_viewer)]


def client_id(viewer: Viewer) -> str:
    return str(viewer.principal.client_id)


@router.get("", response_class=HTMLResponse)
async def home(request: Request, viewer: ClientViewer) -> HTMLResponse:
    """Everything shared with the client, by kind; open bills first with what is left to pay."""
    api, me = viewer.api, client_id(viewer)
    docs, bills = await asyncio.gather(
        api.get("billing", f"/v1/clients/{me}/documents", limit=200),
        api.get("billing", "/v1/bills", client_id=me, limit=200),
    )
    bills_by_id = {b["id"]: b for b in bills["items"]}
    groups: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for doc in docs["items"]:
        if doc["kind"] in groups and doc.get("shared"):
            groups[doc["kind"]].append(doc | {"bill": bills_by_id.get(doc["id"])})
    owed = sum(d["bill"]["balance_cents"] for d in groups["bill"] if d["bill"] and d["bill"]["status"] == "open")
    return render(request, "portal/home.html", nav="portal", groups=groups, kinds=KINDS, owed=owed)


@router.get("/documents/{document_id}/pdf")
async def pdf(document_id: str, viewer: ClientViewer) -> Response:
    """Download PDF: the document service answers only for the client's own shared documents."""
    r = await viewer.api.request("GET", "documents", f"/v1/documents/{document_id}/pdf")
    disposition = r.headers.get("content-disposition") or f'attachment; filename="{document_id}.pdf"'
    return Response(r.content, media_type="application/pdf", headers={"Content-Disposition": disposition})


async def _bill_and_cards(viewer: Viewer, bill_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    bill, cards = await asyncio.gather(
        viewer.api.get("billing", f"/v1/bills/{bill_id}"),
        viewer.api.get("payments", f"/v1/clients/{client_id(viewer)}/cards"),
    )
    return bill, cards["items"]


def pay_page(request: Request, bill: dict[str, Any], cards: list[dict[str, Any]], **extra: Any) -> HTMLResponse:
    settings = request.app.state.settings
    return render(
        request, "portal/pay.html", status_code=extra.pop("status_code", 200), nav="portal", bill=bill, cards=cards,
        stripe_js_url=stripe_js_src(settings), localstripe=uses_localstripe(settings),
        publishable_key=settings.stripe_publishable_key,
        authorization=authorization_text(request), **extra,
    )  # fmt: skip


@router.get("/bills/{bill_id}/pay", response_class=HTMLResponse)
async def pay_form(request: Request, bill_id: str, viewer: ClientViewer) -> HTMLResponse:
    bill, cards = await _bill_and_cards(viewer, bill_id)
    return pay_page(request, bill, cards, key=str(uuid.uuid4()))


async def new_card(viewer: Viewer, payment_method_id: str, holder: str, keep: bool, key: str) -> str:
    """Store the card just confirmed in the browser (SetupIntent), with the authorization when the
    client chose to keep it and signed with their name: the card to charge."""
    body: dict[str, Any] = {"stripe_payment_method_id": payment_method_id}
    if keep:
        body["authorization"] = signed(holder)
    card = await viewer.api.post("payments", f"/v1/clients/{client_id(viewer)}/cards", body, key=f"{key}-card")
    return str(card["id"])


@router.post("/bills/{bill_id}/pay", response_class=HTMLResponse)
async def pay(
    request: Request,
    bill_id: str,
    viewer: ClientViewer,
    amount: Annotated[str, Form(max_length=32)],
    card_id: Annotated[str, Form(max_length=100)] = "",
    payment_method_id: Annotated[str, Form(max_length=200)] = "",
    holder: Annotated[str, Form(max_length=200)] = "",
    keep: Annotated[str, Form(max_length=10)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """Charge a card on file, or a new card confirmed in the browser, for this bill (the client's
    own authorization). A retried form (same key) is not charged twice. A new card the client did
    not ask to keep is removed again once the payment succeeded."""
    bill, cards = await _bill_and_cards(viewer, bill_id)
    cents = parse_amount(amount)
    error = None
    fresh = card_id == "new"
    if cents is None or cents <= 0:
        error = "Enter the amount as a number, for example 50 or 50.00."
    elif not card_id or (fresh and not payment_method_id):
        error = "Choose a card to pay with, or enter a new card's details."
    elif fresh and keep == "yes" and not holder.strip():
        error = "Type the name on the card: it signs the authorization to keep the card on file."
    if error is None:
        try:
            charged = await new_card(viewer, payment_method_id, holder, keep == "yes", key) if fresh else card_id
            body = {"client_id": client_id(viewer), "bill_id": bill_id, "method": "card", "online": True,
                    "card_id": charged, "amount_cents": cents}  # fmt: skip
            payment = await viewer.api.post("payments", "/v1/payments", body, key=key or None)
        except ApiProblem as exc:
            error = exc.message
        else:
            if fresh and keep != "yes" and payment.get("status") == "succeeded":
                await viewer.api.send("DELETE", "payments", f"/v1/clients/{client_id(viewer)}/cards/{charged}")
            return render(request, "portal/paid.html", nav="portal", bill=bill, payment=payment)
    return pay_page(request, bill, cards, status_code=422, key=key, error=error, amount=amount, chosen=card_id)


AMOUNT = re.compile(r"^\$?\s*(\d{1,3}(?:,\d{3})+|\d{1,9})(?:\.(\d{1,2}))?$")


def parse_amount(text: str) -> int | None:
    """ "50", "50.5", "$1,234.50" → cents; anything else None (never "the whole balance")."""
    m = AMOUNT.match(text.strip())
    if not m:
        return None
    return int(m.group(1).replace(",", "")) * 100 + int((m.group(2) or "").ljust(2, "0"))


@router.get("/notifications", response_class=HTMLResponse)
async def notifications(request: Request, viewer: ClientViewer) -> HTMLResponse:
    feed = await viewer.api.get("notifications", f"/v1/clients/{client_id(viewer)}/notifications", limit=100)
    return render(request, "portal/notifications.html", nav="notifications", items=feed["items"])
