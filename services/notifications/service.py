"""Use-cases behind the HTTP writes (idempotent, row-locked)."""

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications import feeds
from services.notifications import repository as repo
from shared.auth import Principal
from shared.http import ApiError, idempotent_answer, not_found, request_fingerprint
from shared.runtime import Service


async def retry_failed_email(
    svc: Service, principal: Principal, email_id: str, idempotency_key: str | None
) -> tuple[int, object]:
    """Queue a failed email again (after fixing SMTP settings or the address upstream); its
    attempts start over and the portal is not notified twice. 409 unless it failed."""
    pdf_wait = dt.timedelta(seconds=svc.settings.email_pdf_wait_seconds)
    fingerprint = request_fingerprint("POST", f"/v1/emails/{email_id}/retry", None)

    async def work(session: AsyncSession) -> tuple[int, object]:
        before = await repo.requeue_failed(session, principal.practice_id, email_id, pdf_wait)
        if before is None:
            raise not_found("email")
        if before != "failed":
            raise ApiError(409, "email_not_failed", f"only a failed email can be retried; this one is {before}")
        email = await feeds.email(session, principal.practice_id, email_id)
        return 202, email.model_dump(mode="json") if email else None

    async with svc.db.transaction() as session:
        return await idempotent_answer(
            session,
            svc.idempotency_table,
            principal.practice_id,
            principal.scoped_key(idempotency_key),
            fingerprint,
            work,
        )
