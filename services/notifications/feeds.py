"""Read side for the HTTP API: the portal feed and the delivery log, newest first, keyset-paged."""

import datetime as dt
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifications.db import deliveries, notifications
from shared.http import ApiError, decode_cursor, encode_cursor


class RecipientOut(BaseModel):
    name: str
    email: str | None


class NotificationOut(BaseModel):
    notification_id: str
    client_id: str
    recipient: RecipientOut
    kind: str
    subject: str
    body_text: str
    action_url: str | None
    document_id: str | None
    created_at: dt.datetime


class EmailOut(BaseModel):
    id: str
    client_id: str
    kind: str
    to: str
    recipient_name: str
    subject: str
    status: str  # queued | sent | failed
    attempts: int
    last_error: str | None
    document_id: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _after_cursor(table: Table, cursor: str | None) -> Any:
    if not cursor:
        return None
    parts = decode_cursor(cursor)
    try:
        created_at, row_id = dt.datetime.fromisoformat(parts[0]), str(parts[1])
    except (IndexError, TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc
    return or_(
        table.c.created_at < created_at,
        and_(table.c.created_at == created_at, table.c.id < row_id),
    )


async def _page(
    session: AsyncSession, table: Table, where: list[Any], limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    after = _after_cursor(table, cursor)
    if after is not None:
        where = [*where, after]
    rows = (
        await session.execute(
            select(table).where(*where).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    page = list(rows[:limit])
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return page, next_cursor


async def client_notifications(
    session: AsyncSession, practice_id: str, client_id: str, limit: int, cursor: str | None
) -> Page[NotificationOut]:
    n = notifications
    rows, next_cursor = await _page(
        session, n, [n.c.practice_id == practice_id, n.c.client_id == client_id], limit, cursor
    )
    return Page[NotificationOut](
        items=[
            NotificationOut(
                notification_id=r.id,
                client_id=r.client_id,
                recipient=RecipientOut(name=r.recipient_name, email=r.recipient_email),
                kind=r.kind,
                subject=r.subject,
                body_text=r.body_text,
                action_url=r.action_url,
                document_id=r.document_id,
                created_at=r.created_at,
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )


def _email(r: Any) -> EmailOut:
    return EmailOut(
        id=r.id,
        client_id=r.client_id,
        kind=r.kind,
        to=r.to_address,
        recipient_name=r.recipient_name,
        subject=r.subject,
        status="queued" if r.status == "sending" else r.status,
        attempts=r.attempts,
        last_error=r.last_error,
        document_id=r.document_id,
        created_at=r.created_at,
        sent_at=r.sent_at,
    )


_STATUS_FILTER = {"queued": ("queued", "sending"), "sent": ("sent",), "failed": ("failed",)}


async def emails(
    session: AsyncSession,
    practice_id: str,
    *,
    client_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[EmailOut]:
    """Only deliveries that are emails: portal-only notifications are in the portal feed."""
    d = deliveries
    where = [d.c.practice_id == practice_id, d.c.channel == "email"]
    if client_id:
        where.append(d.c.client_id == client_id)
    if status:
        where.append(d.c.status.in_(_STATUS_FILTER[status]))
    rows, next_cursor = await _page(session, d, where, limit, cursor)
    return Page[EmailOut](items=[_email(r) for r in rows], next_cursor=next_cursor)


async def email(session: AsyncSession, practice_id: str, email_id: str) -> EmailOut | None:
    d = deliveries
    row = (
        await session.execute(
            select(d).where(d.c.practice_id == practice_id, d.c.id == email_id, d.c.channel == "email")
        )
    ).first()
    return _email(row) if row else None
