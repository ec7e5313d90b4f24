"""Refunds: under a lock on the payment, never more than what is left of it. The part of the
payment still sitting as client credit is taken back first, then its bills (which reopen).
A payment from credit is refunded back to credit. Online payments are refunded through
Stripe with no transaction open; a refund Stripe refuses is reversed in the ledgers."""

import uuid
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import payments, refunds
from services.payments.domain import Application, PaymentRuleError, plan_refund, plan_reversal
from services.payments.schemas import RefundIn
from services.payments.service import Payments, allocations, payment_info, payment_row, refund_view, rule_error
from services.payments.stripe_gateway import StripeDeclined, StripeUnavailable
from shared import audit
from shared.events import PaymentRefunded, RefundInfo
from shared.http import ApiError, idempotent_replay, idempotent_store, not_found, request_fingerprint

Answer = tuple[int, dict[str, Any]]


async def refund_payment(ctx: Payments, practice_id: str, payment_id: str, req: RefundIn, key: str | None) -> Answer:
    fingerprint = request_fingerprint(
        "POST", f"/v1/payments/{payment_id}/refunds", req.model_dump(exclude={"idempotency_key"})
    )
    async with ctx.svc.db.transaction() as session:
        replay = await idempotent_replay(session, ctx.svc.idempotency_table, practice_id, key, fingerprint)
        if replay:
            return await _current(session, replay)
        payment = await repo.lock_payment(session, practice_id, payment_id)
        if payment is None:
            raise not_found("payment")
        through_stripe = payment.stripe_payment_intent_id is not None
        refund = await refund_in_tx(
            ctx,
            session,
            payment,
            req.amount_cents,
            bill_id=req.bill_id,
            reason=req.reason,
            source="api",
            status="pending" if through_stripe else "succeeded",
        )
        result: Answer = 201, refund_view(refund)
        await idempotent_store(session, ctx.svc.idempotency_table, practice_id, key, *result)
    if not through_stripe:
        return result
    try:
        stripe_id = await ctx.stripe.refund(
            refund_id=refund.id, payment_intent_id=payment.stripe_payment_intent_id, amount_cents=refund.amount_cents
        )
    except StripeDeclined as exc:
        if await refused(ctx, refund.id, exc, key):
            raise ApiError(409, "stripe_refused_refund", exc.reason) from exc
        stripe_id = None
    except StripeUnavailable:
        return result
    return await settle_refund(ctx, refund.id, stripe_id, key)


ALREADY_REFUNDED = "charge_already_refunded"
"""Stripe's answer when the charge has no room left: refunded in full another way (the
dashboard). Our refund is then covered by that refund, never a refusal to reverse."""


async def refused(ctx: Payments, refund_id: str, exc: StripeDeclined, key: str | None) -> bool:
    """Stripe said no to a refund: reverse it (True), unless the charge was already refunded at
    Stripe, in which case the client has the money and the refund stands (False)."""
    if exc.code == ALREADY_REFUNDED:
        return False
    await reverse_refund(ctx, refund_id, exc.reason, key)
    return True


async def _current(session: AsyncSession, replay: Answer) -> Answer:
    """A stored `pending` refund is replayed as it is now (the reconciler may have settled it)."""
    status, body = replay
    if status != 201 or body.get("status") != "pending" or "id" not in body:
        return replay
    return 201, refund_view(await _refund_row(session, body["id"]))


async def refund_in_tx(
    ctx: Payments,
    session: AsyncSession,
    payment: Row[Any],
    amount_cents: int | None,
    *,
    bill_id: str | None,
    reason: str | None,
    source: str,
    status: str,
    stripe_refund_id: str | None = None,
) -> Row[Any]:
    """Plan and write a refund (caller holds the payment lock). A succeeded one stages
    PaymentRefunded now; a pending one when Stripe confirms."""
    if payment.status != "succeeded":
        raise ApiError(409, "payment_not_refundable", f"a {payment.status} payment cannot be refunded")
    applied = await repo.payment_applications(session, payment.id)
    client_of_bill = {b: r.client_id for b, r in (await repo.lock_bills(session, [a.bill_id for a in applied])).items()}
    await repo.lock_client(session, payment.practice_id, payment.client_id)
    credit_refundable = 0
    if payment.method != "credit":
        part = await repo.payment_credit_part(session, payment.id)
        credit_refundable = min(part, await repo.credit_balance(session, payment.practice_id, payment.client_id))
    try:
        amount, plan = plan_refund(
            amount_cents,
            paid_cents=payment.amount_cents,
            refunded_cents=await repo.refunded_total(session, payment.id),
            credit_refundable_cents=credit_refundable,
            applied=[a for a in applied if a.amount_cents > 0],
            bill_id=bill_id,
        )
    except PaymentRuleError as exc:
        raise rule_error(exc) from exc
    refund_id = str(uuid.uuid4())
    await session.execute(
        refunds.insert().values(
            id=refund_id,
            practice_id=payment.practice_id,
            payment_id=payment.id,
            client_id=payment.client_id,
            amount_cents=amount,
            credit_cents=plan.credit_cents,
            reason=reason,
            source=source,
            status=status,
            stripe_refund_id=stripe_refund_id,
            plan={"allocations": [{"bill_id": a.bill_id, "amount_cents": a.amount_cents} for a in plan.applications]},
        )
    )
    await repo.add_applications(
        session,
        practice_id=payment.practice_id,
        client_of_bill=client_of_bill,
        payer=payment.payer,
        payment_id=payment.id,
        refund_id=refund_id,
        kind="refund",
        applications=plan.applications,
        sign=-1,
    )
    if payment.method == "credit":
        await ctx.credit(
            session, payment.practice_id, payment.client_id, "refund_to_credit", amount,
            payment_id=payment.id, refund_id=refund_id, reason=reason,
        )  # fmt: skip
    elif plan.credit_cents:
        await ctx.credit(
            session, payment.practice_id, payment.client_id, "refund", -plan.credit_cents,
            payment_id=payment.id, refund_id=refund_id, reason=reason,
        )  # fmt: skip
    refund = await _refund_row(session, refund_id)
    if status == "succeeded":
        await _stage_refunded(ctx, session, payment, refund)
    await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=payment.practice_id,
                              action=f"record_{source}_refund", kind="refund", resource_id=refund_id,
                              client_id=payment.client_id)  # fmt: skip
    return refund


async def _refund_row(session: AsyncSession, refund_id: str) -> Row[Any]:
    return (await session.execute(select(refunds).where(refunds.c.id == refund_id))).one()


async def _stage_refunded(ctx: Payments, session: AsyncSession, payment: Row[Any], refund: Row[Any]) -> None:
    parts = [Application(a["bill_id"], a["amount_cents"]) for a in refund.plan.get("allocations", [])]
    left = await repo.settled_open(session, [p.bill_id for p in parts], payment.payer)
    await ctx.stage(
        session,
        payment.practice_id,
        payment.client_id,
        PaymentRefunded(
            refund=RefundInfo(
                id=refund.id,
                payment_id=payment.id,
                client_id=payment.client_id,
                amount_cents=refund.amount_cents,
                reason=refund.reason,
                refunded_at=refund.created_at,
            ),
            payment=payment_info(payment),
            allocations=allocations(parts, left),
            credit_cents=refund.credit_cents,
        ),
    )


async def settle_refund(ctx: Payments, refund_id: str, stripe_refund_id: str | None, key: str | None) -> Answer:
    async with ctx.svc.db.transaction() as session:
        refund = await settle_refund_in(ctx, session, refund_id, stripe_refund_id)
        result: Answer = 201, refund_view(refund)
        await idempotent_store(session, ctx.svc.idempotency_table, refund.practice_id, key, *result)
    return result


async def settle_refund_in(
    ctx: Payments, session: AsyncSession, refund_id: str, stripe_refund_id: str | None
) -> Row[Any]:
    """A pending refund Stripe has made (its id), or that a Stripe-side refund covers (None)."""
    refund = (await session.execute(select(refunds).where(refunds.c.id == refund_id).with_for_update())).one()
    if refund.status == "pending":
        await session.execute(
            update(refunds)
            .where(refunds.c.id == refund_id)
            .values(status="succeeded", stripe_refund_id=stripe_refund_id)
        )
        refund = await _refund_row(session, refund_id)
        await _stage_refunded(ctx, session, await payment_row(session, refund.payment_id), refund)
        await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=refund.practice_id,
                                  action="settle_refund", kind="refund", resource_id=refund_id,
                                  client_id=refund.client_id)  # fmt: skip
    return refund


async def reverse_refund(ctx: Payments, refund_id: str, reason: str, key: str | None) -> None:
    async with ctx.svc.db.transaction() as session:
        practice_id = await reverse_refund_in(ctx, session, refund_id, reason)
        if key and practice_id:
            body = {"error": {"code": "stripe_refused_refund", "message": reason}}
            await idempotent_store(session, ctx.svc.idempotency_table, practice_id, key, 409, body)


async def reverse_refund_in(ctx: Payments, session: AsyncSession, refund_id: str, reason: str) -> str | None:
    """Stripe refused: the money never left, so give it back: to each bill at most what is
    open on it now (under the bill locks: it may have been paid again or cancelled since),
    the rest to the client's credit. Returns the practice, or None if not pending."""
    pending = (await session.execute(select(refunds.c.payment_id).where(refunds.c.id == refund_id))).one()
    payment = (
        await session.execute(select(payments).where(payments.c.id == pending.payment_id).with_for_update())
    ).one()
    refund = (await session.execute(select(refunds).where(refunds.c.id == refund_id).with_for_update())).one()
    if refund.status != "pending":
        return None
    taken = [Application(a["bill_id"], a["amount_cents"]) for a in refund.plan.get("allocations", [])]
    locked = await repo.lock_bills(session, [t.bill_id for t in taken])
    open_now = await repo.balances(session, locked, payment.payer)
    back = plan_reversal(taken, open_now)
    await repo.add_applications(
        session,
        practice_id=refund.practice_id,
        client_of_bill={b: r.client_id for b, r in locked.items()},
        payer=payment.payer,
        payment_id=payment.id,
        refund_id=refund.id,
        kind="refund_reversed",
        applications=back,
    )
    await repo.lock_client(session, refund.practice_id, refund.client_id)
    to_bills = sum(a.amount_cents for a in back)
    # A refund of a credit payment had put its whole amount into credit; any other refund had
    # taken its credit part from there. Either way, what the bills cannot take stays credit.
    credit = -to_bills if payment.method == "credit" else refund.amount_cents - to_bills
    await ctx.credit(
        session, refund.practice_id, refund.client_id, "refund_reversed", credit,
        payment_id=payment.id, refund_id=refund.id, reason=reason,
    )  # fmt: skip
    await session.execute(update(refunds).where(refunds.c.id == refund_id).values(status="failed", reason=reason))
    await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=refund.practice_id,
                              action="reverse_refund", kind="refund", resource_id=refund_id,
                              client_id=refund.client_id)  # fmt: skip
    return str(refund.practice_id)
