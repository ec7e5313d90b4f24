"""Resolves payments and refunds left `pending` when Stripe did not answer in time. A payment
whose intent id is known is looked up; without it the charge is retried with the same
idempotency key (our payment id) and the same parameters (all stored on the payment), which
Stripe answers with the original intent instead of charging again. An intent Stripe does not
know (`resource_missing`) is a definite answer: it was created under our payment id as
idempotency key and never charged anything, so the payment fails (PaymentFailed, its hold on
the bills released) instead of being asked about on every pass. A pending refund is
retried the same way (key: our refund id). One replica at a time (advisory lock)."""

import datetime as dt
import logging
import zlib
from collections.abc import Awaitable, Callable

from sqlalchemy import select, text

from services.payments.db import payments, refunds
from services.payments.recording import charge_online, settle_intent
from services.payments.refunds import refused, settle_refund
from services.payments.service import Payments
from services.payments.stripe_gateway import MISSING, StripeDeclined, StripeUnavailable
from shared import audit
from shared.polling import every

log = logging.getLogger(__name__)
LOCK_ID = zlib.crc32(b"payments:reconciler")


async def reconcile_pending(ctx: Payments, *, older_than: dt.timedelta) -> int:
    """One pass; returns how many pending payments and refunds it looked at. What it settles,
    fails or reverses is the reconciler's doing in the audit log (actor `reconciler`)."""
    with audit.acting_as("reconciler", "automation"):
        return await _reconcile(ctx, older_than)


async def _reconcile(ctx: Payments, older_than: dt.timedelta) -> int:
    cutoff = dt.datetime.now(dt.UTC) - older_than
    async with ctx.svc.db.engine.connect() as conn:
        if not await conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": LOCK_ID}):
            return 0
        try:
            pending_payments = (
                await conn.execute(
                    select(payments).where(payments.c.status == "pending", payments.c.created_at < cutoff).limit(100)
                )
            ).all()
            pending_refunds = (
                await conn.execute(
                    select(refunds.c.id, refunds.c.amount_cents, payments.c.stripe_payment_intent_id)
                    .join(payments, payments.c.id == refunds.c.payment_id)
                    .where(refunds.c.status == "pending", refunds.c.created_at < cutoff)
                    .limit(100)
                )
            ).all()
            await conn.commit()
            for row in pending_payments:
                try:
                    if row.stripe_payment_intent_id:
                        await _settle_from_stripe(ctx, row.id, row.stripe_payment_intent_id)
                    else:
                        await charge_online(ctx, row, key=None)
                except Exception:
                    log.exception("pending payment %s not resolved yet", row.id)
            for refund in pending_refunds:
                try:
                    stripe_id = await ctx.stripe.refund(
                        refund_id=refund.id,
                        payment_intent_id=refund.stripe_payment_intent_id,
                        amount_cents=refund.amount_cents,
                    )
                    await settle_refund(ctx, refund.id, stripe_id, None)
                except StripeDeclined as exc:
                    if not await refused(ctx, refund.id, exc, None):
                        await settle_refund(ctx, refund.id, None, None)
                except StripeUnavailable:
                    log.warning("Stripe still unavailable for pending refund %s", refund.id)
            return len(pending_payments) + len(pending_refunds)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
            await conn.commit()


async def _settle_from_stripe(ctx: Payments, payment_id: str, intent_id: str) -> None:
    try:
        result = await ctx.stripe.retrieve_intent(intent_id)
    except StripeDeclined as exc:
        if exc.code != MISSING:
            raise
        log.warning("payment %s failed: Stripe has no payment intent %s", payment_id, intent_id)
        reason = StripeDeclined(MISSING, f"Stripe has no payment intent {intent_id}: nothing was charged")
        await settle_intent(ctx, payment_id, None, declined=reason)
        return
    await settle_intent(ctx, payment_id, result)


def reconciler_loop(ctx: Payments) -> Callable[[], Awaitable[None]]:
    interval = ctx.settings.payments_reconcile_interval_s

    async def loop() -> None:
        await every(
            interval, lambda: reconcile_pending(ctx, older_than=dt.timedelta(seconds=interval)), log=log,
            failure="payment reconciler pass failed", run_at_start=False,
        )  # fmt: skip

    return loop
