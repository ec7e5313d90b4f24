"""SQL for the payments schema: the bill projection, the two ledgers (bill applications and
client credit) and the row locks that keep concurrent payments and refunds honest."""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ARRAY, Row, String, and_, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.db import bill_applications, bills, clients, credit_entries, payments, refunds
from services.payments.domain import Application, BillBalance, Payer, owed_by
from shared.db import insert_rows
from shared.events import BillSnapshot
from shared.tenancy import refuse_foreign

IDS = bindparam("ids", type_=ARRAY(String))
"""A list of ids as one array parameter (`= ANY(:ids)`): a statement built once serves any
number of ids, where `IN` would be rendered again for each count."""

CREDIT_FUNDING_KINDS = ("prepayment", "overpayment", "allocation_rejected", "refund", "refund_reversed")
"""Credit entries that belong to a payment's own money (its credit part), as opposed to
`used` (credit spent by a credit payment) and `refund_to_credit` (a credit payment given back)."""


async def upsert_bill(session: AsyncSession, practice_id: str, bill: BillSnapshot) -> None:
    """Keep the latest version of each bill; an older snapshot arriving late changes nothing.
    What each party owes is kept as its share of the bill (the sum of its lines), never the
    snapshot's remaining figures: what is open is that share less the applications here, which
    already count the payments billing's later snapshots have subtracted. Standing adjustments
    (write-offs, discounts) come off the share of the payer they were made for, so a payment
    is never applied to written-off cents."""
    values = {
        "id": bill.id,
        "practice_id": practice_id,
        "client_id": bill.client_id,
        "number": bill.number,
        "status": bill.status,
        "client_owes_cents": sum(line.client_owes_cents for line in bill.lines) - bill.adjusted_by("client"),
        "insurance_owes_cents": sum(line.insurance_owes_cents for line in bill.lines) - bill.adjusted_by("insurance"),
        "total_cents": bill.total_cents,
        "access_code": bill.access_code,
        "currency": bill.practice.currency,
        "practice_name": bill.practice.name,
        "session_ids": sorted({line.session_id for line in bill.lines}),
        "party": bill.party,
        "version": bill.version,
    }
    await refuse_foreign(session, bills.c.id, bills.c.practice_id, practice_id, [bill.id], "bill")
    stmt = insert(bills).values(values)
    update = {k: stmt.excluded[k] for k in values if k not in ("id", "practice_id")}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[bills.c.practice_id, bills.c.id], set_=update, where=bills.c.version < stmt.excluded.version
        )
    )


async def existing_bill_ids(session: AsyncSession, ids: Iterable[str]) -> set[str]:
    return set((await session.scalars(select(bills.c.id).where(bills.c.id.in_(list(ids))))).all())


# The statements of a payment's transaction are built once, here: SQLAlchemy then finds each
# one's compiled form by its cache key, memoized on the statement object, instead of building the
# statement and computing that key on every request (README "Where a cash payment spends its time").
_LOCK_BILLS = select(bills).where(bills.c.id == any_(IDS)).order_by(bills.c.id).with_for_update()


async def lock_bills(session: AsyncSession, ids: Iterable[str]) -> dict[str, Row[Any]]:
    """SELECT ... FOR UPDATE in id order (one order everywhere: no deadlocks)."""
    rows = (await session.execute(_LOCK_BILLS, {"ids": sorted(set(ids))})).all()
    return {r.id: r for r in rows}


async def applied_by_bill(session: AsyncSession, bill_ids: Iterable[str], payer: Payer) -> dict[str, int]:
    t = bill_applications
    rows = await session.execute(
        select(t.c.bill_id, func.sum(t.c.amount_cents))
        .where(t.c.bill_id.in_(list(bill_ids)), t.c.payer == payer)
        .group_by(t.c.bill_id)
    )
    return {bill_id: int(total) for bill_id, total in rows.all()}


async def settled_open(session: AsyncSession, bill_ids: Sequence[str], payer: Payer) -> dict[str, int]:
    """What the payer still owes on each bill counting only money that is in (succeeded
    payments, net of their refunds): the "remaining balance" a receipt quotes."""
    if not bill_ids:
        return {}
    t = bill_applications
    paid = dict(
        (
            await session.execute(
                select(t.c.bill_id, func.sum(t.c.amount_cents))
                .join(payments, payments.c.id == t.c.payment_id)
                .where(t.c.bill_id.in_(list(bill_ids)), t.c.payer == payer, payments.c.status == "succeeded")
                .group_by(t.c.bill_id)
            )
        ).all()
    )
    rows = (await session.execute(select(bills).where(bills.c.id.in_(list(bill_ids))))).all()
    return {
        r.id: owed_by(payer, r.client_owes_cents, r.insurance_owes_cents) - int(paid.get(r.id) or 0)
        for r in rows
        if r.status != "cancelled"
    }


_BALANCES = (
    select(
        bill_applications.c.bill_id,
        func.sum(bill_applications.c.amount_cents),
        func.coalesce(func.sum(bill_applications.c.amount_cents).filter(payments.c.status == "succeeded"), 0),
    )
    .outerjoin(payments, payments.c.id == bill_applications.c.payment_id)
    .where(bill_applications.c.bill_id == any_(IDS), bill_applications.c.payer == bindparam("payer"))
    .group_by(bill_applications.c.bill_id)
)


async def balances(session: AsyncSession, locked: dict[str, Row[Any]], payer: Payer) -> dict[str, BillBalance]:
    """What the payer owes on each bill, what is applied (pending card payments hold their
    part) and how much of that is money in (succeeded payments): one read for all three."""
    rows = await session.execute(_BALANCES, {"ids": list(locked), "payer": payer})
    sums = {bill_id: (int(applied), int(settled)) for bill_id, applied, settled in rows.all()}
    return {
        bill_id: BillBalance(
            bill_id=bill_id,
            status=row.status,
            owed_cents=owed_by(payer, row.client_owes_cents, row.insurance_owes_cents),
            applied_cents=sums.get(bill_id, (0, 0))[0],
            settled_cents=sums.get(bill_id, (0, 0))[1],
        )
        for bill_id, row in locked.items()
    }


_LOCK_CLIENT = (
    select(clients)
    .where(clients.c.practice_id == bindparam("practice_id"), clients.c.id == bindparam("client_id"))
    .with_for_update()
)


async def lock_client(session: AsyncSession, practice_id: str, client_id: str) -> Row[Any]:
    """The client row is the lock for the client's credit ledger. The row nearly always exists
    (ClientUpserted made it): one round trip then; a client not heard of yet gets one first."""
    key = {"practice_id": practice_id, "client_id": client_id}
    row = (await session.execute(_LOCK_CLIENT, key)).one_or_none()
    if row is not None:
        return row
    await session.execute(insert(clients).values(practice_id=practice_id, id=client_id).on_conflict_do_nothing())
    return (await session.execute(_LOCK_CLIENT, key)).one()


async def credit_balance(session: AsyncSession, practice_id: str, client_id: str) -> int:
    t = credit_entries
    total = await session.scalar(
        select(func.coalesce(func.sum(t.c.amount_cents), 0)).where(
            t.c.practice_id == practice_id, t.c.client_id == client_id
        )
    )
    return int(total or 0)


async def add_credit(
    session: AsyncSession,
    practice_id: str,
    client_id: str,
    kind: str,
    amount_cents: int,
    **refs: Any,
) -> tuple[str, int]:
    """Append a ledger entry (caller holds the client lock); returns (entry id, new balance)."""
    entry_id = str(uuid.uuid4())
    await session.execute(
        credit_entries.insert().values(
            id=entry_id, practice_id=practice_id, client_id=client_id, kind=kind, amount_cents=amount_cents, **refs
        )
    )
    return entry_id, await credit_balance(session, practice_id, client_id)


_INSERT_APPLICATIONS = bill_applications.insert()


async def add_applications(
    session: AsyncSession,
    *,
    practice_id: str,
    client_of_bill: dict[str, str],
    payer: str,
    payment_id: str,
    kind: str,
    applications: Sequence[Application],
    sign: int = 1,
    refund_id: str | None = None,
) -> None:
    rows = [
        {
            "practice_id": practice_id,
            "bill_id": a.bill_id,
            "client_id": client_of_bill[a.bill_id],
            "payer": payer,
            "payment_id": payment_id,
            "refund_id": refund_id,
            "kind": kind,
            "amount_cents": sign * a.amount_cents,
        }
        for a in applications
        if a.amount_cents
    ]
    if rows:
        await insert_rows(session, _INSERT_APPLICATIONS, rows)


async def payment_applications(session: AsyncSession, payment_id: str) -> list[Application]:
    """Net amount of a payment on each bill, in the order it was first applied."""
    t = bill_applications
    rows = await session.execute(
        select(t.c.bill_id, func.sum(t.c.amount_cents), func.min(t.c.id))
        .where(t.c.payment_id == payment_id)
        .group_by(t.c.bill_id)
        .order_by(func.min(t.c.id))
    )
    return [Application(bill_id, int(total)) for bill_id, total, _ in rows.all()]


async def bill_clients(session: AsyncSession, bill_ids: Iterable[str]) -> dict[str, str]:
    rows = await session.execute(select(bills.c.id, bills.c.client_id).where(bills.c.id.in_(list(bill_ids))))
    return {k: v for k, v in rows.all()}


async def payment_credit_part(session: AsyncSession, payment_id: str) -> int:
    t = credit_entries
    total = await session.scalar(
        select(func.coalesce(func.sum(t.c.amount_cents), 0)).where(
            t.c.payment_id == payment_id, t.c.kind.in_(CREDIT_FUNDING_KINDS)
        )
    )
    return int(total or 0)


async def refunded_total(session: AsyncSession, payment_id: str, *, disputes: bool = True, pending: bool = True) -> int:
    """Refunds that count against the payment: done or (with `pending`) still in flight; with
    or without the disputes, which Stripe does not count in a charge's amount_refunded."""
    statuses = ("pending", "succeeded") if pending else ("succeeded",)
    q = select(func.coalesce(func.sum(refunds.c.amount_cents), 0)).where(
        refunds.c.payment_id == payment_id, refunds.c.status.in_(statuses)
    )
    if not disputes:
        q = q.where(refunds.c.source != "dispute")
    return int(await session.scalar(q) or 0)


async def lock_payment(session: AsyncSession, practice_id: str, payment_id: str) -> Row[Any] | None:
    return (
        await session.execute(
            select(payments).where(payments.c.id == payment_id, payments.c.practice_id == practice_id).with_for_update()
        )
    ).one_or_none()


async def household_of(session: AsyncSession, practice_id: str, client_ids: Iterable[str]) -> dict[str, str | None]:
    rows = await session.execute(
        select(clients.c.id, clients.c.household_id).where(
            and_(clients.c.practice_id == practice_id, clients.c.id.in_(list(client_ids)))
        )
    )
    return {k: v for k, v in rows.all()}


async def reserved_credit(session: AsyncSession, practice_id: str, client_id: str) -> int:
    """Credit held for appointments not billed yet: what is left of prepayments made for a
    specific session whose bill does not exist yet. It waits for that session's bill."""
    prepaid = (
        await session.execute(
            select(payments.c.id, payments.c.appointment_id).where(
                payments.c.practice_id == practice_id,
                payments.c.client_id == client_id,
                payments.c.appointment_id.is_not(None),
                payments.c.status == "succeeded",
            )
        )
    ).all()
    if not prepaid:
        return 0
    billed: set[str] = set()
    for (session_ids,) in (
        await session.execute(
            select(bills.c.session_ids).where(
                bills.c.practice_id == practice_id, bills.c.client_id == client_id, bills.c.status != "cancelled"
            )
        )
    ).all():
        billed.update(session_ids)
    return sum([await payment_credit_part(session, p.id) for p in prepaid if p.appointment_id not in billed])
