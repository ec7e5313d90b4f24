"""Stripe webhooks: signature checked, each event processed once. Payment intents settle
pending payments; refunds and disputes made in the Stripe dashboard, full or partial, are
recorded as refunds so they show on the payment and reopen the bill."""

import logging
from typing import Any

import stripe
from fastapi import APIRouter, Request
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from services.payments import repository as repo
from services.payments.api import ctx_of
from services.payments.db import payments, refunds, stripe_events
from services.payments.recording import settle_intent
from services.payments.refunds import refund_in_tx
from services.payments.service import Payments
from services.payments.stripe_gateway import intent_result
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
    async with ctx.svc.db.transaction() as session:
        seen = await session.scalar(select(stripe_events.c.id).where(stripe_events.c.id == event["id"]))
    if seen:
        return {"received": True, "duplicate": True}
    await handle_event(ctx, event["type"], event["data"]["object"])
    async with ctx.svc.db.transaction() as session:
        await session.execute(insert(stripe_events).values(id=event["id"], type=event["type"]).on_conflict_do_nothing())
    return {"received": True}


async def handle_event(ctx: Payments, event_type: str, obj: Any) -> None:
    """Every branch is idempotent on its own, so a delivery racing its retry is harmless."""
    if event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        payment_id = await _payment_for_intent(ctx, obj)
        if payment_id:
            await settle_intent(ctx, payment_id, intent_result(obj))
    elif event_type in ("charge.refunded", "charge.dispute.created"):
        record = _refunded_in_stripe if event_type == "charge.refunded" else _disputed
        try:
            await record(ctx, obj)
        except ApiError as exc:
            # The money already left in Stripe; our rules cannot place it (e.g. the credit it
            # came from was spent). Logged for the operator; the balance check shows the drift.
            log.error("could not record %s for %s: %s", event_type, obj["id"], exc.message)


async def _payment_for_intent(ctx: Payments, intent: Any) -> str | None:
    metadata = intent["metadata"]
    payment_id = metadata["payment_id"] if metadata and "payment_id" in metadata else None
    async with ctx.svc.db.transaction() as session:
        return await session.scalar(
            select(payments.c.id).where(
                or_(payments.c.stripe_payment_intent_id == intent["id"], payments.c.id == payment_id)
            )
        )


async def _locked_payment_of_charge(session: Any, payment_intent: str | None, charge_id: str | None) -> Any:
    conditions = []
    if payment_intent:
        conditions.append(payments.c.stripe_payment_intent_id == payment_intent)
    if charge_id:
        conditions.append(payments.c.stripe_charge_id == charge_id)
    if not conditions:
        return None
    row = (await session.execute(select(payments.c.id, payments.c.practice_id).where(or_(*conditions)))).first()
    return await repo.lock_payment(session, row.practice_id, row.id) if row else None


async def _refunded_in_stripe(ctx: Payments, charge: Any) -> None:
    """Stripe's total refunded on the charge minus what we know of: the rest was refunded in
    the dashboard. Our rule caps it at what is left of the payment."""
    async with ctx.svc.db.transaction() as session:
        payment = await _locked_payment_of_charge(session, charge["payment_intent"], charge["id"])
        if payment is None or payment.status != "succeeded":
            return
        known = await repo.refunded_total(session, payment.id, disputes=False)
        left = payment.amount_cents - await repo.refunded_total(session, payment.id)
        extra = min(int(charge["amount_refunded"]) - known, left)
        if extra <= 0:
            return
        await refund_in_tx(
            ctx, session, payment, extra, bill_id=None, reason="refunded in the Stripe dashboard",
            source="stripe_dashboard", status="succeeded",
        )  # fmt: skip


async def _disputed(ctx: Payments, dispute: Any) -> None:
    """A dispute takes the money back from the practice: recorded like a refund."""
    async with ctx.svc.db.transaction() as session:
        payment = await _locked_payment_of_charge(session, dispute["payment_intent"], dispute["charge"])
        if payment is None or payment.status != "succeeded":
            return
        if await session.scalar(select(refunds.c.id).where(refunds.c.stripe_refund_id == dispute["id"])):
            return
        left = payment.amount_cents - await repo.refunded_total(session, payment.id)
        amount = min(int(dispute["amount"]), left)
        if amount <= 0:
            return
        await refund_in_tx(
            ctx, session, payment, amount, bill_id=None, reason=f"dispute: {dispute['reason']}",
            source="dispute", status="succeeded", stripe_refund_id=dispute["id"],
        )  # fmt: skip
