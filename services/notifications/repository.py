"""SQL of the notifications schema: queue a delivery once per cause, claim due ones without
holding a transaction across SMTP, record the outcome, and the projections."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.compose import Bodies
from services.notifications.db import (
    EMAIL_SIGNAL,
    deliveries,
    notifications,
    rendered_documents,
)
from services.notifications.domain import Channel, Contact, Draft
from shared.db import Database


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one send attempt, with the rendered PDF if there is one."""

    id: str
    practice_id: str
    client_id: str
    kind: str
    channel: str
    recipient_name: str
    to_address: str | None
    subject: str
    summary: str
    body_text: str
    body_html: str
    action_url: str | None
    attach_pdf: bool
    needs_pdf: bool
    document_kind: str | None
    document_source_id: str | None
    document_min_version: int | None
    attachment_name: str | None
    document_id: str | None
    attempts: int
    last_error: str | None
    claimed_at: dt.datetime


async def queue_delivery(
    session: AsyncSession,
    *,
    delivery_id: str,
    practice_id: str,
    client_id: str,
    cause_event_id: str,
    draft: Draft,
    contact: Contact,
    channel: Channel,
    bodies: Bodies,
    pdf_wait: dt.timedelta,
) -> bool:
    """Insert once per (cause, kind); returns False when this cause was already queued."""
    doc = draft.document
    inserted = await session.scalar(
        insert(deliveries)
        .values(
            id=delivery_id,
            practice_id=practice_id,
            client_id=client_id,
            cause_event_id=cause_event_id,
            kind=draft.kind,
            channel=channel,
            recipient_name=contact.name,
            to_address=contact.email if channel == "email" else None,
            subject=draft.subject,
            summary=draft.summary,
            body_text=bodies.text,
            body_html=bodies.html,
            action_url=draft.action_url,
            document_kind=doc.kind if doc else None,
            document_source_id=doc.source_id if doc else None,
            document_min_version=doc.min_version if doc else None,
            attachment_name=doc.filename if doc else None,
            attach_pdf=draft.attach_pdf and doc is not None,
            document_deadline=func.now() + pdf_wait,
        )
        .on_conflict_do_nothing()
        .returning(deliveries.c.id)
    )
    if inserted is not None:
        Database.signal(session, EMAIL_SIGNAL)
    return inserted is not None


def _needs_pdf() -> Any:
    return and_(deliveries.c.channel == "email", deliveries.c.attach_pdf)


async def retry_now(session: AsyncSession) -> int:
    """Queued retries (tried, failed for a transient reason, waiting out their backoff) become due
    now: the mail server that refused them is answering again."""
    d = deliveries
    result = await session.execute(
        update(d)
        .where(d.c.status == "queued", d.c.attempts > 0, d.c.next_attempt_at > func.now())
        .values(next_attempt_at=func.now())
    )
    return _rows_changed(result)


def _rows_changed(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due(
    session: AsyncSession, *, limit: int, lease: dt.timedelta, replica: str | None = None
) -> list[Claimed]:
    """Take due deliveries (PDF ready, not needed, or waited long enough; or a `sending` whose
    sender died) with SKIP LOCKED so replicas share the work, and mark them `sending`."""
    d, r = deliveries, rendered_documents
    doc_join = and_(
        r.c.practice_id == d.c.practice_id,
        r.c.kind == d.c.document_kind,
        r.c.source_id == d.c.document_source_id,
        r.c.version >= d.c.document_min_version,
    )
    due = or_(
        and_(d.c.status == "queued", d.c.next_attempt_at <= func.now()),
        and_(d.c.status == "sending", d.c.claimed_at < func.now() - lease),
    )
    ready = or_(~_needs_pdf(), r.c.document_id.is_not(None), d.c.document_deadline <= func.now())
    rows = (
        await session.execute(
            select(d, r.c.document_id.label("rendered_id"))
            .select_from(d.outerjoin(r, doc_join))
            .where(due, ready)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(of=d, skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    claimed_at = await session.scalar(select(func.now()))
    await session.execute(
        update(d)
        .where(d.c.id.in_([row.id for row in rows]))
        .values(status="sending", claimed_at=claimed_at, claimed_by=replica, attempts=d.c.attempts + 1)
    )
    return [
        Claimed(
            id=row.id,
            practice_id=row.practice_id,
            client_id=row.client_id,
            kind=row.kind,
            channel=row.channel,
            recipient_name=row.recipient_name,
            to_address=row.to_address,
            subject=row.subject,
            summary=row.summary,
            body_text=row.body_text,
            body_html=row.body_html,
            action_url=row.action_url,
            attach_pdf=row.attach_pdf,
            needs_pdf=row.channel == "email" and row.attach_pdf,
            document_kind=row.document_kind,
            document_source_id=row.document_source_id,
            document_min_version=row.document_min_version,
            attachment_name=row.attachment_name,
            document_id=row.rendered_id,
            attempts=row.attempts + 1,
            last_error=row.last_error,
            claimed_at=claimed_at,
        )
        for row in rows
    ]


async def release_claims(session: AsyncSession, replica: str) -> int:
    """The deliveries `replica` had claimed become due again (its previous run died mid-send)."""
    d = deliveries
    released = await session.execute(
        update(d)
        .where(d.c.status == "sending", d.c.claimed_by == replica)
        .values(status="queued", next_attempt_at=func.now(), claimed_at=None, claimed_by=None)
    )
    return _rows_changed(released)


async def finish(
    session: AsyncSession,
    claimed: Claimed,
    *,
    status: str,
    last_error: str | None = None,
    next_attempt_in: dt.timedelta | None = None,
) -> bool:
    """Record an attempt's outcome, only if this sender still holds the claim (a replica that
    re-claimed a stale row owns it now). Returns whether the outcome was recorded."""
    values: dict[str, Any] = {"status": status}
    if last_error is not None:
        values["last_error"] = last_error  # kept after a later success: the log shows what retried
    if status == "sent":
        values["sent_at"] = func.now()
    if claimed.document_id:
        values["document_id"] = claimed.document_id
    if next_attempt_in is not None:
        values["next_attempt_at"] = func.now() + next_attempt_in
    done = await session.scalar(
        update(deliveries)
        .where(
            deliveries.c.id == claimed.id,
            deliveries.c.status == "sending",
            deliveries.c.claimed_at == claimed.claimed_at,
        )
        .values(**values)
        .returning(deliveries.c.id)
    )
    return done is not None


async def add_notification(session: AsyncSession, claimed: Claimed, notification_id: str) -> bool:
    """One portal notification per delivery (a resent email does not notify twice)."""
    inserted = await session.scalar(
        insert(notifications)
        .values(
            id=notification_id,
            practice_id=claimed.practice_id,
            client_id=claimed.client_id,
            delivery_id=claimed.id,
            kind=claimed.kind,
            recipient_name=claimed.recipient_name,
            recipient_email=claimed.to_address,
            subject=claimed.subject,
            body_text=claimed.summary,
            action_url=claimed.action_url,
            document_id=claimed.document_id,
        )
        .on_conflict_do_nothing()
        .returning(notifications.c.id)
    )
    return inserted is not None


async def requeue_failed(session: AsyncSession, practice_id: str, email_id: str, pdf_wait: dt.timedelta) -> str | None:
    """Staff retry of a failed email: locks the row; returns its status before (None: unknown)."""
    d = deliveries
    status = await session.scalar(
        select(d.c.status)
        .where(d.c.practice_id == practice_id, d.c.id == email_id, d.c.channel == "email")
        .with_for_update()
    )
    if status == "failed":
        Database.signal(session, EMAIL_SIGNAL)
        await session.execute(
            update(d)
            .where(d.c.id == email_id)
            .values(
                status="queued",
                attempts=0,
                next_attempt_at=func.now(),
                document_deadline=func.now() + pdf_wait,
                claimed_at=None,
            )
        )
    return status


async def fail_waiting_for_document(
    session: AsyncSession, practice_id: str, kind: str, source_id: str, version: int, reason: str
) -> None:
    """Documents gave up on this PDF: stop waiting, the sender fails these deliveries now."""
    d = deliveries
    await session.execute(
        update(d)
        .where(
            d.c.practice_id == practice_id,
            d.c.document_kind == kind,
            d.c.document_source_id == source_id,
            d.c.document_min_version <= version,
            d.c.status == "queued",
            _needs_pdf(),
        )
        .values(document_deadline=func.now(), last_error=literal(f"document rendering failed: {reason}"))
    )
