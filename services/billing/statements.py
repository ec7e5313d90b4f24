"""Statements: a client's account for a date range, numbered per practice, rendered by
documents from `StatementCreated` and shared like a bill (`StatementShared`)."""

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain, ledger
from services.billing import repository as repo
from services.billing.db import bill_payments, bills, credit_entries, payment_plans, statements
from services.billing.issued import IssuedKind
from shared.events import DocumentSource, StatementCreated, StatementShared
from shared.outbox import Outbox

STATEMENTS = IssuedKind(
    name="statement",
    table=statements,
    created=lambda source: StatementCreated(statement=source),
    shared=lambda source, share: StatementShared(statement=source, share=share),
    row_fields=("start_date", "end_date", "comments"),
)


async def client_ledger(db: AsyncSession, practice_id: str, client_id: str, tz: str) -> list[ledger.BillFacts]:
    """Every bill of the client with its payment facts and adjustments, dated in the practice's timezone."""
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
    adjustments = await repo.adjustments_of_bills(db, [r.id for r in rows])

    def day(at: dt.datetime | None) -> dt.date | None:
        return at.astimezone(zone).date() if at else None

    return [
        ledger.BillFacts(
            bill_id=str(r.id),
            number=r.number,
            issued_on=r.issued_on,
            due_date=r.due_date,
            total_cents=r.total_cents,
            cancelled_on=r.cancelled_at.astimezone(zone).date() if r.cancelled_at else None,
            payments=by_bill.get(r.id, []),
            adjustments=[
                ledger.AdjustmentFact(day(a.created_at), a.kind, a.amount_cents, day(a.reversed_at))  # type: ignore[arg-type]
                for a in adjustments.get(r.id, [])
            ],
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


async def client_plans(db: AsyncSession, practice_id: str, client_id: str, end: dt.date) -> list[dict[str, Any]]:
    """The client's active payment plans with the installments still to come after the period."""
    t = payment_plans
    rows = (
        await db.execute(
            select(t).where(t.c.practice_id == practice_id, t.c.client_id == client_id, t.c.status == "active")
        )
    ).all()
    return [
        {
            "total_cents": r.total_cents,
            "frequency": r.frequency,
            "upcoming": [
                {"due_date": i["due_date"], "amount_cents": i["amount_cents"]}
                for i in r.schedule
                if i["status"] == "scheduled" and i["due_date"] > end.isoformat()
            ],
        }
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
    body = ledger.statement_body(await client_ledger(db, practice_id, client_id, settings.timezone), start, end)
    body |= ledger.credit_section(await client_credit(db, practice_id, client_id, settings.timezone), start, end)
    body |= {"payment_plans": await client_plans(db, practice_id, client_id, end)}
    body |= {"comments": comments, "currency": settings.currency}
    number = await repo.next_number(db, practice_id, "statement")
    source = DocumentSource(
        id=str(uuid.uuid4()),
        number=number,
        client_id=client_id,
        kind="statement",
        issued_on=settings.today(now),
        bill_to=domain.bill_to(client),
        patient=domain.patient(client),
        practice=settings.info(),
        body=body,
    )
    auto_share = dt.timedelta(hours=settings.auto_share_delay_hours) if settings.auto_share_statements else None
    return await STATEMENTS.issue(
        db, outbox, practice_id, source, now=now, auto_share_in=auto_share, start_date=start, end_date=end,
        comments=comments,
    )  # fmt: skip
