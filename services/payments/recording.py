"""Recording a payment: lock the bills, split the amount (bills first, the rest to credit),
write the ledgers and stage PaymentRecorded in one transaction. An online card payment is
recorded `pending` first (holding its amount against the bills), Stripe is called with no
transaction open, then it is settled: succeeded, failed (402, nothing applied) or left
pending for the reconciler when Stripe did not answer."""

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import repository as repo
from services.payments.db import cards, payments, practices
from services.payments.domain import Application, PaymentRuleError, plan_credit_use, plan_payment
from services.payments.plan_state import complete_paid_plans
from services.payments.schemas import PaymentIn
from services.payments.service import Payments, allocations, payment_info, payment_row, payment_view, rule_error
from services.payments.stripe_gateway import IntentResult, StripeDeclined, StripeUnavailable
from shared import audit
from shared.auth import Principal
from shared.events import PaymentFailed, PaymentRecorded
from shared.http import (
    ApiError,
    idempotent_replay,
    idempotent_store,
    not_found,
    request_fingerprint,
)

Answer = tuple[int, dict[str, Any]]
log = logging.getLogger(__name__)


def requested_applications(req: PaymentIn) -> list[Application]:
    if req.allocations:
        return [Application(a.bill_id, a.amount_cents) for a in req.allocations]
    if req.bill_id:
        return [Application(req.bill_id, req.amount_cents)]
    return []


@dataclass(frozen=True)
class CardRef:
    """The card a payment is charged to: one on file, or one given once (the pay page)."""

    id: str | None
    stripe_payment_method_id: str
    stripe_customer_id: str | None
    brand: str | None
    last4: str | None


async def record_payment(
    ctx: Payments,
    principal: Principal,
    req: PaymentIn,
    key: str | None,
    *,
    card: CardRef | None = None,
    autopay: bool = False,
    fingerprint: str | None = None,
) -> Answer:
    if not principal.is_staff:
        if principal.client_id != req.client_id:
            raise not_found("client")
        if not (req.method == "card" and req.online):
            raise ApiError(403, "forbidden", "clients pay online by card; other payments are recorded by staff")
    requested = requested_applications(req)
    body = req.model_dump(exclude={"idempotency_key"})
    fingerprint = fingerprint or request_fingerprint("POST", "/v1/payments", body)
    key = principal.scoped_key(key)
    payment_id = str(uuid.uuid4())
    loop = asyncio.get_running_loop()
    wait_until = loop.time() + ctx.settings.payments_bill_wait_ms / 1000
    while True:
        try:
            answer, row = await _record_request(
                ctx, principal, req, requested, key, fingerprint, payment_id, card, autopay, wait_until
            )
            break
        except _BillNotHereYet:
            await asyncio.sleep(0.1)  # billing's BillCreated is on its way to our projection
    if row is None or row.status != "pending":
        return answer
    return await charge_online(ctx, row, key=key)


class _BillNotHereYet(Exception):
    """A requested bill is not in the projection yet (billing's events are eventually
    consistent): the transaction is rolled back and tried again until the wait is over."""


async def _record_request(
    ctx: Payments,
    principal: Principal,
    req: PaymentIn,
    requested: list[Application],
    key: str | None,
    fingerprint: str,
    payment_id: str,
    card: CardRef | None,
    autopay: bool,
    wait_until: float,
) -> tuple[Answer, Row[Any] | None]:
    """One attempt of record_payment's transaction: the answer, and the payment row (None for
    a replayed answer). Its events (PaymentRecorded, the audit record, ...) go into the outbox
    in one INSERT at the end."""
    async with ctx.svc.db.transaction() as session, ctx.svc.outbox.batched(session):
        replay = await idempotent_replay(session, ctx.svc.idempotency_table, principal.practice_id, key, fingerprint)
        if replay:
            return await _current(ctx, session, replay), None
        if card is None and req.method == "card":
            card = await _card_for(session, principal.practice_id, req)
        row, applied = await _record(
            ctx,
            session,
            principal,
            req,
            requested,
            payment_id,
            card,
            autopay=autopay,
            off_session=principal.is_staff,
            wait_until=wait_until,
        )
        if autopay:
            await audit.automation(
                session,
                ctx.svc.outbox,
                "payments",
                principal.practice_id,
                "autopay_charge",
                "payment",
                payment_id,
                req.client_id,
            )
        settled = applied if row.status == "succeeded" else None
        answer: Answer = 201, await payment_view(ctx, session, row, fresh=settled)
        await idempotent_store(session, ctx.svc.idempotency_table, principal.practice_id, key, *answer)
    return answer, row


def declined_payment_id(message: str | None) -> str | None:
    """A declined charge answers 402 with '... (payment <id>)'."""
    if message and message.endswith(")") and "(payment " in message:
        return message.rsplit("(payment ", 1)[1][:-1]
    return None


async def _current(ctx: Payments, session: AsyncSession, replay: Answer) -> Answer:
    """A stored `pending` answer is replayed as the payment is now: the reconciler or a webhook
    may have settled it since, and they do not know the caller's key."""
    status, body = replay
    if status != 201 or body.get("status") != "pending" or "id" not in body:
        return replay
    return await _answer(ctx, session, await payment_row(session, body["id"]))


async def _answer(ctx: Payments, session: AsyncSession, row: Row[Any]) -> Answer:
    if row.status == "failed":
        return 402, {"error": {"code": "card_declined", "message": f"{row.failure_reason} (payment {row.id})"}}
    return 201, await payment_view(ctx, session, row)


async def record_pending_in_tx(
    ctx: Payments, session: AsyncSession, principal: Principal, req: PaymentIn, payment_id: str, card: CardRef
) -> Row[Any]:
    """Record an online card payment as pending inside the caller's transaction."""
    row, _ = await _record(ctx, session, principal, req, requested_applications(req), payment_id, card)
    return row


async def _card_for(session: AsyncSession, practice_id: str, req: PaymentIn) -> CardRef | None:
    """The card to charge: the one named, else for an online payment the client's default
    (for a minor, a card of the billing contact comes first)."""
    q = select(cards).where(
        cards.c.practice_id == practice_id, cards.c.client_id == req.client_id, cards.c.deleted_at.is_(None)
    )
    if req.card_id:
        card = (await session.execute(q.where(cards.c.id == req.card_id))).one_or_none()
        if card is None:
            raise not_found("card")
        return _ref(card)
    if not req.online:
        return None
    order = [(cards.c.holder == "billing_contact").desc(), cards.c.is_default.desc(), cards.c.created_at.desc()]
    card = (await session.execute(q.order_by(*order).limit(1))).one_or_none()
    if card is None:
        raise ApiError(409, "no_card_on_file", "this client has no card on file to charge online")
    return _ref(card)


def _ref(card: Row[Any]) -> CardRef:
    return CardRef(card.id, card.stripe_payment_method_id, card.stripe_customer_id, card.brand, card.last4)


_INSERT_PAYMENT = payments.insert().returning(*payments.c)
"""Built once (its compiled form is then found by a memoized cache key); the values are parameters."""


async def _record(
    ctx: Payments,
    session: AsyncSession,
    principal: Principal,
    req: PaymentIn,
    requested: list[Application],
    payment_id: str,
    card: CardRef | None,
    *,
    autopay: bool = False,
    off_session: bool = False,
    wait_until: float | None = None,
) -> tuple[Row[Any], list[Application]]:
    """Record the payment; returns its row and what it applied to each bill. A requested bill
    not in the projection yet raises _BillNotHereYet until `wait_until` (loop time), then 404."""
    practice_id = principal.practice_id
    locked = await repo.lock_bills(session, (a.bill_id for a in requested))
    if wait_until is not None and any(a.bill_id not in locked for a in requested):
        if asyncio.get_running_loop().time() < wait_until:
            raise _BillNotHereYet
    for a in requested:
        bill = locked.get(a.bill_id)
        if bill is None or bill.practice_id != practice_id or not principal.can_see_client(bill.client_id):
            raise not_found(f"bill {a.bill_id}")
    await _check_household(session, practice_id, req.client_id, {b.client_id for b in locked.values()})
    balances = await repo.balances(session, locked, req.payer)
    await repo.lock_client(session, practice_id, req.client_id)
    available = await repo.credit_balance(session, practice_id, req.client_id) if req.method == "credit" else 0
    try:
        plan = plan_payment(req.amount_cents, requested, balances, method=req.method, available_credit_cents=available)
    except PaymentRuleError as exc:
        raise rule_error(exc) from exc
    if autopay and plan.credit_cents:
        raise ApiError(409, "balance_changed", "the bill's open balance changed since autopay looked; not charged")
    online = req.method == "card" and req.online
    currency = await _currency(session, practice_id, locked.values())
    inserted = await session.execute(
        _INSERT_PAYMENT,
        {
            "id": payment_id,
            "practice_id": practice_id,
            "client_id": req.client_id,
            "payer": req.payer,
            "payer_name": req.payer_name,
            "method": req.method,
            "amount_cents": req.amount_cents,
            "status": "pending" if online else "succeeded",
            "online": online,
            "card_id": card.id if card else None,
            "stripe_payment_method_id": card.stripe_payment_method_id if card else None,
            "stripe_customer_id": card.stripe_customer_id if card else None,
            "card_brand": card.brand if card else req.card_brand,
            "card_last4": card.last4 if card else req.card_last4,
            "reference": req.reference,
            "notes": req.notes,
            "appointment_id": req.appointment_id,
            "paid_at": req.paid_at or dt.datetime.now(dt.UTC),
            "credit_cents": plan.credit_cents,
            "autopay": autopay,
            "currency": currency,
            "off_session": off_session if online else None,
        },
    )
    row = inserted.one()
    await repo.add_applications(
        session,
        practice_id=practice_id,
        client_of_bill={bill_id: b.client_id for bill_id, b in locked.items()},
        payer=req.payer,
        payment_id=payment_id,
        kind="payment",
        applications=plan.applications,
    )
    applied = net_by_bill(plan.applications)
    if not online:
        # What is left on each bill once this money is in: the money in before it (read with
        # the balances, under the bill locks) less this payment's part.
        left = {
            a.bill_id: balances[a.bill_id].owed_cents - balances[a.bill_id].settled_cents - a.amount_cents
            for a in applied
            if locked[a.bill_id].status != "cancelled"
        }
        await settle_succeeded(ctx, session, row, applied=applied, left=left, client_locked=True)
    return row, applied


def net_by_bill(applications: Iterable[Application]) -> list[Application]:
    """A payment's net amount on each bill, bills in the order first applied, none of zero
    (what `repo.payment_applications` reads back from the ledger)."""
    totals: dict[str, int] = {}
    for a in applications:
        totals[a.bill_id] = totals.get(a.bill_id, 0) + a.amount_cents
    return [Application(bill_id, cents) for bill_id, cents in totals.items() if cents]


async def _check_household(session: AsyncSession, practice_id: str, client_id: str, bill_clients: set[str]) -> None:
    """One payment may cover bills of the payer's household (a couple, siblings), no one else's."""
    others = bill_clients - {client_id}
    if not others:
        return
    households = await repo.household_of(session, practice_id, {client_id, *others})
    mine = households.get(client_id)
    if mine is None or any(households.get(o) != mine for o in others):
        raise ApiError(422, "not_same_household", "allocations may only cover bills of the client's household")


async def _currency(session: AsyncSession, practice_id: str, locked: Iterable[Row[Any]]) -> str:
    """The currency a charge is made in: its bills', else (a prepayment) the practice's."""
    for bill in locked:
        return str(bill.currency)
    currency = await session.scalar(select(practices.c.currency).where(practices.c.practice_id == practice_id))
    return currency or "USD"


async def settle_succeeded(
    ctx: Payments,
    session: AsyncSession,
    row: Row[Any],
    *,
    applied: list[Application] | None = None,
    left: dict[str, int] | None = None,
    client_locked: bool = False,
) -> None:
    """The money is in: credit the rest, stage PaymentRecorded (row status is succeeded). The
    client lock is taken here too: a payment settled later (Stripe) must not write credit
    beside another writer, or the balance it reports would be stale. A caller that recorded the
    payment in this transaction passes what it already knows (its applications, the bills'
    settled balances, the client lock held) instead of reading it again."""
    if applied is None:
        applied = await repo.payment_applications(session, row.id)
    if left is None:
        left = await repo.settled_open(session, [a.bill_id for a in applied], row.payer)
    if not client_locked:
        await repo.lock_client(session, row.practice_id, row.client_id)
    await ctx.stage(
        session,
        row.practice_id,
        row.client_id,
        PaymentRecorded(
            payment=payment_info(row), allocations=allocations(applied, left), credit_cents=row.credit_cents
        ),
    )
    if row.credit_cents:
        kind = "overpayment" if applied else "prepayment"
        await ctx.credit(
            session,
            row.practice_id,
            row.client_id,
            kind,
            row.credit_cents,
            payment_id=row.id,
            appointment_id=row.appointment_id,
        )
    if row.method == "credit":
        await ctx.credit(session, row.practice_id, row.client_id, "used", -row.amount_cents, payment_id=row.id)
    await complete_paid_plans(ctx, session, row.practice_id, [a.bill_id for a in applied])


async def charge_online(ctx: Payments, row: Row[Any], *, key: str | None) -> Answer:
    """Call Stripe for a pending payment (no transaction open), then settle it. Every
    parameter comes from the payment row, so a retry (the reconciler) repeats the first call
    exactly under the same idempotency key."""
    try:
        result = await ctx.stripe.charge(
            payment_id=row.id,
            practice_id=row.practice_id,
            amount_cents=row.amount_cents,
            currency=row.currency or "USD",
            payment_method_id=row.stripe_payment_method_id,
            customer_id=row.stripe_customer_id,
            off_session=bool(row.off_session),
        )
    except StripeDeclined as exc:
        return await settle_intent(ctx, row.id, None, declined=exc, key=key)
    except StripeUnavailable:
        async with ctx.svc.db.transaction() as session:
            return 201, await payment_view(ctx, session, await payment_row(session, row.id))
    return await settle_intent(ctx, row.id, result, key=key)


async def settle_intent(
    ctx: Payments,
    payment_id: str,
    result: IntentResult | None,
    *,
    declined: StripeDeclined | None = None,
    key: str | None = None,
) -> Answer:
    """Resolve a pending payment from what Stripe says. Idempotent: a payment already settled
    (by the webhook, the reconciler or the request itself) is left as it is."""
    async with ctx.svc.db.transaction() as session:
        return await settle_intent_in(ctx, session, payment_id, result, declined=declined, key=key)


async def settle_intent_in(
    ctx: Payments,
    session: AsyncSession,
    payment_id: str,
    result: IntentResult | None,
    *,
    declined: StripeDeclined | None = None,
    key: str | None = None,
) -> Answer:
    """settle_intent inside the caller's transaction (the webhook records the event with it)."""
    row = (await session.execute(select(payments).where(payments.c.id == payment_id).with_for_update())).one()
    if row.status == "pending":
        settled = None
        if result is not None and result.status == "succeeded" and not _same_money(row, result):
            reason = f"Stripe charged {result.amount} {result.currency}, not {row.amount_cents} {row.currency}"
            log.error("payment %s held for review: Stripe's amount or currency differs from ours", row.id)
            await session.execute(
                update(payments)
                .where(payments.c.id == payment_id)
                .values(status="review", failure_reason=reason, stripe_payment_intent_id=result.intent_id)
            )
            settled = "hold_payment_for_review"
        elif declined is not None or (result and result.status in ("requires_payment_method", "canceled")):
            reason = declined.reason if declined else (result.failure_reason if result else None)
            await fail_payment(ctx, session, row, reason or "the card was declined", result)
            settled = "fail_payment"
        elif result is not None and result.status == "succeeded":
            await mark_succeeded(ctx, session, payment_id, result)
            settled = "settle_payment"
        elif result is not None:
            await session.execute(
                update(payments).where(payments.c.id == payment_id).values(stripe_payment_intent_id=result.intent_id)
            )
        if settled:  # by the reconciler or a webhook (a request's own settling is recorded as the request)
            await audit.record_effect(session, ctx.svc.outbox, "payments", practice_id=row.practice_id, action=settled,
                                      kind="payment", resource_id=payment_id, client_id=row.client_id)  # fmt: skip
    answer = await _answer(ctx, session, await payment_row(session, payment_id))
    if key:
        await idempotent_store(session, ctx.svc.idempotency_table, row.practice_id, key, *answer)
    return answer


async def mark_succeeded(ctx: Payments, session: AsyncSession, payment_id: str, result: IntentResult) -> None:
    """A pending payment whose intent succeeded: the money is in (caller holds the row lock)."""
    await session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values(
            status="succeeded",
            stripe_payment_intent_id=result.intent_id,
            stripe_charge_id=result.charge_id,
            paid_at=dt.datetime.now(dt.UTC),
        )
    )
    await settle_succeeded(ctx, session, await payment_row(session, payment_id))


def _same_money(row: Row[Any], result: IntentResult) -> bool:
    """What Stripe charged is what we recorded: a forged or mistaken intent is never applied."""
    return result.amount == row.amount_cents and (result.currency or "").upper() == (row.currency or "USD").upper()


async def fail_payment(
    ctx: Payments, session: AsyncSession, row: Row[Any], reason: str, result: IntentResult | None
) -> None:
    """A declined charge: record the failed attempt, release what it held on the bills."""
    applied = await repo.payment_applications(session, row.id)
    await repo.add_applications(
        session,
        practice_id=row.practice_id,
        client_of_bill=await repo.bill_clients(session, [a.bill_id for a in applied]),
        payer=row.payer,
        payment_id=row.id,
        kind="voided",
        applications=applied,
        sign=-1,
    )
    await session.execute(
        update(payments)
        .where(payments.c.id == row.id)
        .values(
            status="failed",
            failure_reason=reason,
            stripe_payment_intent_id=result.intent_id if result else row.stripe_payment_intent_id,
        )
    )
    failed = await payment_row(session, row.id)
    await ctx.stage(
        session,
        row.practice_id,
        row.client_id,
        PaymentFailed(
            payment=payment_info(failed),
            bill_id=applied[0].bill_id if applied else None,
            reason=reason,
            autopay=failed.autopay,
        ),
    )


async def apply_credit_to_bill(ctx: Payments, session: AsyncSession, practice_id: str, bill_id: str) -> None:
    """A new bill the client owes on takes the client's available credit automatically, except
    credit prepaid for an appointment that is not on this bill (it waits for that one)."""
    locked = await repo.lock_bills(session, [bill_id])
    bill = locked.get(bill_id)
    if bill is None or bill.status != "open" or bill.client_owes_cents <= 0:
        return
    await repo.lock_client(session, practice_id, bill.client_id)
    available = await repo.credit_balance(session, practice_id, bill.client_id)
    available -= await repo.reserved_credit(session, practice_id, bill.client_id)
    if available <= 0:
        return
    balances = await repo.balances(session, locked, "client")
    plan = plan_credit_use(available, [balances[bill_id]])
    if not plan.applications:
        return
    payment_id = str(uuid.uuid4())
    await session.execute(
        payments.insert().values(
            id=payment_id,
            practice_id=practice_id,
            client_id=bill.client_id,
            payer="client",
            method="credit",
            amount_cents=plan.applied_cents,
            status="succeeded",
            notes="client credit applied automatically",
            paid_at=dt.datetime.now(dt.UTC),
        )
    )
    await repo.add_applications(
        session,
        practice_id=practice_id,
        client_of_bill={bill_id: bill.client_id},
        payer="client",
        payment_id=payment_id,
        kind="payment",
        applications=plan.applications,
    )
    await settle_succeeded(ctx, session, await payment_row(session, payment_id))
