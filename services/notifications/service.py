"""Use-cases behind the HTTP writes (idempotent, row-locked)."""

import datetime as dt

from services.notifications import feeds
from services.notifications import repository as repo
from shared.auth import Principal
from shared.http import ApiError, idempotent_replay, idempotent_store, not_found, request_fingerprint
from shared.runtime import Service


async def retry_failed_email(
    svc: Service, principal: Principal, email_id: str, idempotency_key: str | None
) -> tuple[int, object]:
    """Queue a failed email again (after fixing SMTP settings or the address upstream); its
    attempts start over and the portal is not notified twice. 409 unless it failed."""
    pdf_wait = dt.timedelta(seconds=svc.settings.email_pdf_wait_seconds)
    fingerprint = request_fingerprint("POST", f"/v1/emails/{email_id}/retry", None)
    async with svc.db.transaction() as session:
        replay = await idempotent_replay(
            session, svc.idempotency_table, principal.practice_id, idempotency_key, fingerprint
        )
        if replay is not None:
            return replay
        before = await repo.requeue_failed(session, principal.practice_id, email_id, pdf_wait)
        if before is None:
            raise not_found("email")
        if before != "failed":
            raise ApiError(409, "email_not_failed", f"only a failed email can be retried; this one is {before}")
        email = await feeds.email(session, principal.practice_id, email_id)
        body = email.model_dump(mode="json") if email else None
        await idempotent_store(session, svc.idempotency_table, principal.practice_id, idempotency_key, 202, body)
    return 202, body
