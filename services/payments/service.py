"""What every payments use-case shares: the service context, the outbound events and the
payment's public view (computed from the ledgers, never from stored totals)."""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import payments, refunds
from services.payments.domain import Application, PaymentRuleError
from services.payments.stripe_gateway import StripeGateway
from shared import topics
from shared.auth import Principal, client_facing
from shared.events import Allocation, CreditChanged, PaymentInfo, new_envelope
from shared.http import ApiError
from shared.runtime import Service


@dataclass
class Payments:
    """The payments service's moving parts, handed to every use-case."""

    svc: Service
    stripe: StripeGateway

    @property
    def settings(self) -> Any:
        return self.svc.settings

    async def stage(self, session: AsyncSession, practice_id: str, client_id: str, *events: Any) -> None:
        await self.svc.outbox.stage(
            session, topics.PAYMENTS, [(client_id, new_envelope(practice_id, e)) for e in events]
        )

    async def credit(
        self, session: AsyncSession, practice_id: str, client_id: str, kind: str, amount_cents: int, **refs: Any
    ) -> None:
        """Append a credit entry and stage CreditChanged (caller holds the client lock)."""
        if not amount_cents:
            return
        entry_id, balance = await repo.add_credit(session, practice_id, client_id, kind, amount_cents, **refs)
        await self.stage(
            session,
            practice_id,
            client_id,
            CreditChanged(
                client_id=client_id,
                entry_id=entry_id,
                kind=kind,
                amount_cents=amount_cents,
                balance_cents=balance,
                reason=refs.get("reason"),
            ),
        )

    async def wait_for_bills(self, bill_ids: Iterable[str]) -> None:
        """Billing's events are eventually consistent: a bill created a moment ago may not be in
        our projection yet. Poll briefly before calling it unknown."""
        wanted = set(bill_ids)
        if not wanted:
            return
        deadline = asyncio.get_running_loop().time() + self.settings.payments_bill_wait_ms / 1000
        while True:
            async with self.svc.db.transaction() as session:
                missing = wanted - await repo.existing_bill_ids(session, wanted)
            if not missing or asyncio.get_running_loop().time() >= deadline:
                return
            await asyncio.sleep(0.1)


def rule_error(exc: PaymentRuleError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def payment_info(row: Row[Any]) -> PaymentInfo:
    return PaymentInfo(
        id=row.id,
        client_id=row.client_id,
        payer=row.payer,
        method=row.method,
        amount_cents=row.amount_cents,
        status=row.status,
        paid_at=row.paid_at,
        online=row.online,
        card_brand=row.card_brand,
        card_last4=row.card_last4,
        reference=row.reference,
    )


def allocations(applications: Iterable[Application], balance_after: dict[str, int] | None = None) -> list[Allocation]:
    left = balance_after or {}
    return [
        Allocation(bill_id=a.bill_id, amount_cents=a.amount_cents, balance_after_cents=left.get(a.bill_id))
        for a in applications
        if a.amount_cents > 0
    ]


async def payment_row(session: AsyncSession, payment_id: str) -> Row[Any]:
    return (await session.execute(select(payments).where(payments.c.id == payment_id))).one()


async def payment_view(
    ctx: Payments, session: AsyncSession, row: Row[Any], *, fresh: Sequence[Application] | None = None
) -> dict[str, Any]:
    """A payment as the API shows it: what it applied to each bill now, its credit part, refunds.
    `fresh`: the payment was recorded and settled in this very transaction with these (net)
    applications, so nothing needs reading back: no refunds yet, its credit part is the rest."""
    if fresh is not None:
        applied, refund_rows, credit_cents = list(fresh), [], row.credit_cents
    else:
        applied = await repo.payment_applications(session, row.id)
        refund_rows = (
            await session.execute(
                select(refunds).where(refunds.c.payment_id == row.id).order_by(refunds.c.created_at.desc())
            )
        ).all()
        credit_cents = await repo.payment_credit_part(session, row.id)
    refunded = sum(r.amount_cents for r in refund_rows if r.status in ("pending", "succeeded"))
    return {
        "id": row.id,
        "client_id": row.client_id,
        "payer": row.payer,
        "payer_name": row.payer_name,
        "method": row.method,
        "amount_cents": row.amount_cents,
        "status": row.status,
        "online": row.online,
        "card_id": row.card_id,
        "card_brand": row.card_brand,
        "card_last4": row.card_last4,
        "reference": row.reference,
        "notes": row.notes,
        "appointment_id": row.appointment_id,
        "paid_at": row.paid_at,
        "created_at": row.created_at,
        "bill_id": applied[0].bill_id if len(applied) == 1 else None,
        "allocations": [{"bill_id": a.bill_id, "amount_cents": a.amount_cents} for a in applied],
        "credit_cents": credit_cents,
        "refunded_cents": refunded,
        "refundable_cents": row.amount_cents - refunded if row.status == "succeeded" else 0,
        "refunds": [refund_view(r) for r in refund_rows],
        "failure_reason": row.failure_reason,
        "stripe_payment_intent_id": row.stripe_payment_intent_id,
        "stripe_charge_id": row.stripe_charge_id,
        "stripe_dashboard_url": ctx.stripe.dashboard_url(row.stripe_payment_intent_id),
    }


PAYMENT_STAFF_ONLY = ("notes", "payer_name", "stripe_payment_intent_id", "stripe_charge_id", "stripe_dashboard_url")
REFUND_STAFF_ONLY = ("reason", "source", "stripe_refund_id")
"""What a client does not see of a payment: staff notes, the payer's and Stripe's internals."""


def client_payment_view(principal: Principal, view: dict[str, Any]) -> dict[str, Any]:
    """`payment_view` as the caller may see it: whole for staff, client-facing for a client."""
    shown = client_facing(principal, view, PAYMENT_STAFF_ONLY)
    if not principal.is_staff:
        shown["refunds"] = [client_facing(principal, r, REFUND_STAFF_ONLY) for r in view["refunds"]]
    return shown


def refund_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "payment_id": row.payment_id,
        "client_id": row.client_id,
        "amount_cents": row.amount_cents,
        "credit_cents": row.credit_cents,
        "allocations": row.plan.get("allocations", []),
        "reason": row.reason,
        "source": row.source,
        "status": row.status,
        "stripe_refund_id": row.stripe_refund_id,
        "created_at": row.created_at,
    }
