"""The pay page of the emailed link: no login; the bill number and its 6-digit access code
open that one bill and nothing else. Wrong codes are counted per requester and per bill
number and locked out after a few; the answer never tells whether a bill exists."""

import datetime as dt
import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, select

from services.payments import repository as repo
from services.payments.api import answer, ctx_of
from services.payments.db import bills, pay_page_failures
from services.payments.recording import CardRef, record_payment, replayed_payment
from services.payments.schemas import PaymentIn, PublicPayIn
from services.payments.service import Payments
from services.payments.stripe_gateway import StripeDeclined, StripeUnavailable
from shared import audit
from shared.auth import Principal
from shared.http import ApiError, request_fingerprint
from shared.runtime import ServiceDep

router = APIRouter(tags=["pay page"])
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
WRONG = ApiError(404, "not_found", "no bill matches this bill number and access code")


@router.get("/pay", response_class=HTMLResponse, summary="The pay page (HTML form)")
async def pay_page(service: ServiceDep, bill: int | None = None) -> HTMLResponse:
    settings = ctx_of(service).settings
    html = templates.get_template("pay.html").render(
        bill_number=bill, publishable_key=settings.stripe_publishable_key, stripe_js_url=settings.stripe_js_url
    )
    return HTMLResponse(html)


async def find_bill(ctx: Payments, req: PublicPayIn, requester: str) -> Any:
    """The bill these credentials open, or WRONG (counted). Locked out past the limit."""
    keys = [f"ip:{requester}", f"bill:{req.bill_number}"]
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ctx.settings.pay_page_window_s)
    async with ctx.svc.db.transaction() as session:
        failures = await session.scalar(
            select(func.count())
            .select_from(pay_page_failures)
            .where(pay_page_failures.c.key.in_(keys), pay_page_failures.c.at > since)
            .group_by(pay_page_failures.c.key)
            .order_by(func.count().desc())
            .limit(1)
        )
        if (failures or 0) >= ctx.settings.pay_page_max_failures:
            raise ApiError(429, "too_many_attempts", "too many wrong codes; try again later")
        q = select(bills).where(bills.c.number == req.bill_number)
        if req.practice_id:
            q = q.where(bills.c.practice_id == req.practice_id)
        candidates = (await session.execute(q)).all()
        matches = [b for b in candidates if hmac.compare_digest(b.access_code.encode(), req.access_code.encode())]
        if len(matches) != 1:
            await session.execute(pay_page_failures.insert(), [{"key": k} for k in keys])
    if len(matches) != 1:
        raise WRONG
    return matches[0]


@router.post("/v1/public/pay", status_code=201, summary="Pay one bill with its number and access code")
async def public_pay(
    body: PublicPayIn,
    request: Request,
    service: ServiceDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    ctx = ctx_of(service)
    bill = await find_bill(ctx, body, request.client.host if request.client else "unknown")
    principal = audit.acting(Principal(bill.practice_id, "client", bill.client_id, "pay_page"), "pay_page")
    # A retry gets the first answer, before the checks the first payment changed (it may have
    # paid the bill in full): keyed per bill, fingerprinted on what was asked.
    key = f"pay:{bill.id}:{idempotency_key}" if idempotency_key else None
    fingerprint = request_fingerprint("POST", "/v1/public/pay", body.model_dump(exclude={"access_code"}))
    replay = await replayed_payment(ctx, principal, key, fingerprint)
    if replay:
        return _pay_answer(replay, bill.number)
    async with ctx.svc.db.transaction() as session:
        applied = (await repo.applied_by_bill(session, [bill.id], "client")).get(bill.id, 0)
    open_cents = bill.client_owes_cents - applied
    if bill.status == "cancelled" or open_cents <= 0:
        raise ApiError(409, "nothing_to_pay", "this bill has nothing left to pay")
    amount = body.amount_cents or open_cents
    if amount > open_cents:
        raise ApiError(422, "exceeds_balance", f"the balance of this bill is {open_cents} cents")
    try:
        details = await ctx.stripe.card(body.stripe_payment_method_id)
    except StripeDeclined as exc:
        raise ApiError(402, exc.code, exc.reason) from exc
    except StripeUnavailable as exc:
        raise ApiError(503, "stripe_unavailable", "the card service did not answer; try again") from exc
    card = CardRef(None, details.payment_method_id, None, details.brand, details.last4)
    req = PaymentIn(client_id=bill.client_id, bill_id=bill.id, method="card", online=True, amount_cents=amount)
    return _pay_answer(await record_payment(ctx, principal, req, key, card=card, fingerprint=fingerprint), bill.number)


def _pay_answer(result: tuple[int, dict[str, Any]], bill_number: int) -> JSONResponse:
    status, body = result
    if status != 201:
        return answer(result)
    keep = ("id", "status", "amount_cents", "card_brand", "card_last4", "paid_at", "stripe_payment_intent_id")
    return answer((201, {k: body[k] for k in keep} | {"bill_number": bill_number}))
