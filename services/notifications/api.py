"""HTTP routes, thin: the portal feed (client or staff) and the delivery log (staff)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from services.notifications import feeds, service
from shared.auth import CurrentPrincipal, StaffPrincipal, ensure_client_access
from shared.http import not_found
from shared.runtime import ServiceDep

router = APIRouter(prefix="/v1", tags=["notifications"])

Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/clients/{client_id}/notifications", response_model=feeds.Page[feeds.NotificationOut])
async def client_notifications(
    client_id: str, principal: CurrentPrincipal, svc: ServiceDep, limit: Limit = 50, cursor: str | None = None
) -> feeds.Page[feeds.NotificationOut]:
    """The client's portal feed: every email (and portal-only notice) sent about them."""
    ensure_client_access(principal, client_id, "client")
    async with svc.db.transaction() as session:
        return await feeds.client_notifications(session, principal.practice_id, client_id, limit, cursor)


@router.get("/emails", response_model=feeds.Page[feeds.EmailOut])
async def list_emails(
    principal: StaffPrincipal,
    svc: ServiceDep,
    client_id: str | None = None,
    status: Literal["queued", "sent", "failed"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> feeds.Page[feeds.EmailOut]:
    """The delivery log: to, subject, kind, status, attempts, last error, sent at."""
    async with svc.db.transaction() as session:
        return await feeds.emails(
            session, principal.practice_id, client_id=client_id, status=status, limit=limit, cursor=cursor
        )


@router.get("/emails/{email_id}", response_model=feeds.EmailOut)
async def get_email(email_id: str, principal: StaffPrincipal, svc: ServiceDep) -> feeds.EmailOut:
    async with svc.db.transaction() as session:
        found = await feeds.email(session, principal.practice_id, email_id)
    if found is None:
        raise not_found("email")
    return found


@router.post("/emails/{email_id}/retry", status_code=202, response_model=feeds.EmailOut)
async def retry_email(
    email_id: str,
    principal: StaffPrincipal,
    svc: ServiceDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Send a failed email again (409 `email_not_failed` otherwise); accepts Idempotency-Key."""
    status, body = await service.retry_failed_email(svc, principal, email_id, idempotency_key)
    return JSONResponse(body, status_code=status)
