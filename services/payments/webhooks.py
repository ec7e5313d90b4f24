"""Stripe webhooks: signature checked, each event processed once. Payment intents settle
pending payments; refunds and disputes made in the Stripe dashboard, full or partial, are
recorded as refunds so they show on the payment and reopen the bill.

Once: the event id is inserted first, in the same transaction as its effect, so two
deliveries racing each other cannot both apply it (the second waits on the row, then sees
it). Trust: what Stripe reports is matched to one of our payments within its practice, and
an amount or currency other than ours is held for review, never applied.

Order: Stripe does not promise to deliver events in order, and our settlement of a payment
(payment_intent.succeeded, the request's own read-back, the reconciler) may come after the
charge was refunded or disputed. Such a refund or dispute is not dropped: the event is answered
409 and not marked processed, so Stripe delivers it again (with backoff, for days) and it is
applied once the payment has settled. Chosen over parking it ourselves because the event stays
the one record of it, the existing once-only rules (event id, amounts already refunded, the
dispute id) apply unchanged, and nothing new has to be replayed on settlement."""

import logging
from typing import Any

import stripe
from fastapi import APIRouter, Request
from sqlalchemy import Row, and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import pay_attempts
from services.payments import repository as repo
from services.payments.api import ctx_of
from services.payments.db import payments, refunds, stripe_events
from services.payments.recording import settle_intent_in
from services.payments.refunds import refund_in_tx, reverse_refund_in, settle_refund_in
from services.payments.service import Payments
from services.payments.stripe_gateway import intent_result
from shared import audit
from shared.http import ApiError
from shared.runtime import ServiceDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["stripe"])


@router.post("/v1/stripe/webhook", summary="Stripe events (signature verified, each processed once)")
async def stripe_webhook(request: Request, service: ServiceDep) -> dict[str, Any]:
    ctx = ctx_of(service)
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("stripe-signature"), ctx.settings.stripe_webhook_secret
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise ApiError(400, "invalid_signature", "the Stripe signature does not match this payload") from exc
    try:
        async with ctx.svc.db.transaction() as session:
            first = await session.scalar(
                insert(stripe_events)
                .values(id=event["id"], type=event["type"])
                .on_conflict_do_nothing()
                .returning(stripe_events.c.id)
            )
            if not first:
                return {"received": True, "duplicate": True}
            with audit.acting_as("stripe", "webhook"):  # what the event changes is Stripe's doing in the audit log
                await handle_event(ctx, session, event["type"], event["data"]["object"])
    except NotSettledYet as exc:
        log.warning("%s %s waits for payment %s to settle; Stripe delivers it again", event["type"], event["id"], exc)
        raise ApiError(
            409, "payment_not_settled", "the charge's payment is not settled here yet; deliver this event again later"
        ) from exc
    return {"received": True}


class NotSettledYet(Exception):
    """A refund or dispute of a charge whose payment is still pending here: rolled back with
    the event id, so a later delivery applies it (see the module docstring)."""


async def handle_event(ctx: Payments, session: AsyncSession, event_type: str, obj: Any) -> None:
    """Apply one Stripe event inside the transaction that records it."""
    if event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        payment_id = await _payment_for_intent(session, obj)
        if payment_id:
            await settle_intent_in(ctx, session, payment_id, intent_result(obj))
        elif attempt_id := await pay_attempts.attempt_of_intent(session, obj):  # the pay page's, not recorded yet
            await pay_attempts.settle_in(ctx, session, attempt_id, intent_result(obj), None)
    elif event_type in ("charge.refunded", "charge.dispute.created"):
        record = _refunded_in_stripe if event_type == "charge.refunded" else _disputed
        try:
            async with session.begin_nested():
                await record(ctx, session, obj)
        except ApiError as exc:
            # The money already left in Stripe; our rules cannot place it (e.g. the credit it
            # came from was spent). Logged for the operator; the balance check shows the drift.
            log.error("could not record %s for %s: %s", event_type, obj["id"], exc.message)


def _metadata(obj: Any, key: str) -> str | None:
    metadata = obj["metadata"] if "metadata" in obj else None
    return str(metadata[key]) if metadata and key in metadata else None


async def _payment_for_intent(session: AsyncSession, intent: Any) -> str | None:
    """Our payment for this intent: the one bound to it, or the one its metadata names if that
    is not bound to another intent yet; within the practice the metadata names."""
    payment_id = _metadata(intent, "payment_id")
    practice_id = _metadata(intent, "practice_id")
    match = payments.c.stripe_payment_intent_id == intent["id"]
    if payment_id:
        unbound = or_(payments.c.stripe_payment_intent_id.is_(None), match)
        match = or_(match, and_(payments.c.id == payment_id, unbound))
    q = select(payments.c.id).where(match)
    if practice_id:
        q = q.where(payments.c.practice_id == practice_id)
    return await session.scalar(q.limit(1))


async def _locked_payment_of_charge(session: AsyncSession, obj: Any, payment_intent: Any, charge_id: Any) -> Any:
    """The payment a charge (or a dispute of it) belongs to: intent and charge id must not point
    at two different payments, and the practice in the metadata, when given, must be its own."""
    conditions = []
    if payment_intent:
        conditions.append(payments.c.stripe_payment_intent_id == payment_intent)
    if charge_id:
        conditions.append(payments.c.stripe_charge_id == charge_id)
    if not conditions:
        return None
    practice_id = _metadata(obj, "practice_id")
    payment_id = _metadata(obj, "payment_id")  # Stripe copies the intent's metadata to its charge
    if payment_id and practice_id:  # ours, its intent not bound yet (Stripe's answer was lost)
        conditions.append(and_(payments.c.id == payment_id, payments.c.stripe_payment_intent_id.is_(None)))
    rows = (await session.execute(select(payments.c.id, payments.c.practice_id).where(or_(*conditions)))).all()
    if len(rows) != 1 or (practice_id and rows[0].practice_id != practice_id):
        return None
    return await repo.lock_payment(session, rows[0].practice_id, rows[0].id)


def _not_settled(payment: Row[Any]) -> bool:
    """True for a payment the charge cannot be placed on (failed, held for review); raises
    for one still pending, whose settlement must come first."""
    if payment.status == "pending":
        raise NotSettledYet(payment.id)
    return bool(payment.status != "succeeded")


def _same_money(payment: Row[Any], charge: Any) -> bool:
    amount = charge["amount"] if "amount" in charge else None
    currency = charge["currency"] if "currency" in charge else None
    same = amount == payment.amount_cents and str(currency).upper() == (payment.currency or "USD").upper()
    if not same:
        log.error("Stripe charge %s differs from payment %s in amount or currency", charge["id"], payment.id)
    return same


async def _refunded_in_stripe(ctx: Payments, session: AsyncSession, charge: Any) -> None:
    """Stripe's total refunded on the charge minus the refunds we know are done. Our own
    refunds still pending do not absorb it: the ones it can cover are settled by it (Stripe
    may have made them while our call timed out, or a dashboard refund made them moot), the
    rest is recorded as refunded in the dashboard."""
    payment = await _locked_payment_of_charge(session, charge, charge["payment_intent"], charge["id"])
    if payment is None or _not_settled(payment) or not _same_money(payment, charge):
        return
    extra = int(charge["amount_refunded"]) - await repo.refunded_total(
        session, payment.id, disputes=False, pending=False
    )
    extra = await _settle_or_reverse_pending(ctx, session, payment, extra, "the charge was refunded in Stripe")
    if extra > 0:
        await refund_in_tx(
            ctx, session, payment, extra, bill_id=None, reason="refunded in the Stripe dashboard",
            source="stripe_dashboard", status="succeeded",
        )  # fmt: skip


async def _disputed(ctx: Payments, session: AsyncSession, dispute: Any) -> None:
    """A dispute takes the money back from the practice: recorded like a refund."""
    payment = await _locked_payment_of_charge(session, dispute, dispute["payment_intent"], dispute["charge"])
    if payment is None or _not_settled(payment):
        return
    if await session.scalar(select(refunds.c.id).where(refunds.c.stripe_refund_id == dispute["id"])):
        return
    amount = int(dispute["amount"])
    left = payment.amount_cents - await repo.refunded_total(session, payment.id, pending=False)
    amount = min(amount, left)
    if amount <= 0:
        return
    await _make_room(ctx, session, payment, amount, "the charge was disputed")
    await refund_in_tx(
        ctx, session, payment, amount, bill_id=None, reason=f"dispute: {dispute['reason']}",
        source="dispute", status="succeeded", stripe_refund_id=dispute["id"],
    )  # fmt: skip


async def _pending_refunds(session: AsyncSession, payment_id: str) -> list[Row[Any]]:
    return list(
        (
            await session.execute(
                select(refunds)
                .where(refunds.c.payment_id == payment_id, refunds.c.status == "pending")
                .order_by(refunds.c.created_at, refunds.c.id)
                .with_for_update()
            )
        ).all()
    )


async def _settle_or_reverse_pending(
    ctx: Payments, session: AsyncSession, payment: Row[Any], extra: int, reason: str
) -> int:
    """Pending refunds the Stripe-side amount covers are settled by it (oldest first); returns
    what is left of the amount, with room made for it."""
    for refund in await _pending_refunds(session, payment.id):
        if 0 < refund.amount_cents <= extra:
            await settle_refund_in(ctx, session, refund.id, None)
            extra -= refund.amount_cents
    if extra > 0:
        await _make_room(ctx, session, payment, extra, reason)
    return min(extra, payment.amount_cents - await repo.refunded_total(session, payment.id))


async def _make_room(ctx: Payments, session: AsyncSession, payment: Row[Any], amount: int, reason: str) -> None:
    """Money Stripe already gave back leaves no room on the charge for our pending refunds that
    do not fit beside it: Stripe will refuse them, so they are reversed now (newest first)."""
    left = payment.amount_cents - await repo.refunded_total(session, payment.id)
    for refund in reversed(await _pending_refunds(session, payment.id)):
        if left >= amount:
            return
        await reverse_refund_in(ctx, session, refund.id, reason)
        left += refund.amount_cents
