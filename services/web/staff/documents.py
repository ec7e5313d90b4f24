"""Statements and superbills (New Statement, New Superbill, their details, Share), a client's
Billing > Documents tab, and Download PDF (the documents service's PDF, streamed through)."""

import asyncio
import datetime as dt
import re
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.auth import CurrentViewer, StaffViewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.staff.forms import FormError, key_of, new_key, text
from services.web.views import render

router = APIRouter(tags=["staff"])
Kind = Literal["statements", "superbills"]
TITLES = {"statements": "Statement", "superbills": "Superbill"}


@router.get("/documents/{document_id}/pdf")
async def download_pdf(viewer: CurrentViewer, document_id: str, name: str = "document") -> Response:
    """Download PDF: the documents service decides whether this person may read it."""
    response = await viewer.api.request("GET", "documents", f"/v1/documents/{document_id}/pdf")
    filename = re.sub(r"[^A-Za-z0-9_-]", "", name)[:60] or "document"
    return Response(
        response.content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}.pdf"', "Cache-Control": "private, no-store"},
    )


def last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    first_this = today.replace(day=1)
    end = first_this - dt.timedelta(days=1)
    return end.replace(day=1), end


def issued_router(kind: Kind) -> APIRouter:
    """New / details / Share of statements or superbills (one router per kind, fixed paths)."""
    kind_router = APIRouter(tags=["staff"])

    @kind_router.get(f"/{kind}/new", response_class=HTMLResponse)
    async def new_document(request: Request, viewer: StaffViewer, client_id: str = "") -> HTMLResponse:
        start, end = last_month(dt.date.today())
        return render(
            request,
            "staff/new_document.html",
            nav="billing",
            kind=kind,
            title=TITLES[kind],
            names=await client_names(viewer),
            values={"client_id": client_id, "start_date": start.isoformat(), "end_date": end.isoformat()},
            idempotency_key=new_key(),
        )

    @kind_router.post(f"/{kind}/new", response_class=HTMLResponse)
    async def create_document(request: Request, viewer: StaffViewer) -> Response:
        form = await request.form()
        try:
            client_id = text(form, "client_id")
            if not client_id:
                raise FormError("Choose a client.")
            body: dict[str, Any] = {
                "client_id": client_id,
                "start_date": text(form, "start_date"),
                "end_date": text(form, "end_date"),
            }
            if kind == "statements":
                body["comments"] = text(form, "comments")
            created = await viewer.api.post(
                "billing", f"/v1/{kind}", {k: v for k, v in body.items() if v}, key=key_of(form)
            )
        except (FormError, ApiProblem) as exc:
            return render(
                request,
                "staff/new_document.html",
                status_code=422 if isinstance(exc, FormError) else exc.status,
                nav="billing",
                kind=kind,
                title=TITLES[kind],
                names=await client_names(viewer),
                values=form,
                idempotency_key=new_key(),
                error=str(exc) if isinstance(exc, FormError) else exc.message,
            )
        return RedirectResponse(f"/{kind}/{created['id']}", status_code=303)

    @kind_router.get(f"/{kind}/{{document_id}}", response_class=HTMLResponse)
    async def document_details(
        request: Request, viewer: StaffViewer, document_id: str, poll: int = 0, error: str | None = None
    ) -> HTMLResponse:
        doc, names = await asyncio.gather(viewer.api.get("billing", f"/v1/{kind}/{document_id}"), client_names(viewer))
        return render(
            request,
            f"staff/{kind[:-1]}.html",
            nav="billing",
            kind=kind,
            title=TITLES[kind],
            doc=doc,
            client_name=names.get(doc["client_id"], doc["client_id"]),
            poll_next=poll + 1 if not doc.get("document_id") and poll < 240 else None,
            idempotency_key=new_key(),
            error=error,
        )

    @kind_router.post(f"/{kind}/{{document_id}}/share", response_class=HTMLResponse)
    async def share_document(request: Request, viewer: StaffViewer, document_id: str) -> Response:
        form = await request.form()
        try:
            await viewer.api.post("billing", f"/v1/{kind}/{document_id}/share", {}, key=key_of(form))
        except ApiProblem as exc:
            return await document_details(request, viewer, document_id, error=exc.message)
        return RedirectResponse(f"/{kind}/{document_id}?done=shared", status_code=303)

    return kind_router


@router.get("/clients/{client_id}/billing", response_class=HTMLResponse)
async def client_documents(request: Request, viewer: StaffViewer, client_id: str) -> HTMLResponse:
    """A client's Billing > Documents tab: bills, statements, superbills and Good Faith Estimates, newest first."""
    docs, names = await asyncio.gather(
        viewer.api.get("billing", f"/v1/clients/{client_id}/documents", limit=200), client_names(viewer)
    )
    return render(
        request,
        "staff/client_documents.html",
        nav="billing",
        tab="documents",
        client_id=client_id,
        client_name=names.get(client_id, client_id),
        docs=docs["items"],
    )
