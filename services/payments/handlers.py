"""Events in → payments' own state: the bill projection (and automatic use of credit on a
new bill), rejected allocations turned into credit, households, and third-party payer
sessions as expected receivables. Each runs in the consumer's transaction with the inbox."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import clients, expected_receivables, payments, practices
from services.payments.domain import Application, expected_payer_amount
from services.payments.plan_state import complete_paid_plans
from services.payments.recording import apply_credit_to_bill
from services.payments.service import Payments
from shared import topics
from shared.events import (
    AllocationRejected,
    BillEvent,
    ClientUpserted,
    Envelope,
    PracticeAutomationChanged,
    SessionCompleted,
    SessionVoided,
)
from shared.runtime import Service


class PaymentHandlers:
    def __init__(self, ctx: Payments) -> None:
        self.ctx = ctx

    async def bill_changed(self, session: AsyncSession, env: Envelope[BillEvent]) -> None:
        """A bill paid, written off or cancelled on billing's side may complete a payment plan."""
        await repo.upsert_bill(session, env.practice_id, env.data.bill)
        await complete_paid_plans(self.ctx, session, env.practice_id, [env.data.bill.id])

    async def bill_created(self, session: AsyncSession, env: Envelope[BillEvent]) -> None:
        await repo.upsert_bill(session, env.practice_id, env.data.bill)
        await apply_credit_to_bill(self.ctx, session, env.practice_id, env.data.bill.id)

    async def practice_automation(self, session: AsyncSession, env: Envelope[PracticeAutomationChanged]) -> None:
        """When and how autopay runs for the practice (billing owns the settings)."""
        values = {
            "timezone": env.data.timezone,
            "currency": env.data.currency,
            "autopay_time": env.data.autopay_time,
            "autopay_skip_insurance_pending": env.data.autopay_skip_insurance_pending,
        }
        stmt = insert(practices).values(practice_id=env.practice_id, **values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[practices.c.practice_id], set_=values | {"updated_at": func.now()}
            )
        )

    async def allocation_rejected(self, session: AsyncSession, env: Envelope[AllocationRejected]) -> None:
        """The bill was cancelled before our payment reached it: the money becomes credit."""
        data = env.data
        payment = (
            await session.execute(
                select(payments)
                .where(payments.c.id == data.payment_id, payments.c.practice_id == env.practice_id)
                .with_for_update()
            )
        ).one_or_none()
        if payment is None:
            return
        locked = await repo.lock_bills(session, [data.bill_id])
        on_bill = sum(
            a.amount_cents for a in await repo.payment_applications(session, payment.id) if a.bill_id == data.bill_id
        )
        amount = min(data.amount_cents, on_bill)
        if amount <= 0:
            return
        await repo.add_applications(
            session,
            practice_id=env.practice_id,
            client_of_bill={data.bill_id: locked[data.bill_id].client_id if data.bill_id in locked else data.client_id},
            payer=payment.payer,
            payment_id=payment.id,
            kind="rejected",
            applications=[Application(data.bill_id, amount)],
            sign=-1,
        )
        if payment.method == "credit":
            kind = "refund_to_credit"
        else:
            kind = "allocation_rejected"
        await repo.lock_client(session, env.practice_id, payment.client_id)
        await self.ctx.credit(
            session,
            env.practice_id,
            payment.client_id,
            kind,
            amount,
            payment_id=payment.id,
            bill_id=data.bill_id,
            reason=data.reason,
        )

    async def client_upserted(self, session: AsyncSession, env: Envelope[ClientUpserted]) -> None:
        client = env.data.client
        contact = next((g for g in client.guardians if g.is_billing_contact), None)
        values = {
            "household_id": client.household_id,
            "is_minor": client.is_minor,
            "billing_contact_name": contact.name if contact else None,
        }
        stmt = insert(clients).values(practice_id=env.practice_id, id=client.id, **values)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[clients.c.practice_id, clients.c.id], set_=values)
        )

    async def sessions_completed(self, session: AsyncSession, envs: Sequence[Envelope[SessionCompleted]]) -> None:
        """A session paid by a platform (Headway, Alma) is an expected receivable, not a bill; one
        whose payer changed away from a platform is no longer expected from it. A run of these
        events is two statements whatever its length (each event overwrites the session's row, so
        the last event of a session in the run decides)."""
        t = expected_receivables
        platforms = self.ctx.settings.platforms()
        latest: dict[tuple[str, str], dict[str, Any] | None] = {}
        for env in envs:
            s = env.data.session
            latest[env.practice_id, s.id] = None
            if s.payer in platforms:
                lines = [(svc.code, svc.fee_cents) for svc in s.services if svc.billable]
                latest[env.practice_id, s.id] = {
                    "client_id": s.client_id,
                    "payer": s.payer,
                    "date_of_service": s.date_of_service,
                    "expected_cents": expected_payer_amount(s.payer, lines, self.ctx.settings.payer_fee_schedule),
                }
        gone = [key for key, values in latest.items() if values is None]
        if gone:
            await session.execute(delete(t).where(tuple_(t.c.practice_id, t.c.session_id).in_(gone)))
        expected = [{"practice_id": p, "session_id": s} | v for (p, s), v in latest.items() if v is not None]
        if expected:
            stmt = insert(t).values(expected)
            columns = ("client_id", "payer", "date_of_service", "expected_cents")
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.c.practice_id, t.c.session_id], set_={c: stmt.excluded[c] for c in columns}
                )
            )

    async def session_voided(self, session: AsyncSession, env: Envelope[SessionVoided]) -> None:
        t = expected_receivables
        await session.execute(
            update(t)
            .where(t.c.practice_id == env.practice_id, t.c.session_id == env.data.session_id)
            .values(voided=True)
        )

    def subscribe(self, svc: Service) -> None:
        svc.consume(
            topics.BILLING,
            {
                "BillCreated": self.bill_created,
                "BillUpdated": self.bill_changed,
                "BillPaid": self.bill_changed,
                "BillCancelled": self.bill_changed,
                "BillShared": self.bill_changed,
                "AllocationRejected": self.allocation_rejected,
                "PracticeAutomationChanged": self.practice_automation,
            },
        )
        svc.consume(
            topics.SCHEDULING,
            {
                "ClientUpserted": self.client_upserted,
                "SessionVoided": self.session_voided,
            },
            batch_handlers={"SessionCompleted": self.sessions_completed},
        )
