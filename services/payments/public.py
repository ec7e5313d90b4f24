"""The pay page of the emailed link (`/pay?practice=<id>&bill=N`): no login; the bill number and
its 6-digit access code open that one bill and nothing else.

Guessing is bounded: every try is counted per (practice, bill number) and per client IP before it
is judged (pay_limits), and an unknown bill, a wrong code and a locked-out one all get the same
answer. Card testing is bounded too: payment attempts per bill and per IP. Paying goes through a
PaymentIntent (pay_attempts): created here, confirmed in the browser by Stripe.js
`confirmCardPayment` (3-D Secure included), settled by the webhook or the page's read-back."""

import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments import pay_attempts
from services.payments import repository as repo
from services.payments.api import answer, ctx_of
from services.payments.db import bills, payments
from services.payments.pay_limits import Locked, judged_try, take_try
from services.payments.schemas import PayIntentIn, PayLookupIn, PublicPayIn
from services.payments.service import Payments, payment_row, payment_view
from services.payments.stripe_gateway import StripeDeclined, StripeUnavailable
from shared import audit
from shared.auth import Principal
from shared.client_ip import client_ip
from shared.http import ApiError
from shared.runtime import ServiceDep
from shared.stripe_js import uses_localstripe

router = APIRouter(tags=["pay page"])
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
WRONG = ApiError(
    404, "not_found", "No bill matches this bill number and access code, or too many tries were made. "
    "Check both on your bill, or try again later.",
)  # fmt: skip
BUSY = ApiError(429, "too_many_payment_attempts", "Too many payment attempts for this bill; try again later.")
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.get("/pay", response_class=HTMLResponse, summary="The pay page (HTML)")
async def pay_page(service: ServiceDep, practice: str | None = None, bill: int | None = None) -> HTMLResponse:
    settings = ctx_of(service).settings
    html = templates.get_template("pay.html").render(
        practice_id=practice, bill_number=bill, publishable_key=settings.stripe_publishable_key,
        stripe_js_url=settings.stripe_js_url, localstripe=uses_localstripe(settings),
    )  # fmt: skip
    return HTMLResponse(html, headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


async def find_bill(ctx: Payments, req: PayLookupIn, ip: str) -> Row[Any]:
    """The bill these credentials open, or WRONG: for a wrong code, an unknown bill and a
    locked-out key alike. Only wrong guesses count, judged one at a time per key."""
    s = ctx.settings
    keys = {f"code:{req.practice_id or '*'}:{req.bill_number}": s.pay_page_max_failures,
            f"code-ip:{ip}": s.pay_page_max_failures_per_ip}  # fmt: skip
    q = select(bills).where(bills.c.number == req.bill_number)
    if req.practice_id:
        q = q.where(bills.c.practice_id == req.practice_id)

    async def judge(session: AsyncSession) -> Row[Any] | None:
        candidates = (await session.execute(q)).all()
        matches = [b for b in candidates if hmac.compare_digest(b.access_code.encode(), req.access_code.encode())]
        return matches[0] if len(matches) == 1 else None

    try:
        bill = await judged_try(ctx.svc.db, keys, s.pay_page_window_s, judge)
    except Locked:
        raise WRONG from None
    audit.acting(Principal(bill.practice_id, "client", bill.client_id, "pay_page"), "pay_page", "payment")
    return bill


async def open_cents(ctx: Payments, bill: Row[Any]) -> int:
    async with ctx.svc.db.transaction() as session:
        applied = (await repo.applied_by_bill(session, [bill.id], "client")).get(bill.id, 0)
    return 0 if bill.status == "cancelled" else max(bill.client_owes_cents - applied, 0)


async def payable(ctx: Payments, bill: Row[Any], amount_cents: int | None, ip: str) -> int:
    """The amount to charge, checked against what is open; one payment attempt counted."""
    due = await open_cents(ctx, bill)
    if due <= 0:
        raise ApiError(409, "nothing_to_pay", "This bill has nothing left to pay.")
    amount = due if amount_cents is None else amount_cents
    if amount > due:
        raise ApiError(422, "exceeds_balance", f"The balance of this bill is {due} cents.")
    s = ctx.settings
    limits = {f"pay:{bill.id}": s.pay_page_max_payment_attempts, f"pay-ip:{ip}": s.pay_page_max_payment_attempts_per_ip}
    if not await take_try(ctx.svc.db, limits, s.pay_page_window_s):
        raise BUSY
    return amount


async def _attempt(
    ctx: Payments, bill: Row[Any], amount_cents: int | None, ip: str, payment_method_id: str | None, key: str | None
) -> tuple[str, int]:
    """A retry (same Idempotency-Key, same bill) gets its first attempt back before any check
    the first attempt changed (it may have paid the bill in full); a new one is checked."""
    if key and (seen := await pay_attempts.get(ctx, pay_attempts.attempt_id_for(bill, key))):
        return seen.id, seen.amount_cents
    amount = await payable(ctx, bill, amount_cents, ip)
    attempt_id, _ = await pay_attempts.start(ctx, bill, amount, ip, payment_method_id, key)
    return attempt_id, amount


@router.post("/v1/public/pay/lookup", summary="Open a bill with its number and access code: practice and amount due")
async def lookup(body: PayLookupIn, request: Request, service: ServiceDep) -> dict[str, Any]:
    ctx = ctx_of(service)
    bill = await find_bill(ctx, body, client_ip(request, ctx.settings.trusted_proxies))
    return {
        "practice_name": bill.practice_name or "your therapy practice",
        "bill_number": bill.number,
        "amount_due_cents": await open_cents(ctx, bill),
        "currency": bill.currency,
    }


@router.post("/v1/public/pay/intents", status_code=201, summary="Start paying a bill: a PaymentIntent to confirm")
async def create_intent(
    body: PayIntentIn, request: Request, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> dict[str, Any]:
    """Answers the intent's client secret for Stripe.js `confirmCardPayment`, and our payment
    id for the read-back (`.../intents/{payment_id}/refresh`)."""
    ctx = ctx_of(service)
    ip = client_ip(request, ctx.settings.trusted_proxies)
    bill = await find_bill(ctx, body, ip)
    attempt_id, amount = await _attempt(ctx, bill, body.amount_cents, ip, None, idempotency_key)
    try:
        _, secret = await pay_attempts.create_intent(ctx, attempt_id)
    except (StripeDeclined, StripeUnavailable) as exc:
        await pay_attempts.fail(ctx, attempt_id, "the payment could not be started")
        raise ApiError(503, "stripe_unavailable", "The card service did not answer; try again.") from exc
    return {"payment_id": attempt_id, "client_secret": secret, "amount_cents": amount, "currency": bill.currency}


@router.post("/v1/public/pay/intents/{payment_id}/refresh", summary="Read the intent back from Stripe and settle it")
async def refresh(payment_id: str, service: ServiceDep) -> dict[str, Any]:
    """After `confirmCardPayment` the page asks here; the webhook may have been first (then
    this only reads). Safe to repeat: the payment is recorded once."""
    ctx = ctx_of(service)
    attempt = await pay_attempts.get(ctx, payment_id)
    if attempt is None or attempt.stripe_payment_intent_id is None:
        raise ApiError(404, "not_found", "no such payment")
    status = attempt.status
    if status != pay_attempts.SUCCEEDED:
        try:
            result = await ctx.stripe.retrieve_intent(attempt.stripe_payment_intent_id)
        except (StripeDeclined, StripeUnavailable) as exc:
            raise ApiError(503, "stripe_unavailable", "The card service did not answer; try again.") from exc
        status = await pay_attempts.settle(ctx, payment_id, result) or status
        attempt = await pay_attempts.get(ctx, payment_id)
        assert attempt is not None
    return await _outcome(ctx, attempt, status)


async def _outcome(ctx: Payments, attempt: Row[Any], status: str) -> dict[str, Any]:
    out: dict[str, Any] = {"payment_id": attempt.id, "status": "pending" if status == "open" else status,
                           "amount_cents": attempt.amount_cents, "currency": attempt.currency}  # fmt: skip
    if status == pay_attempts.SUCCEEDED:
        async with ctx.svc.db.transaction() as session:
            row = await session.execute(select(payments.c.card_brand, payments.c.card_last4, payments.c.paid_at)
                                        .where(payments.c.id == attempt.id))  # fmt: skip
            paid = row.one()
        out |= {"card_brand": paid.card_brand, "card_last4": paid.card_last4, "paid_at": paid.paid_at}
    elif status == pay_attempts.FAILED:
        out["message"] = attempt.failure_reason
    return out


@router.post("/v1/public/pay", status_code=201, summary="Pay one bill with its number, access code and a card")
async def public_pay(
    body: PublicPayIn, request: Request, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """The server-confirmed form of the pay page (CONTRACT.md): a Stripe payment method made in
    the browser, confirmed here. A card that asks for 3-D Secure is refused with 402
    `authentication_required` (the pay page's own flow confirms in the browser instead)."""
    ctx = ctx_of(service)
    ip = client_ip(request, ctx.settings.trusted_proxies)
    bill = await find_bill(ctx, body, ip)
    pm = body.stripe_payment_method_id
    attempt_id, amount = await _attempt(ctx, bill, body.amount_cents, ip, pm, idempotency_key)
    attempt = await pay_attempts.get(ctx, attempt_id)
    assert attempt is not None
    status = attempt.status
    pending = {"id": attempt_id, "status": "pending", "amount_cents": amount, "bill_number": bill.number}
    if status == pay_attempts.OPEN:
        try:
            result, _ = await pay_attempts.create_intent(ctx, attempt_id)
        except StripeDeclined as exc:
            await pay_attempts.fail(ctx, attempt_id, exc.reason)
            raise ApiError(402, exc.code, exc.reason) from exc
        except StripeUnavailable:
            return answer((201, pending))
        if result.status in ("requires_action", "requires_confirmation"):
            await pay_attempts.fail(ctx, attempt_id, "the card asks for authentication")
            await ctx.stripe.cancel_intent(result.intent_id)
            raise ApiError(402, "authentication_required", "Your bank asks to confirm this payment: use the pay page.")
        status = await pay_attempts.settle(ctx, attempt_id, result) or status
    attempt = await pay_attempts.get(ctx, attempt_id)
    assert attempt is not None
    if status == pay_attempts.FAILED:
        raise ApiError(402, "card_declined", attempt.failure_reason or "the card was declined")
    if status != pay_attempts.SUCCEEDED:
        return answer((201, pending))
    async with ctx.svc.db.transaction() as session:
        view = await payment_view(ctx, session, await payment_row(session, attempt_id))
    keep = ("id", "status", "amount_cents", "card_brand", "card_last4", "paid_at", "stripe_payment_intent_id")
    return answer((201, {k: view[k] for k in keep} | {"bill_number": bill.number}))
