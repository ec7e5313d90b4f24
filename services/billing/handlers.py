"""Events in → projection / bill facts → outbox. Each handler runs in the consumer's
transaction together with the inbox claim (the projection's upserts apart: `PROJECTED`), so a
redelivered event changes nothing twice."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.billing import bills
from services.billing import repository as repo
from services.billing.db import bills as bills_table
from services.billing.db import (
    clients,
    clinicians,
    credit_entries,
    good_faith_estimates,
    payment_plans,
    sessions,
)
from services.billing.db import statements as statements_table
from services.billing.db import superbills as superbills_table
from shared.consumer import BatchHandler, Handler
from shared.events import (
    Allocation,
    ClientUpserted,
    ClinicianUpserted,
    CreditChanged,
    DocumentRendered,
    Envelope,
    PaymentRecorded,
    PaymentRefunded,
    SessionCompleted,
    SessionVoided,
)
from shared.outbox import Outbox

PROJECTED = frozenset({"ClientUpserted", "ClinicianUpserted", "SessionCompleted"})
"""Kept as the newest event says (`repo.upsert_newest`, by `occurred_at`): the same event
applied twice leaves the same row, so the inbox need not claim them (see `EventConsumer`)."""


def scheduling_batch_handlers() -> dict[str, BatchHandler]:
    """The high-volume projection events, each run of them one bulk upsert."""

    async def clients_upserted(db: AsyncSession, envs: Sequence[Envelope[ClientUpserted]]) -> None:
        await repo.upsert_newest(
            db, clients, [repo.client_row(e.practice_id, e.data.client, e.occurred_at) for e in envs]
        )

    async def clinicians_upserted(db: AsyncSession, envs: Sequence[Envelope[ClinicianUpserted]]) -> None:
        rows = [repo.clinician_row(e.practice_id, e.data.clinician, e.occurred_at) for e in envs]
        await repo.upsert_newest(db, clinicians, rows)

    async def sessions_completed(db: AsyncSession, envs: Sequence[Envelope[SessionCompleted]]) -> None:
        rows = [repo.session_row(e.practice_id, e.data.session, e.occurred_at) for e in envs]
        await repo.upsert_newest(db, sessions, rows)

    return {
        "ClientUpserted": clients_upserted,
        "ClinicianUpserted": clinicians_upserted,
        "SessionCompleted": sessions_completed,
    }


def void_handler(outbox: Outbox) -> Handler:
    async def session_voided(db: AsyncSession, env: Envelope[SessionVoided]) -> None:
        # Lock the session's bill before the session (the order cancel uses), so a void and a
        # cancel of the same bill at the same time queue up instead of deadlocking.
        current = await repo.session_bill(db, env.practice_id, env.data.session_id)
        if current is not None:
            await repo.get_bill(db, env.practice_id, current, lock=True)
        bill_id = await repo.void_session(db, env.practice_id, env.data.session_id, env.data.reason)
        if bill_id is not None:
            await bills.flag_voided_session(db, outbox, env.practice_id, bill_id, env.data.session_id)

    return session_voided


def payments_handlers(outbox: Outbox) -> dict[str, Handler]:
    async def payment_recorded(db: AsyncSession, env: Envelope[PaymentRecorded]) -> None:
        payment = env.data.payment
        for bill_id, cents in per_bill(env.data.allocations):
            fact: dict[str, Any] = {
                "fact_id": payment.id,
                "payment_id": payment.id,
                "kind": "payment",
                "payer": payment.payer,
                "method": payment.method,
                "amount_cents": cents,
                "occurred_at": payment.paid_at,
            }
            await bills.apply_payment(
                db, outbox, env.practice_id, bill_id=bill_id, fact=fact, client_id=payment.client_id
            )

    async def payment_refunded(db: AsyncSession, env: Envelope[PaymentRefunded]) -> None:
        refund, payment = env.data.refund, env.data.payment
        for bill_id, cents in per_bill(env.data.allocations):
            fact: dict[str, Any] = {
                "fact_id": refund.id,
                "payment_id": payment.id,
                "kind": "refund",
                "payer": payment.payer,
                "method": payment.method,
                "amount_cents": cents,
                "occurred_at": refund.refunded_at,
            }
            await bills.apply_refund(db, outbox, env.practice_id, bill_id=bill_id, fact=fact)

    return {
        "PaymentRecorded": payment_recorded, "PaymentRefunded": payment_refunded, "CreditChanged": credit_changed,
        "PaymentPlanCreated": plan_changed, "PaymentPlanDefaulted": plan_changed, "PaymentPlanCompleted": plan_changed,
        "PaymentPlanCancelled": plan_changed,
    }  # fmt: skip


async def plan_changed(db: AsyncSession, env: Envelope[Any]) -> None:
    """Keep the client's payment plans for statements (the latest state; events of one client
    arrive in order)."""
    plan = env.data.plan
    values = {"client_id": plan.client_id, "status": plan.status, "total_cents": plan.total_cents,
              "frequency": plan.frequency, "schedule": [i.model_dump(mode="json") for i in plan.schedule]}  # fmt: skip
    stmt = insert(payment_plans).values(practice_id=env.practice_id, id=plan.id, **values)
    await db.execute(stmt.on_conflict_do_update(index_elements=[payment_plans.c.practice_id, payment_plans.c.id],
                                                set_=values))  # fmt: skip


async def credit_changed(db: AsyncSession, env: Envelope[CreditChanged]) -> None:
    """Keep the client's credit ledger for statements (one row per ledger entry)."""
    entry = env.data
    stmt = insert(credit_entries).values(
        practice_id=env.practice_id, entry_id=entry.entry_id, client_id=entry.client_id, kind=entry.kind,
        amount_cents=entry.amount_cents, balance_cents=entry.balance_cents, reason=entry.reason,
        occurred_at=env.occurred_at,
    )  # fmt: skip
    await db.execute(stmt.on_conflict_do_nothing())


def per_bill(allocations: Sequence[Allocation]) -> list[tuple[str, int]]:
    """One amount per bill (a payment is one fact per bill), bills in a fixed order so two
    events touching the same bills lock them in the same order."""
    totals: dict[str, int] = {}
    for allocation in allocations:
        totals[allocation.bill_id] = totals.get(allocation.bill_id, 0) + allocation.amount_cents
    return sorted(totals.items())


async def document_rendered(db: AsyncSession, env: Envelope[DocumentRendered]) -> None:
    """Keep the id of the newest rendered version of each bill, statement, superbill and estimate."""
    doc = env.data
    table = {
        "bill": bills_table, "statement": statements_table, "superbill": superbills_table,
        "good_faith_estimate": good_faith_estimates,
    }.get(doc.kind)  # fmt: skip
    if table is not None:
        await repo.record_document(db, table, env.practice_id, doc.source_id, doc.document_id, doc.version)
