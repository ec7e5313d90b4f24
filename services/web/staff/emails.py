"""The email delivery log (notifications' `/v1/emails`): to whom, what, status, attempts, the
last error in words, and Retry for a failed one."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.web.auth import StaffViewer
from services.web.client import ApiProblem
from services.web.staff.billing import client_names
from services.web.views import render

router = APIRouter(tags=["staff"])


async def emails_page(request: Request, viewer: StaffViewer, client_id: str, **extra: object) -> HTMLResponse:
    emails, names = await asyncio.gather(
        viewer.api.get("notifications", "/v1/emails", client_id=client_id or None, limit=100), client_names(viewer)
    )
    return render(
        request, "staff/emails.html", nav="emails", emails=emails["items"], names=names, client_id=client_id, **extra
    )


@router.get("/emails", response_class=HTMLResponse)
async def email_log(request: Request, viewer: StaffViewer, client_id: str = "") -> HTMLResponse:
    return await emails_page(request, viewer, client_id)


@router.post("/emails/{email_id}/retry", response_class=HTMLResponse)
async def retry(request: Request, viewer: StaffViewer, email_id: str) -> Response:
    try:
        await viewer.api.post("notifications", f"/v1/emails/{email_id}/retry")
    except ApiProblem as exc:
        return await emails_page(request, viewer, "", error=f"Not retried: {exc.message}")
    return RedirectResponse("/emails?done=retry", status_code=303)
