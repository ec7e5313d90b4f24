"""`python -m services.payments.check`: recompute every figure from the ledgers and report
drift. Exit status 1 if anything is off. Checked: no bill has more applied than its payer
owes (nor less than nothing), no client's credit is negative, a failed payment holds nothing,
and every settled payment is fully accounted for (on bills + as credit + refunded)."""

import asyncio
import sys
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.db import bill_applications, bills, credit_entries, payments, refunds
from services.payments.repository import CREDIT_FUNDING_KINDS
from shared.db import Database
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class Drift:
    what: str
    id: str
    detail: str


async def find_drift(session: AsyncSession) -> list[Drift]:
    drift: list[Drift] = []
    ba, ce = bill_applications, credit_entries
    per_bill = (
        select(ba.c.bill_id, ba.c.payer, func.sum(ba.c.amount_cents).label("applied"))
        .group_by(ba.c.bill_id, ba.c.payer)
        .subquery()
    )
    applied = (
        await session.execute(
            select(
                per_bill.c.bill_id,
                per_bill.c.payer,
                per_bill.c.applied,
                bills.c.status,
                bills.c.client_owes_cents,
                bills.c.insurance_owes_cents,
            ).join(bills, bills.c.id == per_bill.c.bill_id)
        )
    ).all()
    for row in applied:
        owed = row.client_owes_cents if row.payer == "client" else row.insurance_owes_cents
        if not 0 <= row.applied <= owed and row.status != "cancelled":
            drift.append(Drift("bill", row.bill_id, f"{row.payer} applied {row.applied} of {owed} owed"))
    for client_id, balance in (
        await session.execute(
            select(ce.c.client_id, func.sum(ce.c.amount_cents)).group_by(ce.c.practice_id, ce.c.client_id)
        )
    ).all():
        if balance < 0:
            drift.append(Drift("credit", client_id, f"balance {balance}"))
    on_bills = select(ba.c.payment_id, func.sum(ba.c.amount_cents).label("cents")).group_by(ba.c.payment_id).subquery()
    as_credit = (
        select(ce.c.payment_id, func.sum(ce.c.amount_cents).label("cents"))
        .where(ce.c.kind.in_(CREDIT_FUNDING_KINDS))
        .group_by(ce.c.payment_id)
        .subquery()
    )
    refunded = (
        select(refunds.c.payment_id, func.sum(refunds.c.amount_cents).label("cents"))
        .where(refunds.c.status.in_(("pending", "succeeded")))
        .group_by(refunds.c.payment_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                payments.c.id,
                payments.c.status,
                payments.c.method,
                payments.c.amount_cents,
                func.coalesce(on_bills.c.cents, 0).label("on_bills"),
                func.coalesce(as_credit.c.cents, 0).label("as_credit"),
                func.coalesce(refunded.c.cents, 0).label("refunded"),
            )
            .outerjoin(on_bills, on_bills.c.payment_id == payments.c.id)
            .outerjoin(as_credit, as_credit.c.payment_id == payments.c.id)
            .outerjoin(refunded, refunded.c.payment_id == payments.c.id)
        )
    ).all()
    for p in rows:
        if p.status == "failed" and p.on_bills:
            drift.append(Drift("payment", p.id, f"failed but holds {p.on_bills} on bills"))
        if p.status == "succeeded" and p.method != "credit" and p.on_bills + p.as_credit + p.refunded != p.amount_cents:
            drift.append(
                Drift(
                    "payment",
                    p.id,
                    f"{p.amount_cents} paid but {p.on_bills} on bills + {p.as_credit} credit + {p.refunded} refunded",
                )
            )
    return drift


async def run(settings: Settings) -> list[Drift]:
    db = Database(settings.database_url("payments"), "payments")
    try:
        async with db.transaction() as session:
            return await find_drift(session)
    finally:
        await db.dispose()


def main() -> int:
    drift = asyncio.run(run(get_settings()))
    for d in drift:
        print(f"DRIFT {d.what} {d.id}: {d.detail}")
    print(f"{len(drift)} drift(s) found")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
