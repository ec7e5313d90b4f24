"""Statements: a client's account for a date range, numbered per practice, rendered by
documents from `StatementCreated` and shared like a bill (`StatementShared`)."""

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain, ledger
from services.billing import repository as repo
from services.billing.bills import share_delivery, stage
from services.billing.db import bill_payments, bills, credit_entries, statements
from shared.events import DocumentSource, StatementCreated, StatementShared
from shared.outbox import Outbox


async def client_ledger(db: AsyncSession, practice_id: str, client_id: str, tz: str) -> list[ledger.BillFacts]:
    """Every bill of the client with its payment facts, dated in the practice's timezone."""
    zone = zoneinfo.ZoneInfo(tz)
    rows = (
        await db.execute(select(bills).where(bills.c.practice_id == practice_id, bills.c.client_id == client_id))
    ).all()
    if not rows:
        return []
    facts = (
        await db.execute(
            select(bill_payments).where(bill_payments.c.bill_id.in_([r.id for r in rows])).order_by(bill_payments.c.id)
        )
    ).all()
    by_bill: dict[uuid.UUID, list[tuple[dt.date, Any, int]]] = {}
    for f in facts:
        by_bill.setdefault(f.bill_id, []).append((f.occurred_at.astimezone(zone).date(), f.kind, f.amount_cents))
    return [
        ledger.BillFacts(
            bill_id=str(r.id),
            number=r.number,
            issued_on=r.issued_on,
            due_date=r.due_date,
            total_cents=r.total_cents,
            cancelled_on=r.cancelled_at.astimezone(zone).date() if r.cancelled_at else None,
            payments=by_bill.get(r.id, []),
        )
        for r in rows
    ]


async def client_credit(db: AsyncSession, practice_id: str, client_id: str, tz: str) -> list[ledger.CreditEntry]:
    zone = zoneinfo.ZoneInfo(tz)
    c = credit_entries
    rows = (
        await db.execute(
            select(c).where(c.c.practice_id == practice_id, c.c.client_id == client_id).order_by(c.c.occurred_at)
        )
    ).all()
    return [
        ledger.CreditEntry(r.occurred_at.astimezone(zone).date(), r.kind, r.amount_cents, r.balance_cents, r.reason)
        for r in rows
    ]


async def create_statement(
    db: AsyncSession,
    outbox: Outbox,
    practice_id: str,
    *,
    client_id: str,
    start: dt.date,
    end: dt.date,
    comments: str | None,
    now: dt.datetime,
) -> Row[Any]:
    if end < start:
        raise domain.RuleViolation("invalid_range", "end_date is before start_date", status=422)
    settings = await repo.load_settings(db, practice_id)
    client = await repo.get_client(db, practice_id, client_id)
    if client is None:
        raise domain.RuleViolation("not_found", "client not found", status=404)
    body = ledger.statement_body(await client_ledger(db, practice_id, client_id, settings.timezone), start, end)
    body |= ledger.credit_section(await client_credit(db, practice_id, client_id, settings.timezone), start, end)
    body |= {"comments": comments, "currency": settings.currency}
    number = await repo.next_number(db, practice_id, "statement")
    statement_id = uuid.uuid4()
    source = DocumentSource(
        id=str(statement_id),
        number=number,
        client_id=client_id,
        kind="statement",
        issued_on=settings.today(now),
        bill_to=domain.bill_to(client),
        patient=domain.patient(client),
        practice=settings.info(),
        body=body,
    )
    await db.execute(
        statements.insert().values(
            id=statement_id, practice_id=practice_id, number=number, client_id=client_id, start_date=start,
            end_date=end, issued_on=source.issued_on, comments=comments, source=source.model_dump(mode="json"),
            created_at=now,
        )
    )  # fmt: skip
    await stage(outbox, db, practice_id, client_id, StatementCreated(statement=source))
    if settings.auto_share_statements:
        await db.execute(
            update(statements)
            .where(statements.c.id == statement_id)
            .values(share_scheduled_at=now + dt.timedelta(hours=settings.auto_share_delay_hours))
        )
    return await get_statement(db, practice_id, str(statement_id))


async def get_statement(db: AsyncSession, practice_id: str, statement_id: str, *, lock: bool = False) -> Row[Any]:
    sid = repo.parse_id(statement_id)
    query = select(statements).where(statements.c.id == sid, statements.c.practice_id == practice_id)
    row = (await db.execute(query.with_for_update() if lock else query)).first() if sid else None
    if row is None:
        raise domain.RuleViolation("not_found", "statement not found", status=404)
    return row


async def share_statement(
    db: AsyncSession, outbox: Outbox, row: Row[Any], *, now: dt.datetime, scheduled_for: dt.datetime | None = None
) -> Row[Any]:
    if scheduled_for is not None and scheduled_for > now:
        values: dict[str, Any] = {"share_scheduled_at": scheduled_for}
    else:
        source = DocumentSource.model_validate(row.source)
        delivery = await share_delivery(db, row.practice_id, row.client_id, source.bill_to)
        await stage(outbox, db, row.practice_id, row.client_id, StatementShared(statement=source, share=delivery))
        values = {"shared": True, "shared_at": now, "share_scheduled_at": None}
    stmt = update(statements).where(statements.c.id == row.id).values(**values).returning(*statements.c)
    return (await db.execute(stmt)).one()


async def statements_due_for_share(
    db: AsyncSession, now: dt.datetime, *, practice_id: str | None = None, limit: int = 100
) -> list[Row[Any]]:
    query = (
        select(statements)
        .where(statements.c.share_scheduled_at <= now)
        .order_by(statements.c.share_scheduled_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if practice_id is not None:
        query = query.where(statements.c.practice_id == practice_id)
    return list((await db.execute(query)).all())


def view(row: Row[Any]) -> dict[str, Any]:
    source = row.source
    return {
        "id": str(row.id),
        "number": row.number,
        "client_id": row.client_id,
        "status": "issued",
        "issued_on": row.issued_on,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "comments": row.comments,
        "bill_to": source["bill_to"],
        "patient": source["patient"],
        **{k: v for k, v in source["body"].items() if k not in ("start_date", "end_date", "comments")},
        "document_id": row.document_id,
        "shared": row.shared,
        "shared_at": row.shared_at,
        "share_scheduled_at": row.share_scheduled_at,
        "created_at": row.created_at,
    }
