"""`python -m services.billing.check [PRACTICE_ID]`: recompute every bill's paid and adjusted
figures, status and total from the facts (payment and refund applications, standing adjustments,
bill lines) and report any drift from what
the bill rows say. Exit status 1 when drift is found. Also served at GET /v1/checks/balances."""

import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import domain
from services.billing.db import bill_adjustments, bill_lines, bill_payments, bills
from shared.db import Database
from shared.settings import get_settings


@dataclass(frozen=True)
class Drift:
    practice_id: str
    bill_id: str
    number: int
    field: str
    stored: Any
    derived: Any


async def check_balances(db: AsyncSession, practice_id: str | None = None) -> tuple[int, list[Drift]]:
    """(bills checked, drift found)."""
    signed = case(
        (bill_payments.c.kind == "payment", bill_payments.c.amount_cents), else_=-bill_payments.c.amount_cents
    )
    paid = select(bill_payments.c.bill_id, func.sum(signed).label("paid")).group_by(bill_payments.c.bill_id).subquery()
    adj = bill_adjustments
    adjusted = (
        select(adj.c.bill_id, func.sum(adj.c.amount_cents).label("adjusted"))
        .where(adj.c.reversed_at.is_(None))
        .group_by(adj.c.bill_id)
        .subquery()
    )
    lines = (
        select(bill_lines.c.bill_id, func.sum(bill_lines.c.amount_cents).label("total"))
        .group_by(bill_lines.c.bill_id)
        .subquery()
    )
    query = (
        select(
            bills.c.id,
            bills.c.practice_id,
            bills.c.number,
            bills.c.status,
            bills.c.total_cents,
            bills.c.paid_cents,
            bills.c.adjusted_cents,
            func.coalesce(paid.c.paid, 0).label("derived_paid"),
            func.coalesce(adjusted.c.adjusted, 0).label("derived_adjusted"),
            func.coalesce(lines.c.total, 0).label("derived_total"),
        )
        .outerjoin(paid, paid.c.bill_id == bills.c.id)
        .outerjoin(lines, lines.c.bill_id == bills.c.id)
        .outerjoin(adjusted, adjusted.c.bill_id == bills.c.id)
        .order_by(bills.c.practice_id, bills.c.number)
    )
    if practice_id is not None:
        query = query.where(bills.c.practice_id == practice_id)
    rows = (await db.execute(query)).all()
    drift: list[Drift] = []
    for r in rows:
        derived_paid, derived_total = int(r.derived_paid), int(r.derived_total)
        derived_adjusted = int(r.derived_adjusted)
        expected_status = domain.status_after(
            r.status if r.status == "cancelled" else "open", derived_total - derived_paid - derived_adjusted,
            derived_adjusted,
        )  # fmt: skip
        for field, stored, derived in (
            ("total_cents", r.total_cents, derived_total),
            ("paid_cents", r.paid_cents, derived_paid),
            ("adjusted_cents", r.adjusted_cents, derived_adjusted),
            ("status", r.status, expected_status),
        ):
            if stored != derived:
                drift.append(Drift(r.practice_id, str(r.id), r.number, field, stored, derived))
    return len(rows), drift


def report(checked: int, drift: list[Drift]) -> dict[str, Any]:
    return {"bills_checked": checked, "drift_count": len(drift), "drift": [asdict(d) for d in drift]}


async def _main(argv: list[str]) -> int:
    settings = get_settings()
    db = Database(settings.database_url("billing"), "billing")
    try:
        async with db.transaction() as session:
            checked, drift = await check_balances(session, argv[0] if argv else None)
    finally:
        await db.dispose()
    print(json.dumps(report(checked, drift), indent=2, default=str))
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
