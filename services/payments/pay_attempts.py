"""Card payments from the public pay page, through Stripe PaymentIntents.

An attempt (our payment id, the intent's idempotency key) is written before Stripe is called.
Nothing is recorded on the bill until Stripe says the intent succeeded: then, once, the payment
is recorded under that same id (the attempt row is the lock; the webhook, the page's read-back
and the reconciler may all arrive, only the first records). A decline records nothing (no
PaymentFailed, so no "your payment failed" email to someone who just saw the decline on
screen) and its intent is cancelled so it cannot be retried with card after card."""

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import pay_attempts, payments
from services.payments.recording import CardRef, mark_succeeded, record_pending_in_tx
from services.payments.schemas import PaymentIn
from services.payments.service import Payments
from services.payments.stripe_gateway import CardDetails, IntentResult, StripeDeclined, StripeUnavailable
from shared import audit
from shared.auth import Principal
from shared.polling import every

log = logging.getLogger(__name__)
OPEN, SUCCEEDED, FAILED = "open", "succeeded", "failed"
KEYS = uuid.UUID("6f1b8a52-0c7e-4d4b-9a51-2f4a3c1d9e07")  # namespace of attempt ids made from Idempotency-Keys


def attempt_id_for(bill: Row[Any], key: str) -> str:
    """The attempt an Idempotency-Key stands for on this bill: a retry finds it again."""
    return str(uuid.uuid5(KEYS, f"{bill.practice_id}:{bill.id}:{key}"))


async def start(
    ctx: Payments, bill: Row[Any], amount_cents: int, ip: str, payment_method_id: str | None, key: str | None
) -> tuple[str, bool]:
    """A new attempt, or with an Idempotency-Key already seen for this bill, that one again
    (same id, so the same Stripe idempotency key). Returns (id, created)."""
    attempt_id = attempt_id_for(bill, key) if key else str(uuid.uuid4())
    async with ctx.svc.db.transaction() as session:
        created = await session.scalar(
            insert(pay_attempts)
            .values(
                id=attempt_id, practice_id=bill.practice_id, bill_id=bill.id, client_id=bill.client_id,
                amount_cents=amount_cents, currency=bill.currency, status=OPEN,
                stripe_payment_method_id=payment_method_id, ip=ip,
            )
            .on_conflict_do_nothing()
            .returning(pay_attempts.c.id)
        )  # fmt: skip
        if created:  # the pay page's write, in the audit log (shared.audit knows the request)
            await audit.record_request(session, 201, {"id": attempt_id, "client_id": bill.client_id},
                                       action="pay_page_payment", kind="payment")  # fmt: skip
    return attempt_id, created is not None


async def get(ctx: Payments, attempt_id: str) -> Row[Any] | None:
    async with ctx.svc.db.transaction() as session:
        return (await session.execute(select(pay_attempts).where(pay_attempts.c.id == attempt_id))).one_or_none()


async def create_intent(ctx: Payments, attempt_id: str) -> tuple[IntentResult, str]:
    """Create (or, with the same idempotency key, find again) the attempt's intent."""
    a = await get(ctx, attempt_id)
    assert a is not None
    if a.stripe_payment_intent_id:  # a replay: the intent exists (Stripe would answer the same one)
        return await ctx.stripe.intent_with_secret(a.stripe_payment_intent_id)
    result, secret = await ctx.stripe.pay_page_intent(
        payment_id=a.id, amount_cents=a.amount_cents, currency=a.currency,
        metadata={"practice_id": a.practice_id, "bill_id": a.bill_id, "source": "pay_page"},
        payment_method_id=a.stripe_payment_method_id,
    )  # fmt: skip
    async with ctx.svc.db.transaction() as session:
        await session.execute(
            update(pay_attempts)
            .where(pay_attempts.c.id == attempt_id, pay_attempts.c.stripe_payment_intent_id.is_(None))
            .values(stripe_payment_intent_id=result.intent_id)
        )
    return result, secret


async def fail(ctx: Payments, attempt_id: str, reason: str) -> None:
    async with ctx.svc.db.transaction() as session:
        await session.execute(
            update(pay_attempts)
            .where(pay_attempts.c.id == attempt_id, pay_attempts.c.status == OPEN)
            .values(status=FAILED, failure_reason=reason, settled_at=dt.datetime.now(dt.UTC))
        )


DECLINED = "declined"  # settle_in's word for "still open, but Stripe declined it: cancel the intent"


async def settle(ctx: Payments, attempt_id: str, result: IntentResult) -> str | None:
    """Apply what Stripe says about the attempt's intent; returns the attempt's status. A
    declined intent is cancelled at Stripe (then the attempt fails), so no other card can be
    tried on it; if Stripe refuses because it succeeded meanwhile, that is recorded instead."""
    card = await _card(ctx, result) if result.status == "succeeded" else None
    async with ctx.svc.db.transaction() as session:
        status = await settle_in(ctx, session, attempt_id, result, card)
    if status != DECLINED:
        return status
    try:
        cancelled = await ctx.stripe.cancel_intent(result.intent_id)
    except StripeDeclined:
        cancelled = await ctx.stripe.retrieve_intent(result.intent_id)
    return await settle(ctx, attempt_id, cancelled)


async def settle_in(
    ctx: Payments, session: AsyncSession, attempt_id: str, result: IntentResult, card: CardDetails | None
) -> str | None:
    """settle inside the caller's transaction (the webhook's, which records the event with it).
    Idempotent: a succeeded attempt is final; a failed one can still succeed (confirmed before
    our cancel reached Stripe) and is then recorded like any other. Never calls Stripe."""
    a = (
        await session.execute(select(pay_attempts).where(pay_attempts.c.id == attempt_id).with_for_update())
    ).one_or_none()
    if a is None:
        return None
    if a.status == SUCCEEDED:
        if card is not None:  # settled by the webhook, which has no card details: the read-back fills them in
            await session.execute(
                update(payments)
                .where(payments.c.id == a.id, payments.c.card_last4.is_(None))
                .values(card_brand=card.brand, card_last4=card.last4)
            )
        return str(a.status)
    if a.stripe_payment_intent_id not in (None, result.intent_id):
        log.error("pay attempt %s: intent %s is not its own", a.id, result.intent_id)
        return str(a.status)
    values: dict[str, Any] = {"stripe_payment_intent_id": result.intent_id}
    if result.status == "succeeded":
        if result.amount != a.amount_cents or (result.currency or "").upper() != a.currency.upper():
            log.error("pay attempt %s: the intent's amount or currency differs from ours; not recorded", a.id)
            return str(a.status)
        await _record(ctx, session, a, result, card)
        status = SUCCEEDED
        values |= {"status": SUCCEEDED, "settled_at": dt.datetime.now(dt.UTC)}
    elif result.status == "canceled":
        status = FAILED
        reason = a.failure_reason or result.failure_reason or "the payment was not completed"
        values |= {"status": FAILED, "settled_at": dt.datetime.now(dt.UTC), "failure_reason": reason}
    elif result.status == "requires_payment_method" and result.failure_reason and a.status == OPEN:
        status = DECLINED
        values["failure_reason"] = result.failure_reason
    else:
        return str(a.status)  # requires_action, processing, ...: not decided yet
    await session.execute(update(pay_attempts).where(pay_attempts.c.id == a.id).values(**values))
    # Settled by a webhook (the pay page's own read-back is recorded as its request).
    if status in (SUCCEEDED, FAILED) and status != a.status:
        await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=a.practice_id,
                                  action=f"pay_page_payment_{status}", kind="payment", resource_id=a.id,
                                  client_id=a.client_id)  # fmt: skip
    return status


async def _card(ctx: Payments, result: IntentResult) -> CardDetails | None:
    if not result.payment_method_id:
        return None
    try:
        return await ctx.stripe.card(result.payment_method_id)
    except (StripeDeclined, StripeUnavailable):
        return None  # brand and last 4 are nice to have; the payment is recorded without them


async def _record(
    ctx: Payments, session: AsyncSession, a: Row[Any], result: IntentResult, card: CardDetails | None
) -> None:
    """The money is in: record it on the bill, or as credit when the bill was cancelled or
    paid in the meantime (money taken never vanishes)."""
    locked = await repo.lock_bills(session, [a.bill_id])
    open_on_bill = locked and (await repo.balances(session, locked, "client"))[a.bill_id]
    payable = bool(open_on_bill) and open_on_bill.status != "cancelled" and open_on_bill.open_cents > 0
    req = PaymentIn(
        client_id=a.client_id, bill_id=a.bill_id if payable else None, method="card", online=True,
        amount_cents=a.amount_cents, notes="paid on the pay page",
    )  # fmt: skip
    brand, last4 = (card.brand, card.last4) if card else (None, None)
    ref = CardRef(None, result.payment_method_id or "", None, brand, last4)
    principal = Principal(a.practice_id, "client", a.client_id)
    await record_pending_in_tx(ctx, session, principal, req, a.id, ref)
    await mark_succeeded(ctx, session, a.id, result)


async def attempt_of_intent(session: AsyncSession, intent: Any) -> str | None:
    """The pay page attempt a webhook's intent belongs to, if any (within the practice its
    metadata names)."""
    metadata = intent["metadata"] if "metadata" in intent else None
    attempt_id = metadata["payment_id"] if metadata and "payment_id" in metadata else None
    practice_id = metadata["practice_id"] if metadata and "practice_id" in metadata else None
    return await session.scalar(
        select(pay_attempts.c.id).where(
            pay_attempts.c.practice_id == practice_id,
            or_(pay_attempts.c.stripe_payment_intent_id == intent["id"], pay_attempts.c.id == attempt_id),
        )
    )


async def reconcile(ctx: Payments, *, older_than: dt.timedelta) -> int:
    """Open attempts nobody settled (webhook lost, page closed): ask Stripe; cancel the intents
    left unconfirmed past PAY_PAGE_INTENT_TTL_S. Returns how many it looked at."""
    now = dt.datetime.now(dt.UTC)
    async with ctx.svc.db.transaction() as session:
        rows = (
            await session.execute(
                select(pay_attempts)
                .where(pay_attempts.c.status == OPEN, pay_attempts.c.created_at < now - older_than)
                .order_by(pay_attempts.c.created_at)
                .limit(100)
            )
        ).all()
    ttl = dt.timedelta(seconds=ctx.settings.pay_page_intent_ttl_s)
    # An attempt without an intent id may still be in its request's Stripe call: left alone
    # until that call has surely ended (a second create would be a second charge on a Stripe
    # that ignores idempotency keys, as localstripe does).
    in_flight = now - max(ttl, dt.timedelta(seconds=2 * ctx.settings.stripe_timeout_seconds))
    for a in rows:
        if a.stripe_payment_intent_id is None and a.created_at > in_flight:
            continue
        try:
            if a.stripe_payment_intent_id is None and a.stripe_payment_method_id is None:
                await fail(ctx, a.id, "the payment was not started")  # no intent was ever confirmable
                continue
            if a.stripe_payment_intent_id is None:
                result, _ = await create_intent(ctx, a.id)  # same idempotency key: the same intent
            else:
                result = await ctx.stripe.retrieve_intent(a.stripe_payment_intent_id)
            status = await settle(ctx, a.id, result)
            if status == OPEN and a.created_at < now - ttl and result.status != "processing":
                try:
                    result = await ctx.stripe.cancel_intent(result.intent_id)
                except StripeDeclined:  # it succeeded (or is past cancelling) meanwhile
                    result = await ctx.stripe.retrieve_intent(result.intent_id)
                await settle(ctx, a.id, result)
        except (StripeDeclined, StripeUnavailable) as exc:
            log.warning("pay attempt %s not resolved yet: %s", a.id, exc)
    return len(rows)


def reconciler_loop(ctx: Payments) -> Callable[[], Awaitable[None]]:
    interval = ctx.settings.payments_reconcile_interval_s

    async def loop() -> None:
        await every(
            interval, lambda: reconcile(ctx, older_than=dt.timedelta(seconds=interval)), log=log,
            failure="pay attempt reconciler pass failed", run_at_start=False,
        )  # fmt: skip

    return loop
